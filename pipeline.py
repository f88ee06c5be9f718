"""The crowdsourcing pipeline daemon: ``python pipeline.py [--config toloka.ini] [--once] [--demo [NAME]]``.

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
    parser.add_argument("--config", type=Path, default=Path("toloka.ini"),
                        help="configuration file (default: toloka.ini)")
    parser.add_argument("--once", action="store_true", help="run one tick, then exit")
    parser.add_argument("--demo", nargs="?", const="pedestrian", choices=("pedestrian", "find_items"),
                        help="run a full rehearsal of a pipeline (default pedestrian) against the local emulator")
    parser.add_argument("--demo-dir", type=Path, default=Path("demo-run"), help="working folder of --demo")
    parser.add_argument("--seed", type=int, default=1, help="random seed of --demo's simulated crowd")
    parser.add_argument("--aggregation", choices=("MajorityVote", "DawidSkene", "Wawa"), default="MajorityVote",
                        help="aggregation method of --demo's verification pools")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.demo:
        from demo import run_demo

        return run_demo(args.demo_dir, seed=args.seed, aggregation=args.aggregation, pipeline=args.demo)
    import pipelines
    from engine.runner import RunOptions
    from engine.runner import main as run_main

    return run_main(args.config, RunOptions(once=args.once), pipelines.get)


if __name__ == "__main__":
    sys.exit(main())
