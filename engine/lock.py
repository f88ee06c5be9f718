"""Exclusive folder locks: one daemon per ``saves/`` folder (``daemon.lock``), one ``add`` (``intake.lock``).

A lock is a non-blocking ``flock`` on a file in the folder. The kernel drops it
when the holder dies (even on ``kill -9``), so a stale lock file never blocks a
restart; the file is never deleted (deleting it would let two processes lock two
different files of the same name). The holder writes its pid into the file so a
second process can say who is in the way.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
from collections.abc import Callable
from pathlib import Path
from typing import Self

from common.errors import StateError
from common.files import write_all
from engine.durable import ensure_private_folder, open_private

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


class FolderLock:
    """The exclusive lock on ``<folder>/<name>``; a context manager.

    ``held_error(folder, pid)`` makes the error raised when another process holds
    it (``pid`` is the holder's, when it could be read), so each lock names its
    own kind of holder.
    """

    def __init__(self, folder: Path, name: str, held_error: Callable[[Path, int | None], StateError]) -> None:
        self.folder = Path(folder).absolute()
        self.path = self.folder / name
        self._held_error = held_error
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> None:
        """Take the lock at once or raise the ``held_error`` (never waits)."""
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
                raise self._held_error(self.folder, pid) from None
            raise StateError(f"cannot lock {self.path}: {exc.strerror or exc}") from None
        try:
            os.ftruncate(fd, 0)
            write_all(fd, f"{os.getpid()}\n".encode())
        except OSError:
            pass  # the pid is only a courtesy for the error message of a second process
        self._fd = fd

    def release(self) -> None:
        """Release the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, 0)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> Self:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class DaemonLock(FolderLock):
    """One daemon per saves folder: the lock on ``<folder>/daemon.lock``."""

    def __init__(self, folder: Path) -> None:
        super().__init__(folder, LOCK_NAME, LockHeldError)


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode("ascii", "replace").strip()
        return int(text) if text else None
    except (OSError, ValueError):
        return None
