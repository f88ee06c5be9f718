"""Checkpoint write time and size after 100,000 pedestrian assignments were processed.

Builds the state the daemon would hold at that point, as the engine intends it:
cursors (one per pool: event time plus the ids seen at that instant), handler
states that keep only *undecided* work (assignments still under review, tasks
waiting for overlap, photos waiting for answers), a few counters, and the
journal compacted to its pending effects. For contrast it also measures a state
that keeps every processed assignment ("keep everything"), which is what the
rule "state must not keep what is done" avoids.

Usage: ``python bench/checkpoint_bench.py [--assignments 100000] [--in-flight 0.02] [--repeat 7]``
Prints encode (pickle), write (temp file + fsync + rename + folder fsync) and
load times, and the file size.
"""

from __future__ import annotations

import argparse
import hashlib
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.actions import AppendRows, CopyPhoto, CreateTasks, LinkTo, PayBonus, SetStatus, TaskSpec, operation_uuid
from engine.checkpoint import CheckpointStore
from engine.journal import JournalSnapshot

START = datetime(2026, 11, 1, tzinfo=UTC)
MAIN = ("imgs_facade", "name_business", "hoo_business", "imgs_name_address")
BONUS = ("imgs_interior", "imgs_covid_policy", "imgs_outdoor_seating", "imgs_menu")


def aid(n: int) -> str:
    """A Toloka-like assignment id."""
    return f"{n:012x}--" + hashlib.blake2b(str(n).encode(), digest_size=12).hexdigest()


def organization(n: int) -> dict[str, str]:
    return {
        "name": f"Cafe number {n}",
        "address": f"{n % 900 + 1} Long Street, Springfield",
        "coordinates": f"55.{n % 100000:05d},37.{(n * 7) % 100000:05d}",
        "segment": "food",
        "phone": f"+1 555 {n % 10000:04d}",
        "website": f"https://cafe{n}.example.org",
    }


def photos(n: int) -> dict[str, tuple[str, ...]]:
    fields = MAIN + BONUS[: n % 3]
    return {f: tuple(f"tmp/2026-11-22/{aid(n)}/{f}/{k}.jpg" for k in range(1 + n % 2)) for f in fields}


def answers(n: int, count: int) -> list[tuple[str, str, float]]:
    return [(f"worker{(n * 31 + k) % 5000}", "ok" if k % 3 else "bad", 50.0 + k) for k in range(count)]


def cursors(now: datetime) -> dict[str, dict[str, Any]]:
    return {
        pool: {"event_time": now - timedelta(seconds=60), "ids_at_time": frozenset(aid(i) for i in range(3))}
        for pool in ("1", "2", "3", "4")
    }


def undecided_state(total: int, in_flight: int, now: datetime) -> dict[str, Any]:
    """Only work that is not decided yet: the most recent ``in_flight`` assignments."""
    recent = range(total - in_flight, total)
    third = in_flight // 3
    visit = {aid(n): {"org": organization(n), "photos": photos(n), "answers": answers(n, n % 3)}
             for n in recent[:third]}
    quality = {
        aid(n): {
            "org": organization(n),
            "groups": {g: {url: answers(n, k % 3) for k, url in enumerate(sum(photos(n).values(), ()))}
                       for g in ("main", "imgs_interior")},
        }
        for n in recent[third: 2 * third]
    }
    relevance = {
        aid(n): {"org": organization(n), "good": photos(n), "answers": {f: answers(n, 2) for f in MAIN}}
        for n in recent[2 * third:]
    }
    pedestrian = {aid(n): {"submitted": now - timedelta(hours=n % 48), "user": f"u{n % 3000}"} for n in recent}
    return {"pedestrian": pedestrian, "visit": visit, "quality": quality, "relevance": relevance}


