"""The effect journal on real files: pending before execution, done after, compacted, crash-proof."""

from __future__ import annotations

import json
import logging
import os
import pickle
import random
import signal
import stat
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pytest

from engine.actions import (
    AppendRows,
    CopyPhoto,
    CreateTasks,
    LinkTo,
    PayBonus,
    SetStatus,
    StorePhoto,
    TaskSpec,
    operation_uuid,
)
from engine.checkpoint import CheckpointStore
from engine.durable import crc_line
from common.errors import StateError
from common.tracked import TrackedDict
from engine.journal import Journal, JournalSnapshot, decode_value, encode_value
from engine_helpers import run_worker
from engine_workers import effects_of_tick


def bonus(n: int, amount: str = "0.05") -> PayBonus:
    return PayBonus(f"a{n}", f"u{n}", Decimal(amount), "Bonus", "menu", operation_uuid("bonus", f"a{n}"))


EVERY_KIND = [
    StorePhoto("att-1", "tmp/2026-11-22/a1/imgs_facade/0.jpg"),
    CopyPhoto("tmp/2026-11-22/a1/imgs_facade/0.jpg", "main/a1/imgs_facade/0.jpg"),
    CreateTasks(
        "3",
        operation_uuid("quality", "a1"),
        (
            TaskSpec({"url": LinkTo("tmp/x.jpg"), "urls": [LinkTo("a"), LinkTo("b")], "$weird": 1}, 3, ("u1",)),
            TaskSpec({"n": 2.5, "flag": True, "none": None}, 5),
        ),
    ),
    SetStatus("a1", "REJECTED", "Low quality photos", {"name": "Cafe\tTab", "address": "Main st. 1"}),
    bonus(1, "0.15"),
    AppendRows("main_tasks", "a1/main", ({"name": "Café «Ы»", "photo": LinkTo("main/a1.jpg")},)),
]


def test_every_effect_kind_round_trips_through_json() -> None:
    """Encoding is exact: Decimals, tuples, nested links and odd dict keys come back equal."""
    for effect in EVERY_KIND:
        text = json.dumps(encode_value(effect))
        assert decode_value(json.loads(text)) == effect


def test_only_action_records_are_journalled() -> None:
    """Anything that is not plain data from engine.actions is refused."""
    with pytest.raises(TypeError):
        encode_value(object())
    with pytest.raises(TypeError):
        encode_value(JournalSnapshot())
    with pytest.raises(ValueError):
        decode_value({"$a": "Path", "f": {}})


def test_recorded_effects_survive_a_crash(tmp_path: Path) -> None:
    """Pending effects are on disk when record returns: a reopen without any checkpoint finds them."""
    journal = Journal.open(tmp_path / "saves")
    assert journal.record(EVERY_KIND) == EVERY_KIND
    journal.mark_done([EVERY_KIND[0], EVERY_KIND[1].key])
    # no close, no compaction: as after kill -9
    again = Journal.open(tmp_path / "saves")
    assert again.pending() == EVERY_KIND[2:]
    assert again.status(EVERY_KIND[0].key) == "done" and again.status(EVERY_KIND[2].key) == "pending"
    assert stat.S_IMODE(again.path.stat().st_mode) == 0o600


def test_replayed_decisions_are_neither_lost_nor_doubled(tmp_path: Path) -> None:
    """Recording a pending or done key again is a no-op; a conflicting replay keeps the first."""
    journal = Journal.open(tmp_path / "saves")
    assert journal.record([bonus(1), bonus(2), bonus(1)]) == [bonus(1), bonus(2)]
    journal.mark_done([bonus(1)])
    assert journal.record([bonus(1), bonus(2), bonus(3)]) == [bonus(3)]
    assert journal.record([bonus(2, "9.99")]) == []  # same assignment, other amount: never a second bonus
    assert journal.pending() == [bonus(2), bonus(3)]
    lines = journal.path.read_text().splitlines()
    assert len(lines) == 4  # three pending lines and one done line, nothing written twice


