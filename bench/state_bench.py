"""Checkpoint size and write time of the real daemon state after N assignments went through.

    python bench/state_bench.py [--assignments 100000] [--batch 5000] [--undecided 0.01]

Runs the real, pure handlers (no network) over N pedestrian assignments in
batches, as ticks would: submit, three visit answers, three quality answers
per photo, three relevance answers per good photo. A fraction ``--undecided``
of the assignments is left waiting for its last relevance answers, as at any
moment of a long run. Then it pickles the daemon state (cursors, ledger,
journal snapshot) with the real checkpoint code and times the write.
The point: the state keeps only undecided work, so its size follows the work
in flight, not the number of assignments ever processed.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Set
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.actions import CreateTasks, Step
from engine.config import load_settings
from engine.cursor import CursorState
from engine.journal import JournalSnapshot
from engine.state import EngineState, checkpoint_store
from handlers import pedestrian, quality, relevance, visit
from handlers.state import Ledger
from pipelines.pedestrian import PEDESTRIAN
from toloka_client.records import Assignment

ROOT = Path(__file__).resolve().parents[1]
NOW = datetime(2026, 11, 22, 12, 0, 0)


def submitted(i: int) -> Assignment:
    pa = f"0000000001--{i:024x}"
    output = {"verdict": "ok", "worker_coordinates": "55.7,37.6", "comment": f"comment {i}",
              "imgs_facade": [f"att-{i}-0"], "name_business": f"att-{i}-1", "hoo_business": f"att-{i}-2",
              "imgs_name_address": [f"att-{i}-3"], "imgs_interior": f"att-{i}-4", "can_take_interior": "yes"}
    return Assignment.from_json({
        "id": pa, "pool_id": "1", "user_id": f"walker{i % 300}", "status": "SUBMITTED",
        "submitted": (NOW - timedelta(hours=1)).isoformat(),
        "tasks": [{"id": f"ped-{i}", "pool_id": "1",
                   "input_values": {"name": f"Org {i}", "address": f"Street {i}", "coordinates": "55.7,37.6"}}],
        "solutions": [{"output_values": output}],
    })


def answers(actions: list[Any], pool_id: str, label: str, *, skip: Set[str] = frozenset()) -> list[Assignment]:
    """Three checkers answer every task the actions create in ``pool_id`` (one task per assignment)."""
    out = []
    for action in actions:
        if isinstance(action, CreateTasks) and action.pool_id == pool_id:
            for n, spec in enumerate(action.tasks):
                values = {k: (v if isinstance(v, str) else "link") for k, v in spec.input_values.items()}
                if values.get("pedestrian_assignment_id") in skip:
                    continue
                task_id = f"{pool_id}-{action.operation_id[:12]}-{n}"
                for w in range(3):
                    out.append(Assignment.from_json({
                        "id": f"{task_id}-a{w}", "pool_id": pool_id, "user_id": f"checker{w}", "status": "ACCEPTED",
                        "tasks": [{"id": task_id, "pool_id": pool_id, "input_values": values}],
                        "solutions": [{"output_values": {"result": label}}],
                    }))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=5_000)
    parser.add_argument("--undecided", type=float, default=0.01)
    args = parser.parse_args()
    # The example configuration's fields and labels.
    rules = load_settings(ROOT / "toloka.example.ini", PEDESTRIAN, base_dir=ROOT).config
    state = EngineState(pipeline=PEDESTRIAN.name, state=Ledger(),
                        cursors={name: CursorState("2026-11-22T11:00:00.000000", frozenset({"x"}))
                                 for name in ("pedestrian", "visit", "quality", "relevance")})
    ledger = state.state
    pending: list[Step] = []
    started = time.perf_counter()
    for first in range(0, args.assignments, args.batch):
        batch = [submitted(i) for i in range(first, min(first + args.batch, args.assignments))]
        waiting = {a.id for a in batch[: int(len(batch) * args.undecided)] if a.id is not None}
        out = pedestrian.handle(ledger, batch, rules, NOW)
        out = visit.handle(ledger, answers(out.actions, "2", "yes"), rules, {}, NOW)
        out = quality.handle(ledger, answers(out.actions, "3", "ok"), rules, {}, NOW)
        relevance_tasks = out.actions
        done = relevance.handle(ledger, answers(relevance_tasks, "4", "relevant", skip=waiting), rules, {}, NOW)
        pending = [Step(chain, action) for chain, actions in done.chains.items() for action in actions][:200]
    processed = time.perf_counter() - started
    state.journal = JournalSnapshot.of(10_000_000, pending)
    with tempfile.TemporaryDirectory() as tmp:
        store = checkpoint_store(Path(tmp), PEDESTRIAN)
        times, sizes, encodes = [], [], []
        for _ in range(7):
            t0 = time.perf_counter()
            data = store.encode(state)
            t1 = time.perf_counter()
            sizes.append(store.write(data))
            t2 = time.perf_counter()
            encodes.append(t1 - t0)
            times.append(t2 - t1)
        t0 = time.perf_counter()
        store.load()
        load = time.perf_counter() - t0
    print(f"{args.assignments} assignments through the four handlers in {processed:.1f} s "
          f"({args.assignments / processed:.0f}/s, pure decisions)")
    print(f"undecided work kept: {len(ledger.works)} assignments, "
          f"{sum(len(b) for b in ledger.ballots.values())} tasks with waiting answers, "
          f"{len(state.journal.pending)} pending effects")
    print(f"checkpoint: {sizes[-1] / 1024:.1f} KiB; encode median {statistics.median(encodes) * 1000:.1f} ms, "
          f"write+fsync median {statistics.median(times) * 1000:.1f} ms (min {min(times) * 1000:.1f}, "
          f"max {max(times) * 1000:.1f}); load {load * 1000:.1f} ms")


if __name__ == "__main__":
    main()
