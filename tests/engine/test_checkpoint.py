"""Checkpoints on real files: atomic, private, plain data only, and loud about every kind of damage."""

from __future__ import annotations

import hashlib
import os
import pickle
import random
import signal
import stat
import threading
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from engine_helpers import run_worker
from engine_workers import blob_for, works_for

from common.errors import StateError
from common.secrets import Secret
from common.tracked import TrackedDict
from engine.actions import PayBonus, operation_uuid
from engine.checkpoint import FORMAT_VERSION, MAGIC, CheckpointStore, encode_checkpoint
from engine.journal import JournalSnapshot

NOW = datetime(2026, 11, 22, 17, 0, tzinfo=UTC)


def sample_state() -> dict[str, Any]:
    bonus = PayBonus("a1", "u1", Decimal("0.15"), "Bonus", "interior, menu", operation_uuid("bonus", "a1"))
    return {
        "cursors": {"1": (NOW, frozenset({"a1", "a2"}))},
        "undecided": {"a3/main": ["p1", "p2"]},
        "journal": JournalSnapshot.of(7, [bonus]),
        "spent": Decimal("12.35"),
    }


def saved(tmp_path: Path) -> CheckpointStore:
    store = CheckpointStore(tmp_path / "saves")
    store.save(sample_state())
    return store


def test_round_trip_keeps_plain_state(tmp_path: Path) -> None:
    """What was saved loads back equal, including Decimals, datetimes and effect records."""
    store = saved(tmp_path)
    assert CheckpointStore(tmp_path / "saves").load() == sample_state()
    assert store.path.read_bytes().startswith(MAGIC + b" %d " % FORMAT_VERSION)


def test_first_start_has_no_checkpoint(tmp_path: Path) -> None:
    """No file yet: load returns None (a fresh start), and creates the private folder."""
    store = CheckpointStore(tmp_path / "saves")
    assert store.load() is None
    assert stat.S_IMODE((tmp_path / "saves").stat().st_mode) == 0o700


