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
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.actions import PayBonus, operation_uuid
from engine.checkpoint import FORMAT_VERSION, MAGIC, CheckpointStore
from common.errors import StateError
from engine.journal import JournalSnapshot
from common.secrets import Secret
from engine_helpers import run_worker
from engine_workers import blob_for

NOW = datetime(2026, 11, 22, 17, 0, tzinfo=timezone.utc)


def sample_state() -> dict[str, Any]:
    bonus = PayBonus("a1", "u1", Decimal("0.15"), "Bonus", "interior, menu", operation_uuid("bonus", "a1"))
    return {
        "cursors": {"1": (NOW, frozenset({"a1", "a2"}))},
        "undecided": {"a3/main": ["p1", "p2"]},
        "journal": JournalSnapshot(seq=7, pending=(bonus,)),
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
    """Checkpoint 0600 in a 0700 folder, even with a permissive umask; no temp file left behind."""
    old = os.umask(0o000)
    try:
        store = saved(tmp_path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert stat.S_IMODE(store.folder.stat().st_mode) == 0o700
    assert sorted(p.name for p in store.folder.iterdir()) == ["checkpoint.pkl"]


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
        acked = state["n"]
    assert acked > 0, f"seed {seed}: the writer never saved anything"
