"""Checkpoint cost per tick as the undecided state grows: the base and its log against one whole pickle.

Builds the state of a pedestrian daemon with ``--works`` undecided works (7 photos each,
measured), 3 ballots and one review per work, a full photo index (5,000 photos) and
``--pending`` effects in the journal, then runs ``--ticks`` ticks in which ``--changed``
works get a verdict on a photo (read by key, as the handlers do), one work is decided and
a new one submitted, and their ballots, review and 7 photos in the index come and go,
and a tenth of the pending effects are done and as many new ones decided.
Each tick is checkpointed twice: with
:class:`engine.checkpoint.CheckpointStore` (only what the tick marked, a new base when
the log outgrows the last one) and as one whole pickle (``encode_checkpoint`` plus an
atomic write: what every tick cost before). Prints the median CPU per tick of each and
the bytes written per tick; the mean of base+log includes the ticks that wrote a base
(each compares every entry once, the check for an entry changed without a mark).

Usage: ``python bench/checkpoint_ticks.py [--works 200 1234 5000] [--changed 20] [--ticks 60]``
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregation.photo_checks import INDEX_SIZE, Seen
from engine.actions import PayBonus, operation_uuid
from engine.checkpoint import CheckpointStore, encode_checkpoint
from engine.durable import atomic_write
from engine.journal import JournalSnapshot
from engine.spec import Review
from engine.state import EngineState
from handlers.state import Ballot, Group, Ledger, Photo, Work

PACKAGES = ("engine", "toloka_client", "file_store", "tables", "handlers", "aggregation", "pipelines")
T0 = datetime(2026, 12, 1, 9, 0)
FIELDS = ("imgs_facade", "imgs_facade", "name_business", "hoo_business", "imgs_name_address", "imgs_interior",
          "imgs_menu")


def work(n: int) -> Work:
    aid = f"00000186a1--{n:024x}"
    photos = [Photo(f"{f}/{i}", f, f"att-{n}-{i}", f"tmp/2026-12-01/{aid}/{f}/{i}.jpg",
                    facts='{"ok":true,"w":480,"h":360,"sd":43.86,"sha":"%064x","ah":"00ffffff81e76600"}' % (n * 7 + i))
              for i, f in enumerate(FIELDS)]
    groups = {"main": Group("main", photos[:5]), "imgs_interior": Group("imgs_interior", photos[5:6]),
              "imgs_menu": Group("imgs_menu", photos[6:])}
    org = {"name": f"Cafe {n}", "address": f"Main st. {n}", "coordinates": "55.85060,37.43960", "segment": "cafe",
           "phone": "+7 495 100-00-03", "website": ""}
    return Work(aid, f"user-{n % 300:032x}", T0 + timedelta(seconds=n), org, "ok", "55.85,37.43", "", groups)


def ballots(w: Work, n: int) -> list[Ballot]:
    photo = w.groups["main"].photos[n % 5]
    return [Ballot(f"task-{n}", f"asg-{n}-{k}", f"checker-{(n + k) % 90:032x}", "good", w.assignment_id,
                   f"{w.assignment_id}/main", photo.photo_id, photo.field, f"file:///photos/{photo.key}",
                   T0 + timedelta(seconds=n + k)) for k in range(3)]


def bonus(n: int) -> PayBonus:
    return PayBonus(f"a{n}", f"u{n}", Decimal("0.05"), "Bonus", "thanks", operation_uuid("bonus", str(n)))


def seen(n: int, i: int) -> tuple[str, Seen]:
    return f"{n * 7 + i:064x}", Seen(work(n).assignment_id, f"{n:016x}", (n * 7919 + i) % (1 << 64))


def run(works: int, changed: int, ticks: int, pending: int) -> tuple[float, float, float, float, float, int]:
    ledger = Ledger()
    box = ledger.ballots_of("quality")
    state = EngineState("pedestrian", ledger)
    for n in range(-(INDEX_SIZE // 7), 0):  # the index is full: photos of works decided earlier
        ledger.photo_index.seen.update(seen(n, i) for i in range(7))
    for n in range(works):
        w = ledger.works[work(n).assignment_id] = work(n)
        box[f"task-{n}"] = ballots(w, n)
        state.reviews[w.assignment_id] = Review(w.assignment_id, "pedestrian", Decimal("0.5"), w.submitted)
    state.journal = JournalSnapshot.of(1, (bonus(n) for n in range(pending)))
    with tempfile.TemporaryDirectory() as folder:
        store = CheckpointStore(Path(folder) / "saves", packages=PACKAGES, verify=False)
        store.save(state)
        whole_path = Path(folder) / "whole.pkl"
        inc, whole, written, bases, data = [], [], [], 0, b""
        for tick in range(1, ticks + 1):
            state.stats.ticks = tick
            keys = list(ledger.works)
            for j in range(changed):  # verdicts: read by key, changed in place
                w = ledger.works[keys[(tick * changed + j) % len(keys)]]
                w.groups["main"].photos[j % 5].quality = True
            decided = keys[0]  # one decided, one submitted
            del ledger.works[decided]
            state.reviews.pop(decided, None)
            box.pop(f"task-{tick - 1}", None)
            new = works + tick
            ledger.works[work(new).assignment_id] = work(new)
            box[f"task-{new}"] = ballots(work(new), new)
            state.reviews[work(new).assignment_id] = Review(work(new).assignment_id, "pedestrian", Decimal("0.5"), T0)
            effects = state.journal.effects  # a tenth of the effects done, as many new ones
            for n in range(tick * (pending // 10), (tick + 1) * (pending // 10)):
                effects.pop(next(iter(effects)))
                effects[bonus(pending + n).key] = bonus(pending + n)
            for i in range(7):
                sha, entry = seen(new, i)
                ledger.photo_index.seen[sha] = entry
                ledger.photo_index.seen.pop(next(iter(ledger.photo_index.seen)))
            start = time.process_time()
            encoded = store.encode(state)
            store.write(encoded)
            inc.append(time.process_time() - start)
            written.append(len(encoded))
            bases += encoded.base
            start = time.process_time()
            atomic_write(whole_path, data := encode_checkpoint(state, PACKAGES))
            whole.append(time.process_time() - start)
        return (statistics.median(inc) * 1000, statistics.mean(inc) * 1000, statistics.median(whole) * 1000,
                statistics.mean(written) / 1024, len(data) / 1024, bases)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--works", type=int, nargs="+", default=[200, 1234, 5000])
    parser.add_argument("--changed", type=int, default=20, help="works given a verdict per tick")
    parser.add_argument("--ticks", type=int, default=60)
    parser.add_argument("--pending", type=int, default=100, help="effects pending in the journal")
    args = parser.parse_args()
    print(f"{args.changed} works changed, 1 decided and 1 submitted per tick; {args.pending} effects pending; "
          f"{args.ticks} ticks; CPU per tick")
    print(f"{'works':>6} | {'base+log ms':>11} | {'(mean)':>6} | {'whole ms':>8} | {'ratio':>5} | "
          f"{'KB written/tick':>15} | {'whole KB':>8} | bases")
    for works in args.works:
        inc, mean, whole, written, size, bases = run(works, args.changed, args.ticks, args.pending)
        print(f"{works:>6} | {inc:>11.1f} | {mean:>6.1f} | {whole:>8.1f} | {inc / whole:>5.2f} | {written:>15.0f} | "
              f"{size:>8.0f} | {bases}")


if __name__ == "__main__":
    main()