def test_compaction_keeps_only_what_is_not_done(tmp_path: Path) -> None:
    """After the checkpoint is written the file is emptied and done keys forgotten; pending ones stay."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(n) for n in range(100)])
    journal.mark_done([bonus(n) for n in range(99)])
    snapshot = journal.snapshot()
    assert snapshot == JournalSnapshot.of(199, [bonus(99)])
    journal.compact(snapshot)
    assert journal.path.read_bytes() == b""
    assert journal.status(bonus(5).key) is None and journal.status(bonus(99).key) == "pending"
    journal.close()
    reopened = Journal.open(tmp_path / "saves", snapshot)
    assert reopened.pending() == [bonus(99)] and reopened.seq == 199
    reopened.record([bonus(100)])
    assert Journal.open(tmp_path / "saves", snapshot).pending() == [bonus(99), bonus(100)]


def test_a_checkpoint_saves_only_the_effects_a_tick_added_or_finished(tmp_path: Path) -> None:
    """300 effects wait; a tick that finishes one and decides one appends a record of about two effects."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(n) for n in range(300)])
    store = CheckpointStore(tmp_path / "saves")
    store.save({"journal": journal.snapshot()})
    base_size = store.path.stat().st_size
    journal.mark_done([bonus(7)])
    journal.record([bonus(300)])
    snapshot = journal.snapshot()
    assert journal.snapshot().effects is snapshot.effects  # one mapping, brought up to date
    encoded = store.encode({"journal": snapshot})
    assert encoded.base is False and len(encoded) < 1_000 < 30_000 < base_size
    store.write(encoded)
    loaded = CheckpointStore(tmp_path / "saves").load()["journal"]
    assert loaded.seq == journal.seq == 302
    assert loaded.pending == tuple(journal.pending()) == (*[bonus(n) for n in range(301) if n != 7],)
    reopened = Journal.open(tmp_path / "saves", loaded)
    reopened.mark_done([bonus(0)])
    reopened.snapshot()
    assert loaded.pending[0] == bonus(0)  # the checkpoint's copy stays as saved: a restart's recount reads it


def test_a_snapshot_keeps_the_pending_order_when_a_replay_replaces_an_effect(tmp_path: Path) -> None:
    """An effect a replay read again from its line stands where the pending set has it, in the snapshot too."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1), bonus(2)])  # lines 1 and 2
    older = JournalSnapshot.of(0, [bonus(2)])  # a checkpoint from before those lines, holding bonus 2 already
    reopened = Journal.open(tmp_path / "saves", older)
    assert reopened.pending() == [bonus(2), bonus(1)]
    snapshot = reopened.snapshot()
    assert list(snapshot.effects) == [bonus(2).key, bonus(1).key]
    pairs = zip(snapshot.effects, reopened.pending(), strict=True)
    assert all(snapshot.effects[key] is effect for key, effect in pairs)


class _SavedBeforeTheTracking:
    """Pickles as a JournalSnapshot did before its effects were tracked: state [seq, tuple of effects]."""

    def __init__(self, seq: int, pending: tuple[PayBonus, ...]) -> None:
        self.state = [seq, pending]

    def __reduce_ex__(self, protocol: object) -> tuple[object, ...]:
        return object.__new__, (JournalSnapshot,), self.state  # loads as copyreg.__newobj__ did


def test_a_snapshot_saved_before_the_tracking_loads_tracked(tmp_path: Path) -> None:
    """A checkpoint of an earlier release holds a tuple of effects: it loads as a tracked mapping, in order."""
    snapshot = pickle.loads(pickle.dumps(_SavedBeforeTheTracking(7, (bonus(2), bonus(1)))))
    assert isinstance(snapshot, JournalSnapshot) and isinstance(snapshot.effects, TrackedDict)
    assert snapshot.seq == 7 and snapshot.pending == (bonus(2), bonus(1))
    assert Journal.open(tmp_path / "saves", snapshot).pending() == [bonus(2), bonus(1)]


def test_entries_written_while_the_checkpoint_was_saved_are_kept(tmp_path: Path) -> None:
    """Lines newer than the snapshot survive compaction (the executor may run during a save)."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1), bonus(2)])
    snapshot = journal.snapshot()
    journal.mark_done([bonus(1)])  # after the snapshot was taken
    journal.record([bonus(3)])
    journal.compact(snapshot)
    assert len(journal.path.read_text().splitlines()) == 2
    reopened = Journal.open(tmp_path / "saves", snapshot)
    assert reopened.pending() == [bonus(2), bonus(3)]
    assert reopened.status(bonus(1).key) == "done"


