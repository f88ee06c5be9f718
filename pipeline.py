"""The crowdsourcing pipeline daemon: ``python pipeline.py [--config toloka.ini] [--once] [--demo [NAME]]``.

``python pipeline.py unrestrict WORKER [--pool NAME]`` lifts the restrictions the
daemon put on a worker (see docs/decisions.md).

Left running on a server, it turns a crowd's work on Toloka into checked
results, a tick every ``[Pipeline] period_seconds``, for the pipeline that
``[Pipeline] definition`` names (pedestrian or find_items). See README.md.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", nargs="?", choices=("run", "unrestrict"), default="run",
                        help="run the daemon (default), or unrestrict WORKER: lift the daemon's restrictions")
    parser.add_argument("worker", nargs="?", help="the worker (Toloka user id) of unrestrict")
    parser.add_argument("--pool", help="unrestrict on this pool only (its name, e.g. visit)")
    parser.add_argument("--config", type=Path, default=Path("toloka.ini"),
                        help="configuration file (default: toloka.ini)")
    parser.add_argument("--once", action="store_true", help="run one tick, then exit")
    parser.add_argument("--demo", nargs="?", const="pedestrian", choices=("pedestrian", "find_items"),
                        help="run a full rehearsal of a pipeline (default pedestrian) against the local emulator")
    parser.add_argument("--demo-dir", type=Path, default=Path("demo-run"), help="working folder of --demo")
    parser.add_argument("--seed", type=int, default=1, help="random seed of --demo's simulated crowd")
    parser.add_argument("--aggregation", choices=("MajorityVote", "DawidSkene", "Wawa"), default=None,
                        help="run --demo with a fixed overlap and this aggregation method (default: the "
                             "dynamic policy with learned worker quality, see docs/decisions.md)")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.demo:
        from demo import run_demo

        return run_demo(args.demo_dir, seed=args.seed, aggregation=args.aggregation, pipeline=args.demo)
    import pipelines

    if args.command == "unrestrict":
        if not args.worker:
            print("pipeline: unrestrict needs the worker's Toloka user id", file=sys.stderr)
            return 2
        return _unrestrict(args.config, args.worker, args.pool)
    from engine.runner import RunOptions
    from engine.runner import main as run_main

    return run_main(args.config, RunOptions(once=args.once), pipelines.get)


def _unrestrict(config: Path, worker: str, pool: str | None) -> int:
    import asyncio

    import pipelines
    from common.errors import PipelineError
    from engine.commands import unrestrict

    try:
        settings = pipelines.load_settings(config)
        lines = asyncio.run(unrestrict(pipelines.get(settings.definition), settings, worker, pool))
    except PipelineError as exc:
        print(f"pipeline: {exc}", file=sys.stderr)
        return 2
    print("\n".join(lines) if lines else f"{worker} has no restriction on the pipeline's pools")
    return 0


if __name__ == "__main__":
    sys.exit(main())
