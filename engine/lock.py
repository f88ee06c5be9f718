"""One daemon per ``saves/`` folder: an exclusive, non-blocking ``flock`` on ``saves/daemon.lock``.

The kernel drops the lock when the holder dies (even on ``kill -9``), so a stale
lock file never blocks a restart; the file is never deleted (deleting it would
let two processes lock two different files of the same name). The holder
writes its pid into the file so a second daemon can say who is in the way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from pathlib import Path

from common.errors import StateError
from engine.durable import ensure_private_folder, open_private, write_all

LOCK_NAME = "daemon.lock"


class LockHeldError(StateError):
    """Another daemon holds the lock on the saves folder."""

    def __init__(self, folder: Path, pid: int | None) -> None:
        self.folder = folder
        self.pid = pid
        holder = f"pid {pid}" if pid is not None else "pid unknown"
        super().__init__(
            f"another pipeline daemon ({holder}) is already running on saves folder {folder}; "
            f"stop it first, or give this one another [Pipeline] saves_folder"
        )


class DaemonLock:
    """The exclusive lock on ``<folder>/daemon.lock``; a context manager."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder).absolute()
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock at once or raise :class:`LockHeldError` (never waits)."""
        if self._fd is not None:
            return
        ensure_private_folder(self.folder)
        try:
            fd = open_private(self.path, os.O_RDWR | os.O_CREAT)
        except OSError as exc:
            raise StateError(f"cannot open lock file {self.path}: {exc.strerror or exc}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            pid = _read_pid(fd)
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockHeldError(self.folder, pid) from None
            raise StateError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        try:
            os.ftruncate(fd, 0)
            write_all(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only a courtesy for the error message of a second daemon
        self._fd = fd

    def release(self) -> None:
        """Release the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DaemonLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