def test_crash_between_checkpoint_and_compaction_is_harmless(tmp_path: Path) -> None:
    """Old lines the checkpoint already covers are skipped, not replayed twice."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1), bonus(2)])
    journal.mark_done([bonus(1)])
    snapshot = journal.snapshot()  # the checkpoint got this ... and the process died before compact()
    reopened = Journal.open(tmp_path / "saves", snapshot)
    assert reopened.pending() == [bonus(2)] and reopened.status(bonus(1).key) is None
    reopened.record([bonus(3)])
    assert Journal.open(tmp_path / "saves", snapshot).pending() == [bonus(2), bonus(3)]


def test_what_a_done_effect_learned_is_replayed_until_compacted(tmp_path: Path) -> None:
    """A done line carries what the effect told the pipeline; a restart hands it back, compaction forgets it."""
    photo, status = EVERY_KIND[0], EVERY_KIND[3]
    refusal = "pool closed \ud800 \u00ab\u042b\u00bb"  # Toloka's text, with a lone surrogate (from a \\ud800 escape)
    journal = Journal.open(tmp_path / "saves")
    journal.record([photo, status, bonus(1), bonus(2)])
    saved = journal.snapshot()
    snapshot = JournalSnapshot.of(saved.seq, saved.pending)  # as the checkpoint holds it (the journal's own changes)
    journal.mark_done([photo, status], {photo.key: {"facts": '{"ok":true}'}, status.key: {"overtaken": "ACCEPTED"}})
    later = journal.snapshot()
    journal.mark_done([bonus(1)], {bonus(1).key: {"refused": refusal}})
    assert journal.learned(photo.key) == {"facts": '{"ok":true}'}
    journal.close()
    reopened = Journal.open(tmp_path / "saves", snapshot)  # a kill -9 before the next checkpoint
    assert reopened.learned(photo.key) == {"facts": '{"ok":true}'}
    assert reopened.learned(status.key) == {"overtaken": "ACCEPTED"} and reopened.learned(bonus(2).key) == {}
    assert reopened.learned(bonus(1).key) == {"refused": refusal}
    reopened.compact(later)  # covers the first done lines, not the last one
    assert reopened.learned(photo.key) == {} and reopened.learned(status.key) == {}
    assert reopened.learned(bonus(1).key) == {"refused": refusal}
    reopened.close()
    again = Journal.open(tmp_path / "saves", later)
    assert again.learned(bonus(1).key) == {"refused": refusal}
    with pytest.raises(TypeError, match="must map names to text"):
        again.mark_done([bonus(2)], {bonus(2).key: {"facts": 7}})  # type: ignore[dict-item]
    assert again.status(bonus(2).key) == "pending"


def test_a_done_line_with_a_bad_learned_record_stops_start_up(tmp_path: Path) -> None:
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1)])
    journal.close()
    with open(journal.path, "ab") as handle:  # a well-formed line with a learned record no daemon writes
        handle.write(crc_line({"seq": 2, "op": "done", "key": bonus(1).key, "learned": {"facts": 7}}))
    with pytest.raises(StateError, match="line 2: bad learned record"):
        Journal.open(tmp_path / "saves")


def test_torn_last_line_is_cut_off(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An append cut short by a crash loses only that unacknowledged line."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1)])
    whole = journal.path.read_bytes()
    with open(journal.path, "ab") as handle:
        handle.write(whole[: len(whole) // 2])  # half of a second line, no newline
    with caplog.at_level(logging.WARNING, logger="engine.journal"):
        reopened = Journal.open(tmp_path / "saves")
    assert "unfinished last line" in caplog.text
    assert reopened.pending() == [bonus(1)] and journal.path.read_bytes() == whole
    reopened.record([bonus(2)])
    assert Journal.open(tmp_path / "saves").pending() == [bonus(1), bonus(2)]


def test_damaged_line_in_the_middle_stops_start_up(tmp_path: Path) -> None:
    """Corruption before the end is not a torn append: StateError naming file and line, file untouched."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1), bonus(2), bonus(3)])
    lines = journal.path.read_bytes().split(b"\n")
    lines[1] = lines[1].replace(b'"a2"', b'"a9"')  # checksum no longer matches
    damaged = b"\n".join(lines)
    journal.path.write_bytes(damaged)
    with pytest.raises(StateError) as info:
        Journal.open(tmp_path / "saves")
    assert str(journal.path) in str(info.value) and "line 2 is corrupt" in str(info.value)
    assert journal.path.read_bytes() == damaged


