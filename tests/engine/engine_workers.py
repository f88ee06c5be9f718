"""Child processes for the engine's crash tests (run as a script; killed with SIGKILL by the tests).

Commands:
  checkpoint-loop FOLDER          save checkpoints n=1,2,... forever; print "saved n" after each
  journal-loop FOLDER WORLD MAX   a miniature daemon: decide, record, execute, mark done, checkpoint
  hold-lock FOLDER                take the daemon lock, print "locked <pid>", wait for stdin to close
  try-lock FOLDER                 take the daemon lock or print the error and exit 3
Every loop is bounded in iterations and time.
"""

from __future__ import annotations

import os
import sys
import time
from decimal import Decimal
from pathlib import Path

from engine.actions import CreateTasks, PayBonus, TaskSpec, operation_uuid
from common.tracked import TrackedDict
from engine.checkpoint import CheckpointStore
from common.errors import StateError
from engine.journal import Journal, JournalSnapshot
from engine.lock import DaemonLock

TIME_LIMIT_S = 60.0


def blob_for(n: int) -> bytes:
    """A payload whose size and bytes depend on ``n``, so a mix of two versions is detectable."""
    return bytes([n % 251]) * (1000 + (n % 13) * 20_000)


def works_for(n: int) -> dict[str, tuple[int, bytes]]:
    """The tracked mapping after save ``n``: each save rewrites one of 40 entries (and drops one)."""
    works = {f"w{m % 40}": (m, bytes([m % 251]) * 3000) for m in range(max(1, n - 39), n + 1)}
    works.pop(f"w{(n + 7) % 40}", None)
    return works


def checkpoint_loop(folder: Path) -> None:
    store = CheckpointStore(folder)
    state = store.load()
    n = state["n"] if state else 0
    works = state["works"] if state else TrackedDict()
    started = time.monotonic()
    while n < 1_000_000 and time.monotonic() - started < TIME_LIMIT_S:
        n += 1
        target = works_for(n)  # one entry new, one gone: a base now and then, records between
        for key in set(works) | set(target):
            if key not in target:
                del works[key]
            elif dict.get(works, key) != target[key]:
                works[key] = target[key]
        store.save({"n": n, "blob": blob_for(n), "ids": [f"a{i}" for i in range(n % 50)], "works": works})
        print(f"saved {n}", flush=True)


def effects_of_tick(tick: int) -> list[CreateTasks | PayBonus]:
    """What the miniature handler decides at ``tick``: deterministic, like a real replay."""
    decided: list[CreateTasks | PayBonus] = []
    for j in range(1 + tick % 3):
        if (tick + j) % 2:
            decided.append(
                PayBonus(f"a{tick}-{j}", f"u{tick}", Decimal("0.05") * (j + 1), "Bonus", "thanks",
                         operation_uuid("bonus", str(tick), str(j)))
            )
        else:
            decided.append(
                CreateTasks("2", operation_uuid("tasks", str(tick), str(j)),
                            (TaskSpec({"pedestrian_assignment_id": f"a{tick}-{j}"}, 3, (f"u{tick}",)),))
            )
    return decided


def journal_loop(folder: Path, world: Path, max_tick: int) -> None:
    store = CheckpointStore(folder)
    state = store.load() or {"next": 0, "journal": JournalSnapshot()}
    journal = Journal.open(folder, state["journal"])
    out = open(world, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the whole run

    def execute(effect: CreateTasks | PayBonus) -> None:
        out.write(effect.key + "\n")  # the "external world": every execution attempt, in order
        out.flush()

    def checkpoint(next_tick: int) -> None:
        snapshot = journal.snapshot()  # taken together with the state it belongs to
        store.save({"next": next_tick, "journal": snapshot})
        journal.compact(snapshot)

    started = time.monotonic()
    tick = state["next"]
    while time.monotonic() - started < TIME_LIMIT_S:
        for effect in journal.pending():  # retry what is still pending (after a restart, or left over)
            execute(effect)
            journal.mark_done([effect])
            print(f"D {effect.key}", flush=True)
        if tick >= max_tick:
            break
        fresh = journal.record(effects_of_tick(tick))
        for effect in effects_of_tick(tick):
            print(f"R {effect.key}", flush=True)  # recorded (new or already known): must never be lost
        tick += 1
        for index, effect in enumerate(fresh):
            if (tick + index) % 5 == 0:
                continue  # an effect that "failed" this tick: stays pending, retried next tick
            execute(effect)
            journal.mark_done([effect])
            print(f"D {effect.key}", flush=True)
        checkpoint(tick)
    checkpoint(tick)
    journal.close()
    print("finished", flush=True)


def hold_lock(folder: Path) -> None:
    with DaemonLock(folder):
        print(f"locked {os.getpid()}", flush=True)
        sys.stdin.read()  # until the test closes our stdin (or kills us)


def try_lock(folder: Path) -> int:
    try:
        with DaemonLock(folder):
            print("locked", flush=True)
    except StateError as exc:
        print(f"error: {exc}", file=sys.stderr, flush=True)
        return 3
    return 0


def main(argv: list[str]) -> int:
    command, folder = argv[0], Path(argv[1])
    if command == "checkpoint-loop":
        checkpoint_loop(folder)
    elif command == "journal-loop":
        journal_loop(folder, Path(argv[2]), int(argv[3]))
    elif command == "hold-lock":
        hold_lock(folder)
    elif command == "try-lock":
        return try_lock(folder)
    else:
        raise SystemExit(f"unknown command {command}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
