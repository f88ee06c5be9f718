"""``python -m emulator``: serve the Toloka emulator until SIGINT/SIGTERM.

Example: ``python -m emulator --port 0 --db emulator.sqlite --token TOKEN --scenario demo
--config-out toloka.ini`` (``--scenario find_items`` for the find-items pipeline). Restarting
with the same ``--db`` keeps every object, and a scenario already loaded is not loaded twice.
``--scenario demo --crowd-only --orgs-out organizations.tsv`` brings the crowd and the
organizations but no pools: ``python pipeline.py setup`` and ``add`` make them, as on a real
account (docs/emulator.md, "Crowd only").
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from common.errors import PipelineError

from .app import start_emulator
from .crowd.scenario import DEFAULT_SPEED, ScenarioError
from .operation_timing import OperationTiming


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m emulator",
                                     description="Local emulator of the Toloka REST API v1")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8000, help="port; 0 picks a free one")
    parser.add_argument("--db", default="emulator.sqlite", help="SQLite file with all state")
    parser.add_argument("--token", default="TOKEN", help="the OAuth/ApiKey token to accept")
    parser.add_argument("--scenario", default=None,
                        help='scenario file, or a built-in one: "demo" (pedestrian pipeline) or '
                             '"find_items" (find items -> verification -> side-by-side)')
    parser.add_argument("--speed", type=float, default=DEFAULT_SPEED,
                        help=f"simulation speed factor: a simulated day lasts 86400/speed s "
                             f"(default {DEFAULT_SPEED:g}: a simulated minute per real second)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the crowd and the faults")
    parser.add_argument("--config-out", default=None,
                        help="write a toloka.ini pointing at this emulator (needs --scenario)")
    parser.add_argument("--crowd-only", action="store_true",
                        help="bring the scenario's workers and organizations but no projects, pools or tasks: "
                             "the crowd works in the pools made through the API once they are opened "
                             "(pedestrian scenarios; needs --scenario)")
    parser.add_argument("--orgs-out", default=None, metavar="FILE",
                        help="write the scenario's organizations as the TSV 'python pipeline.py add' reads "
                             "(pedestrian scenarios; needs --scenario)")
    parser.add_argument("--step-seconds", type=float, default=0.2,
                        help="interval of the simulation steps")
    parser.add_argument("--operation-running-seconds", type=float, default=None,
                        help="async creates (tasks, bonuses) answer with an operation that stays RUNNING "
                             "this long (wall clock) before SUCCESS (default: finished at once, or as the "
                             "scenario's api section says)")
    parser.add_argument("--operation-running-polls", type=int, default=None,
                        help="... and until this many GETs of it have seen it RUNNING")
    args = parser.parse_args(argv)
    if args.speed <= 0:
        parser.error("--speed must be positive")
    if (args.operation_running_seconds or 0) < 0 or (args.operation_running_polls or 0) < 0:
        parser.error("--operation-running-seconds and --operation-running-polls must not be negative")
    if args.config_out and not args.scenario:
        parser.error("--config-out needs --scenario (the ids come from the scenario set-up)")
    if args.crowd_only and not args.scenario:
        parser.error("--crowd-only needs --scenario (the crowd and the organizations come from it)")
    if args.crowd_only and args.config_out:
        parser.error("--crowd-only makes no pools for --config-out to name: "
                     "write toloka.ini with 'python pipeline.py setup --environment URL'")
    if args.orgs_out and not args.scenario:
        parser.error("--orgs-out needs --scenario (the organizations come from it)")
    return args


async def serve(args: argparse.Namespace) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    operations = None
    if args.operation_running_seconds is not None or args.operation_running_polls is not None:
        operations = OperationTiming(args.operation_running_seconds or 0.0, args.operation_running_polls or 0)
    async with start_emulator(args.db, token=args.token, host=args.host, port=args.port,
                              seed=args.seed, speed=args.speed, scenario=args.scenario,
                              step_seconds=args.step_seconds, operations=operations,
                              crowd_only=args.crowd_only) as emu:
        if args.config_out:
            from .crowd.config_out import write_ini

            write_ini(args.config_out, url=emu.url, setup_result=emu.setup_result or {},
                      scenario=emu.scenario)
            print(f"Wrote {args.config_out}", flush=True)
        if args.orgs_out:
            from .crowd.adopt import write_organizations
            from .crowd.scenario import Scenario

            if not isinstance(emu.scenario, Scenario):
                raise ScenarioError("kind", "a pedestrian scenario (--orgs-out)", getattr(emu.scenario, "kind", None))
            rows = await asyncio.to_thread(write_organizations, args.orgs_out, emu.scenario)
            print(f"Wrote {args.orgs_out}: {rows} organizations (python pipeline.py add {args.orgs_out})", flush=True)
        print(f"Toloka emulator listening on {emu.url} (API under /api/v1)", flush=True)
        await stop.wait()
    print("Toloka emulator stopped", flush=True)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    args = parse_args(argv)
    try:
        asyncio.run(serve(args))
    except PipelineError as exc:  # a scenario the store refuses, a file that cannot be written: one line
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"emulator: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
