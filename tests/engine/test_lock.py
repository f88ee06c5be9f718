"""One daemon per saves folder, checked with real processes."""

from __future__ import annotations

import signal
import stat
from pathlib import Path

import pytest

from engine.lock import DaemonLock, LockHeldError
from engine_helpers import run_worker


def hold(folder: Path):  # type: ignore[no-untyped-def]
    """A child process holding the lock; returns it once it says so."""
    holder = run_worker("hold-lock", str(folder), stdin=-1)
    assert holder.stdout is not None
    line = holder.stdout.readline()
    assert line.startswith("locked "), holder.stderr.read() if holder.stderr else line
    return holder, int(line.split()[1])


def test_second_daemon_exits_at_once_naming_folder_and_pid(tmp_path: Path) -> None:
    """While one process holds saves/, another fails immediately with the folder and the holder's pid."""
    folder = tmp_path / "saves"
    holder, pid = hold(folder)
    try:
        second = run_worker("try-lock", str(folder))
        out, err = second.communicate(timeout=60)  # a blocking lock would hang here until the timeout
        assert second.returncode == 3, (out, err)
        assert f"pid {pid}" in err and str(folder.absolute()) in err and "already running" in err
        assert "locked" not in out
    finally:
        holder.kill()
        holder.communicate(timeout=30)


def test_lock_is_free_after_the_holder_is_killed(tmp_path: Path) -> None:
    """kill -9 of the holder releases the lock: the stale file never blocks a restart."""
    folder = tmp_path / "saves"
    holder, _ = hold(folder)
    holder.send_signal(signal.SIGKILL)
    holder.communicate(timeout=30)
    second = run_worker("try-lock", str(folder))
    out, err = second.communicate(timeout=60)
    assert second.returncode == 0 and out.strip() == "locked", err


def test_in_process_second_lock_raises_and_release_frees(tmp_path: Path) -> None:
    """The same rule inside one process; release makes the folder available again."""
    first = DaemonLock(tmp_path / "saves")
    first.acquire()
    try:
        with pytest.raises(LockHeldError) as info:
            DaemonLock(tmp_path / "saves").acquire()
        assert info.value.folder == (tmp_path / "saves").absolute()
        assert stat.S_IMODE(first.path.stat().st_mode) == 0o600
    finally:
        first.release()
    with DaemonLock(tmp_path / "saves") as again:
        assert again.held
    assert not again.held


def test_the_intake_lock_is_its_own_and_names_add_and_the_holder(tmp_path: Path) -> None:
    """``add``'s lock is the same kind of lock on another file: it ignores the daemon's, refuses a second add."""
    from engine.intake import IntakeLock, IntakeLockHeld

    saves = tmp_path / "saves"
    with DaemonLock(saves), IntakeLock(saves) as first:
        assert first.path.name == "intake.lock" and first.held
        with pytest.raises(IntakeLockHeld) as info:
            IntakeLock(saves).acquire()
    message = str(info.value)
    assert "another `pipeline.py add` is running" in message and str(saves.absolute()) in message
    assert "pid " in message  # the holder wrote its pid, as the daemon's lock does
    with IntakeLock(saves) as again:
        assert again.held
