"""Benchmark: how often the garbage collector runs in the daemon, and for how much CPU.

Runs the daemon side of ``side_by_side.py`` once (same scenario, seed and ticks), with the
collector's first threshold set to ``--first-threshold`` (the daemon's own default when
omitted), and prints, per generation, the collections and the CPU they took (timed with
``gc.callbacks`` inside the daemon, ``time.process_time``), the process's CPU and its peak memory.

    python bench/gc_count.py [--first-threshold 700] [--scenario realistic] [--seed 1]

Compare two thresholds by running it once with each; the process's CPU moves by about
+-0.4 s from run to run on a shared machine, the collector's own figures much less.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "bench"))
sys.path.insert(0, str(REPO))

import side_by_side  # noqa: E402  # (E402: the repository is put on sys.path first)

from tools import harness  # noqa: E402

# Run inside the daemon's process instead of pipeline.py: counts the collector, then runs pipeline.py.
_WRAPPER = """
import atexit, gc, json, os, runpy, sys, time
sys.path.insert(0, os.environ["GC_COUNT_REPO"])
import engine.runner
if os.environ.get("GC_COUNT_THRESHOLD"):
    engine.runner._GC_FIRST_THRESHOLD = int(os.environ["GC_COUNT_THRESHOLD"])
counts = {"collections": [0, 0, 0], "cpu_ms": [0.0, 0.0, 0.0]}
started = [0.0]
def timer(phase, info):
    if phase == "start":
        started[0] = time.process_time()
    else:
        counts["collections"][info["generation"]] += 1
        counts["cpu_ms"][info["generation"]] += (time.process_time() - started[0]) * 1000
gc.callbacks.append(timer)
def save():
    counts["threshold"] = gc.get_threshold()
    with open(os.environ["GC_COUNT_OUT"], "w") as out:
        json.dump(counts, out)
atexit.register(save)
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--first-threshold", type=int, default=None,
                        help="the collector's first threshold (default: what the daemon sets)")
    parser.add_argument("--scenario", default="realistic")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=60)
    parser.add_argument("--period", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=900)
    args = parser.parse_args()

    harness.compile_sources()
    with tempfile.TemporaryDirectory(prefix="gc-count-") as name:
        root = Path(name)
        wrapper, result = root / "wrapper.py", root / "gc.json"
        wrapper.write_text(_WRAPPER, encoding="utf-8")
        os.environ["GC_COUNT_REPO"] = str(REPO)
        os.environ["GC_COUNT_OUT"] = str(result)
        if args.first_threshold is not None:
            os.environ["GC_COUNT_THRESHOLD"] = str(args.first_threshold)
        command = side_by_side._pipeline_command

        def wrapped(pipeline: str, ini: Path, organizations: int, period: int) -> list[str]:
            plain = command(pipeline, ini, organizations, period)
            return [plain[0], str(wrapper), *plain[1:]]

        side_by_side._pipeline_command = wrapped
        run = side_by_side.one_run("daemon", 0, root / "runs", args)
        if run.timed_out or not result.exists():  # killed, not stopped: its counts died with it
            sys.exit(f"gc_count: the daemon did not finish within --time-limit or did not stop cleanly "
                     f"(exit {run.exit_code}): no counts")
        counts = json.loads(result.read_text(encoding="utf-8"))
    print(f"command: python bench/gc_count.py {' '.join(sys.argv[1:])}".rstrip())
    print(f"thresholds {tuple(counts['threshold'])}; {run.pedestrian_assignments} pedestrian assignments; "
          f"process CPU {run.cpu_s:.2f} s; peak {run.maxrss_mb:.0f} MB")
    for generation in range(3):
        print(f"  generation {generation}: {counts['collections'][generation]} collections, "
              f"{counts['cpu_ms'][generation]:.0f} ms")
    print(f"  all: {sum(counts['collections'])} collections, {sum(counts['cpu_ms']):.0f} ms")


if __name__ == "__main__":
    main()