def test_missing_entries_are_detected(tmp_path: Path) -> None:
    """A journal that continues past what the checkpoint covers (checkpoint lost) is refused."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1), bonus(2)])
    snapshot = journal.snapshot()
    journal.compact(snapshot)
    journal.record([bonus(3)])  # entry 3
    with pytest.raises(StateError) as info:
        Journal.open(tmp_path / "saves", None)  # as if checkpoint.pkl had been deleted
    assert "entries are missing" in str(info.value) and str(journal.path) in str(info.value)


def test_journal_writable_by_others_is_refused(tmp_path: Path) -> None:
    """Someone who can append to the journal could order payments: refused."""
    journal = Journal.open(tmp_path / "saves")
    journal.record([bonus(1)])
    journal.path.chmod(0o622)
    with pytest.raises(StateError) as info:
        Journal.open(tmp_path / "saves")
    assert "writable by group or others" in str(info.value)


def _recovered(folder: Path) -> tuple[int, Journal, JournalSnapshot]:
    state = CheckpointStore(folder).load() or {"next": 0, "journal": JournalSnapshot()}
    return state["next"], Journal.open(folder, state["journal"]), state["journal"]


def _assert_no_line_twice(journal: Journal, snapshot: JournalSnapshot, context: str) -> None:
    entries = [json.loads(line.split(" ", 1)[1]) for line in journal.path.read_text().splitlines()]
    live = [e for e in entries if e["seq"] > snapshot.seq]
    pending_lines = Counter(e["key"] for e in live if e["op"] == "pending")
    done_lines = Counter(e["key"] for e in live if e["op"] == "done")
    assert max(pending_lines.values(), default=1) == 1, context
    assert max(done_lines.values(), default=1) == 1, context
    assert not {e.key for e in snapshot.pending} & set(pending_lines), context


def test_kill_9_never_loses_or_doubles_an_effect(tmp_path: Path) -> None:
    """A miniature daemon killed at random instants: every recorded effect is pending or done, once."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    folder, world = tmp_path / "saves", tmp_path / "world.log"
    max_tick = 250  # small enough to finish well inside the worker's time limit on a slow disk
    recorded: set[str] = set()
    done_acked: set[str] = set()
    for round_number in range(6):
        child = run_worker("journal-loop", str(folder), str(world), str(max_tick))
        assert child.stdout is not None
        first = child.stdout.readline()
        time.sleep(rng.uniform(0.0, 0.4))
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode in (-signal.SIGKILL, 0), err
        for line in (first + out).splitlines():
            kind, _, key = line.partition(" ")
            (recorded if kind == "R" else done_acked if kind == "D" else set()).add(key)
        context = f"seed {seed}, round {round_number}"
        next_tick, journal, snapshot = _recovered(folder)
        executed = Counter(world.read_text().splitlines()) if world.exists() else Counter()
        pending = {effect.key for effect in journal.pending()}
        for key in recorded:
            status = journal.status(key)
            # pending, or done since the last compaction, or done and compacted into the checkpoint
            assert status in ("pending", "done") or executed[key] >= 1, f"{context}: {key} lost"
            if status is None:
                assert key not in pending
        for key in done_acked:
            assert key not in pending, f"{context}: {key} was marked done and came back"
        _assert_no_line_twice(journal, snapshot, context)
        journal.close()
    # a last run without a kill finishes the work: everything decided is executed, nothing pending
    child = run_worker("journal-loop", str(folder), str(world), str(max_tick))
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0 and out.rstrip().endswith("finished"), err
    for line in out.splitlines():
        kind, _, key = line.partition(" ")
        if kind == "D":
            done_acked.add(key)
    next_tick, journal, snapshot = _recovered(folder)
    assert next_tick == max_tick and journal.pending() == [] and snapshot.pending == ()
    executed = Counter(world.read_text().splitlines())
    every_key = {effect.key for tick in range(max_tick) for effect in effects_of_tick(tick)}
    assert set(executed) == every_key, f"seed {seed}"
    # An effect runs twice only if the kill fell between running it and marking it done; that
    # window holds at most one effect per kill (the executor is sequential).
    assert sum(count - 1 for count in executed.values()) <= 6, f"seed {seed}: {executed.most_common(8)}"