def test_files_are_owner_only(tmp_path: Path) -> None:
    """Checkpoint and its log 0600 in a 0700 folder, even with a permissive umask; no temp file left behind."""
    old = os.umask(0o000)
    try:
        store = saved(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    names = sorted(p.name for p in store.folder.iterdir())
    assert names[0] == "checkpoint.pkl" and len(names) == 2 and names[1].endswith(".log")
    assert stat.S_IMODE((store.folder / names[1]).stat().st_mode) == 0o600


def test_leftover_temp_file_is_replaced(tmp_path: Path) -> None:
    """A temp file left by a kill (even with loose permissions) does not get in the way."""
    folder = tmp_path / "saves"
    folder.mkdir(mode=0o700)
    leftover = folder / "checkpoint.pkl.tmp"
    leftover.write_bytes(b"half a checkpoint")
    leftover.chmod(0o644)
    store = CheckpointStore(folder)
    store.save({"n": 1})
    assert not leftover.exists() and store.load() == {"n": 1}
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600


@pytest.mark.parametrize(
    ("value", "named"),
    [
        (Secret("toloka_token", "AQAA-secret-value"), "Secret ('toloka_token')"),
        (threading.Lock(), "_thread.lock"),
        (lambda: None, "builtins.function"),
        (open, "builtins.builtin_function_or_method"),
    ],
)
def test_non_plain_data_is_refused_and_old_file_kept(tmp_path: Path, value: object, named: str) -> None:
    """Clients, locks, functions and Secrets never reach the disk; the previous checkpoint stays."""
    store = saved(tmp_path)
    before = store.path.read_bytes()
    with pytest.raises(StateError) as info:
        store.save({"handler": {"client": value}})
    assert named in str(info.value)
    assert "AQAA-secret-value" not in str(info.value)
    assert store.path.read_bytes() == before


def expect_load_error(store: CheckpointStore, *fragments: str) -> StateError:
    before = store.path.read_bytes() if store.path.is_file() else None
    with pytest.raises(StateError) as info:
        store.load()
    message = str(info.value)
    assert str(store.path) in message and "left in place" in message
    for fragment in fragments:
        assert fragment in message, message
    if before is not None:
        assert store.path.read_bytes() == before, "a damaged checkpoint must be left untouched"
    return info.value


def test_truncated_checkpoint_stops_start_up(tmp_path: Path) -> None:
    """A file cut short (disk full, copy interrupted) is reported, not reset."""
    store = saved(tmp_path)
    data = store.path.read_bytes()
    store.path.write_bytes(data[: len(data) // 2])
    expect_load_error(store, "truncated")


def test_truncated_inside_header_stops_start_up(tmp_path: Path) -> None:
    """Only part of the header: not a checkpoint any more."""
    store = saved(tmp_path)
    store.path.write_bytes(MAGIC[:10])
    expect_load_error(store, "bad header")


def test_garbage_bytes_stop_start_up(tmp_path: Path) -> None:
    """Random bytes in place of the checkpoint are reported as corrupt."""
    store = saved(tmp_path)
    store.path.write_bytes(os.urandom(4096))
    expect_load_error(store, "corrupt")


def test_flipped_byte_is_caught_by_the_checksum(tmp_path: Path) -> None:
    """Damage inside the pickle that pickle itself would not notice is still caught."""
    store = saved(tmp_path)
    data = bytearray(store.path.read_bytes())
    position = data.index(b"12.35")
    data[position] = ord("9")
    store.path.write_bytes(bytes(data))
    expect_load_error(store, "checksum")


def _with_header(payload: bytes, version: int = FORMAT_VERSION) -> bytes:
    digest = hashlib.sha256(payload).hexdigest().encode()
    return b"%s %d %d %s\n" % (MAGIC, version, len(payload), digest) + payload


def test_unknown_version_is_refused(tmp_path: Path) -> None:
    """A checkpoint from a newer format is not guessed at."""
    store = saved(tmp_path)
    store.path.write_bytes(_with_header(pickle.dumps({"n": 1}), version=FORMAT_VERSION + 1))
    expect_load_error(store, f"format version {FORMAT_VERSION + 1}", f"reads version {FORMAT_VERSION}")


def test_foreign_classes_are_never_loaded(tmp_path: Path) -> None:
    """A well-formed file that names os.system (or any non-plain class) is refused, never run."""
    store = saved(tmp_path)
    store.path.write_bytes(_with_header(pickle.dumps(os.system)))
    expect_load_error(store, "refusing to load posix.system")


@pytest.mark.parametrize("mode", [0o620, 0o602, 0o666])
def test_checkpoint_writable_by_others_is_refused(tmp_path: Path, mode: int) -> None:
    """Unpickling a file others can write would run their code: refused with the chmod advice."""
    store = saved(tmp_path)
    store.path.chmod(mode)
    with pytest.raises(StateError) as info:
        store.load()
    assert "writable by group or others" in str(info.value) and str(store.path) in str(info.value)
    assert stat.S_IMODE(store.path.stat().st_mode) == mode


def test_folder_writable_by_others_is_refused(tmp_path: Path) -> None:
    """Others could swap the file in a group/world-writable folder."""
    store = saved(tmp_path)
    store.folder.chmod(0o777)
    with pytest.raises(StateError) as info:
        store.load()
    assert str(store.folder) in str(info.value) and "chmod go-w" in str(info.value)


def test_a_folder_in_place_of_the_checkpoint_is_reported(tmp_path: Path) -> None:
    """Unreadable as a checkpoint (a folder of that name): a StateError naming it."""
    store = CheckpointStore(tmp_path / "saves")
    store.path.parent.mkdir(mode=0o700)
    store.path.mkdir()
    expect_load_error(store, "not a regular file")


def test_symlinked_checkpoint_is_not_followed(tmp_path: Path) -> None:
    """A symlink in place of the checkpoint is refused (it could point anywhere)."""
    store = saved(tmp_path)
    real = tmp_path / "elsewhere.pkl"
    store.path.rename(real)
    store.path.symlink_to(real)
    with pytest.raises(StateError) as info:
        store.load()
    assert str(store.path) in str(info.value)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permission bits")
def test_unreadable_checkpoint_stops_start_up(tmp_path: Path) -> None:
    """A checkpoint the daemon's user cannot read is reported, not treated as absent."""
    store = saved(tmp_path)
    store.path.chmod(0o000)
    try:
        with pytest.raises(StateError) as info:
            store.load()
        assert str(store.path) in str(info.value)
    finally:
        store.path.chmod(0o600)


def test_kill_9_during_writes_leaves_old_or_new_state(tmp_path: Path) -> None:
    """A writer killed at random instants: the file always loads, and holds the last or the next state."""
    seed = int.from_bytes(os.urandom(4), "big")
    rng = random.Random(seed)
    folder = tmp_path / "saves"
    store = CheckpointStore(folder)
    acked = 0
    for round_number in range(6):
        child = run_worker("checkpoint-loop", str(folder))
        assert child.stdout is not None
        first = child.stdout.readline()  # the writer is up and saving
        time.sleep(rng.uniform(0.0, 0.4))  # then a random instant, most likely inside a write
        child.send_signal(signal.SIGKILL)
        out, err = child.communicate(timeout=30)
        assert child.returncode == -signal.SIGKILL, err
        lines = [line for line in (first + out).splitlines() if line.startswith("saved ")]
        if lines:
            acked = int(lines[-1].split()[1])
        state = store.load()
        context = f"seed {seed}, round {round_number}, last acknowledged {acked}"
        if state is None:
            assert acked == 0, context
            continue
        assert state["n"] in (acked, acked + 1), context
        assert state["blob"] == blob_for(state["n"]), context
        assert len(state["ids"]) == state["n"] % 50, context
        assert state["works"] == works_for(state["n"]), context  # base and log: the entries of that same save
        acked = state["n"]
    assert acked > 0, f"seed {seed}: the writer never saved anything"


# -- the base and its log ------------------------------------------------------------------


def tracked_state(entries: int = 200, blob: bytes = b"") -> dict[str, Any]:
    works: TrackedDict[str, bytes] = TrackedDict({f"k{i}": bytes([i % 251]) * 1000 for i in range(entries)})
    return {"n": 0, "works": works, "blob": blob}


def log_of(store: CheckpointStore) -> Path:
    (path,) = store.folder.glob("checkpoint.pkl.*.log")
    return path


def saved_with_records(tmp_path: Path, records: int) -> tuple[CheckpointStore, list[dict[str, Any]]]:
    """A base, then ``records`` saves that each change one entry; the states as saved (copies)."""
    store = CheckpointStore(tmp_path / "saves")
    state = tracked_state()
    store.save(state)
    states = []
    for n in range(1, records + 1):
        state["n"] = n
        state["works"][f"k{n}"] = b"changed %d" % n
        encoded = store.encode(state)
        assert encoded.base is False
        store.write(encoded)
        states.append({"n": n, "works": dict(state["works"]), "blob": b""})
    return store, states


def test_a_tick_appends_only_the_entries_it_changed(tmp_path: Path) -> None:
    """200 entries of 1 KB: a save after one change appends a record of a few hundred bytes, not 200 KB."""
    store = CheckpointStore(tmp_path / "saves")
    state = tracked_state()
    assert store.encode(state).base is True  # the first write is a whole base
    store.save(state)
    base_size = store.path.stat().st_size
    state["works"]["k5"] = b"new"
    state["n"] = 1
    encoded = store.encode(state)
    assert encoded.base is False and len(encoded) < 600 < 200_000 < base_size
    store.write(encoded)
    loaded = CheckpointStore(tmp_path / "saves").load()
    assert loaded["n"] == 1 and loaded["works"] == state["works"] and isinstance(loaded["works"], TrackedDict)


def test_a_torn_last_record_is_the_unfinished_checkpoint(tmp_path: Path) -> None:
    """A kill in the middle of an append: the record is cut short, or its bytes never made it. The
    state is the one before it (its effects never ran: they wait for the append to return)."""
    store, states = saved_with_records(tmp_path, 3)
    log = log_of(store)
    whole = log.read_bytes()
    for torn in (whole[:-5], whole[: len(whole) - 40] + b"\0" * 40, whole[: whole.rindex(b"\n", 0, len(whole) - 60)]):
        log.write_bytes(torn)
        assert CheckpointStore(tmp_path / "saves").load() == states[1]


def test_the_first_save_after_a_start_writes_a_new_base(tmp_path: Path) -> None:
    """Nothing is ever appended after a torn tail: a restart's first save starts a new base and log."""
    store, states = saved_with_records(tmp_path, 3)
    old_log = log_of(store)
    old_log.write_bytes(old_log.read_bytes()[:-5])
    again = CheckpointStore(tmp_path / "saves")
    state = again.load()
    assert state == states[1]
    state["works"]["k9"] = b"after restart"
    again.save(state)
    assert not old_log.exists() and log_of(again).stat().st_size == 0
    assert CheckpointStore(tmp_path / "saves").load()["works"]["k9"] == b"after restart"


@pytest.mark.parametrize("damage", ["payload byte", "length digit", "longer length", "lost newline"])
def test_a_corrupt_record_with_records_after_it_stops_start_up(tmp_path: Path, damage: str) -> None:
    """Damage that a kill cannot cause (anything before the last record) is an error, not a rewind:
    only the last append can be torn, so a bad record followed by a sound one is never a tear."""
    store, _ = saved_with_records(tmp_path, 3)
    log = log_of(store)
    data = bytearray(log.read_bytes())
    second = data.index(b"\n") + 1 + int(data[: data.index(b" ")])  # where the second record starts
    if damage == "payload byte":
        data[data.index(b"\n") + 30] ^= 0xFF
    elif damage == "length digit":
        data[second] = ord("x")
    elif damage == "longer length":
        data[second : second] = b"9"
    else:
        del data[data.index(b"\n", second)]
    log.write_bytes(bytes(data))
    expect_load_error(CheckpointStore(tmp_path / "saves"), str(log), "corrupt")


def test_the_order_of_tracked_entries_survives_a_restart(tmp_path: Path) -> None:
    """Handlers walk the works and ballots in order (a checker's learned quality follows it): a restart,
    and a restore, give the same order as the mapping in memory, whatever was deleted and set again."""
    store = CheckpointStore(tmp_path / "saves")
    works: TrackedDict[str, int] = TrackedDict({f"t{i:02d}": i for i in range(12)})
    state = {"works": works}
    store.save(state)
    works["t03"] = 103  # in place: keeps its place
    del works["t05"]
    works["t05"] = 105  # deleted and set again: now last
    works.pop("t00")
    for new in ("z", "a", "m"):  # new keys, in the order they came
        works[new] = 0
    store.save(state)
    del works["t07"]
    works["t07"] = 7
    store.save(state)
    assert list(CheckpointStore(tmp_path / "saves").load()["works"]) == list(works)
    assert list(store.restore()["works"]) == list(works)
    again = CheckpointStore(tmp_path / "saves")
    loaded = again.load()
    loaded["works"]["b"] = 1
    again.save(loaded)  # a base, from the tables kept in memory
    assert list(CheckpointStore(tmp_path / "saves").load()["works"]) == [*works, "b"]


def test_a_missing_log_stops_start_up(tmp_path: Path) -> None:
    """The log holds the latest ticks: a base without it would resume from the past, so it is refused."""
    store, _ = saved_with_records(tmp_path, 2)
    log = log_of(store)
    log.unlink()
    expect_load_error(CheckpointStore(tmp_path / "saves"), str(log), "missing")
    assert store.path.exists()


def test_a_crash_before_a_new_base_leaves_the_old_base_with_its_log(tmp_path: Path) -> None:
    """A new base's log is created first: killed right then, the old base and log still load, and the
    next base removes the stray log."""
    store, states = saved_with_records(tmp_path, 2)
    stray = store.folder / "checkpoint.pkl.0123456789abcdef.log"
    stray.write_bytes(b"")
    stray.chmod(0o600)
    again = CheckpointStore(tmp_path / "saves")
    assert again.load() == states[-1]
    again.save(states[-1])
    assert not stray.exists() and len(list(store.folder.glob("*.log"))) == 1


def test_a_version_1_checkpoint_loads_and_is_rewritten_as_a_base(tmp_path: Path) -> None:
    """Checkpoints of earlier releases are one whole pickle: they load, and the next save writes version 2."""
    folder = tmp_path / "saves"
    folder.mkdir(mode=0o700)
    path = folder / "checkpoint.pkl"
    path.write_bytes(encode_checkpoint(sample_state()))
    path.chmod(0o600)
    store = CheckpointStore(folder)
    assert store.load() == sample_state()
    store.save(sample_state())
    assert path.read_bytes().startswith(MAGIC + b" %d " % FORMAT_VERSION) and FORMAT_VERSION == 2
    assert CheckpointStore(folder).load() == sample_state()


def test_a_failed_encode_forgets_no_change(tmp_path: Path) -> None:
    """An encode that fails after taking the marks gives them back: a later save still drops a deleted entry,
    and a moved one stands at the end."""
    store = CheckpointStore(tmp_path / "saves")
    state = {"works": TrackedDict({"a": 1, "b": 2, "c": 3}), "more": TrackedDict()}
    store.save(state)
    del state["works"]["b"]
    del state["works"]["a"]
    state["works"]["a"] = 1  # moved to the end
    state["more"]["x"] = object()  # the works' marks are taken, then this entry cannot be pickled
    with pytest.raises(StateError):
        store.encode(state)
    del state["more"]["x"]
    store.write(store.encode(state))
    loaded = CheckpointStore(tmp_path / "saves").load()
    assert list(loaded["works"].items()) == [("c", 3), ("a", 1)]


def test_restore_gives_the_state_as_last_encoded(tmp_path: Path) -> None:
    """What the engine goes back to when a handler fails half-way: the last checkpoint, not later changes."""
    store = CheckpointStore(tmp_path / "saves")
    state = tracked_state(5)
    store.save(state)
    state["works"]["k1"] = b"checkpointed"
    store.encode(state)
    state["works"]["k2"] = b"after the checkpoint"
    state["works"].pop("k3")
    restored = store.restore()
    assert restored["works"]["k1"] == b"checkpointed"
    assert restored["works"]["k2"] == tracked_state(5)["works"]["k2"] and "k3" in restored["works"]


def test_an_entry_changed_without_a_mark_fails_under_verification(tmp_path: Path) -> None:
    """The tests' mode: a value changed in place after a walk (no read by key, no touch) is an error."""
    store = CheckpointStore(tmp_path / "saves", verify=True)
    state = {"works": TrackedDict({"a": [1], "b": [2]})}
    store.save(state)
    next(iter(state["works"].values())).append(99)  # found by walking: nothing marks it
    with pytest.raises(StateError, match=r"changed without being marked.*'a'"):
        store.encode(state)


def test_an_entry_changed_without_a_mark_is_saved_by_the_next_base(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """In production the check runs when a base is written: the change is logged as a bug and saved."""
    store = CheckpointStore(tmp_path / "saves", verify=False)
    state = {"works": TrackedDict({"a": [1], "b": [2]}), "blob": b""}
    store.save(state)
    next(iter(state["works"].values())).append(99)
    bases = []
    for _ in range(4):  # a big blob outside the mapping makes the log outgrow the base quickly
        state["blob"] = os.urandom(300_000)
        encoded = store.encode(state)
        bases.append(encoded.base)
        store.write(encoded)
    assert True in bases[1:], bases
    assert "changed without being marked" in caplog.text
    assert CheckpointStore(tmp_path / "saves").load()["works"]["a"] == [1, 99]


def test_equal_values_that_pickle_differently_after_a_restart_are_not_reported(tmp_path: Path) -> None:
    """Pickles of equal values can differ (which strings are shared changes through a load): not a change."""
    from handlers.state import Group, Photo, Work

    photo = Photo("imgs/0", "imgs", "att", "k.jpg")
    work = Work("pa1", "u1", NOW.replace(tzinfo=None), {"name": "n"}, "ok", "", "", {"main": Group("main", [photo])})
    packages = ("engine", "handlers", "aggregation")
    store = CheckpointStore(tmp_path / "saves", packages=packages, verify=True)
    store.save({"works": TrackedDict({"pa1": work})})
    again = CheckpointStore(tmp_path / "saves", packages=packages, verify=True)
    state = again.load()
    again.save(state)  # compares every unmarked entry: equal values pass
    assert again.restore()["works"]["pa1"] == work


def test_a_mapping_that_leaves_the_state_and_comes_back_brings_no_old_entry_back(tmp_path: Path) -> None:
    """Saved again after it was left out, a mapping is saved whole: deletions made meanwhile stay deleted."""
    store = CheckpointStore(tmp_path / "saves")
    works: TrackedDict[str, int] = TrackedDict({"a": 1, "b": 2})
    store.save({"works": works})
    store.save({"works": works, "n": 1})  # a record, so the base keeps the first table
    store.save({"n": 2})  # the mapping is not in the state
    del works["a"]
    store.save({"works": works, "n": 3})
    assert CheckpointStore(tmp_path / "saves").load() == {"works": {"b": 2}, "n": 3}