def pending_effects(total: int, count: int) -> tuple[Any, ...]:
    effects: list[Any] = []
    for n in range(total - count, total):
        a = aid(n)
        kind = n % 4
        if kind == 0:
            effects.append(CreateTasks("3", operation_uuid("quality", a),
                                       tuple(TaskSpec({"url": LinkTo(k), "assignment": a}, 3, (f"u{n}",))
                                             for k in sum(photos(n).values(), ()))))
        elif kind == 1:
            effects.append(SetStatus(a, "ACCEPTED", "Good job", {"name": f"Cafe {n}"}))
        elif kind == 2:
            effects.append(PayBonus(a, f"u{n}", Decimal("0.10"), "Bonus", "interior, menu", operation_uuid("bonus", a)))
        else:
            effects.append(CopyPhoto(f"tmp/2026-11-22/{a}/imgs_facade/0.jpg", f"main/{a}/imgs_facade/0.jpg"))
            effects.append(AppendRows("main_tasks", f"{a}/main", ({**organization(n), "photo": LinkTo(a)},)))
    return tuple(effects)


def build_state(total: int, in_flight: int, now: datetime) -> dict[str, Any]:
    return {
        "schema": 1,
        "cursors": cursors(now),
        "handlers": undecided_state(total, in_flight, now),
        "counters": {"processed": total, "accepted": total * 6 // 10, "rejected": total * 3 // 10,
                     "bonus_paid": Decimal("0.05") * total},
        "journal": JournalSnapshot.of(total * 9, pending_effects(total, 200)),
    }


def build_everything_state(total: int, now: datetime) -> dict[str, Any]:
    """The anti-pattern: every processed assignment kept forever."""
    state = build_state(total, 0, now)
    state["handlers"]["done"] = {aid(n): {"org": organization(n), "photos": photos(n), "decision": "ACCEPTED"}
                                 for n in range(total)}
    return state


def measure(store: CheckpointStore, state: dict[str, Any], repeat: int) -> dict[str, float]:
    encode, write, load = [], [], []
    size = 0
    for _ in range(repeat):
        t0 = time.perf_counter()
        data = store.encode(state)
        t1 = time.perf_counter()
        size = store.write(data)
        t2 = time.perf_counter()
        loaded = store.load()
        t3 = time.perf_counter()
        assert loaded == state
        encode.append(t1 - t0)
        write.append(t2 - t1)
        load.append(t3 - t2)
    return {
        "size": size,
        "encode": statistics.median(encode),
        "write": statistics.median(write),
        "write_min": min(write),
        "write_max": max(write),
        "load": statistics.median(load),
    }


def report(name: str, result: dict[str, float]) -> None:
    print(
        f"{name:<28} size {result['size'] / 1024:9.1f} KiB | encode {result['encode'] * 1000:7.1f} ms | "
        f"write+fsync {result['write'] * 1000:7.1f} ms (min {result['write_min'] * 1000:.1f}, "
        f"max {result['write_max'] * 1000:.1f}) | load {result['load'] * 1000:7.1f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=100_000)
    parser.add_argument("--in-flight", type=float, default=0.02, help="share of assignments still undecided")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--folder", type=Path, default=None, help="where to write (default: a temp folder)")
    args = parser.parse_args()
    now = START + timedelta(days=21)
    in_flight = int(args.assignments * args.in_flight)
    with tempfile.TemporaryDirectory(prefix="checkpoint-bench-") as tmp:
        folder = args.folder or Path(tmp) / "saves"
        print(f"{args.assignments} assignments processed, {in_flight} undecided, 200 pending effects, "
              f"median of {args.repeat} runs, folder {folder}")
        report("compacted (what we keep)",
               measure(CheckpointStore(folder), build_state(args.assignments, in_flight, now), args.repeat))
        report("keep everything (avoided)",
               measure(CheckpointStore(folder, "everything.pkl"), build_everything_state(args.assignments, now),
                       max(3, args.repeat // 2)))


if __name__ == "__main__":
    main()
