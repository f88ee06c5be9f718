"""Small durable-file helpers shared by the checkpoint, the journal and the lock.

Rules: everything under ``saves/`` is private to the daemon's user (folder 0700,
files 0600), and a file that group or others could write is never trusted,
because a pickle from a writable file is code someone else could run. Atomic
replacement is: temp file in the same folder, write, flush, fsync, ``os.replace``,
fsync the folder (so the rename itself survives a power cut).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from common.errors import StateError

FILE_MODE = 0o600
FOLDER_MODE = 0o700


def ensure_private_folder(folder: Path) -> Path:
    """Create ``folder`` (mode 0700) if needed and refuse one that others may write.

    Returns the absolute path. Raises :class:`StateError` naming the folder when it
    cannot be created or is group/other-writable.
    """
    folder = Path(folder).absolute()
    try:
        folder.mkdir(mode=FOLDER_MODE, parents=True, exist_ok=True)
        info = folder.stat()
    except OSError as exc:
        raise StateError(f"cannot use state folder {folder}: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(info.st_mode):
        raise StateError(f"state folder {folder} is not a folder")
    if info.st_mode & 0o022:
        raise StateError(
            f"state folder {folder} is writable by group or others (mode {stat.filemode(info.st_mode)}); "
            f"run `chmod go-w {folder}` (0700 is expected)"
        )
    return folder


def refuse_shared_file(path: Path, info: os.stat_result) -> None:
    """Raise :class:`StateError` if ``path`` is writable by group or others."""
    if info.st_mode & 0o022:
        raise StateError(
            f"refusing to load {path}: it is writable by group or others "
            f"(mode {stat.filemode(info.st_mode)}); if you trust its content run "
            f"`chmod 600 {path}`"
        )


def fsync_folder(folder: Path) -> None:
    """Flush a folder's entries (a rename or a new file) to disk."""
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def open_private(path: Path, flags: int) -> int:
    """``os.open`` with mode 0600, and force 0600 even on a file that already existed."""
    fd = os.open(path, flags | os.O_CLOEXEC, FILE_MODE)
    try:
        os.fchmod(fd, FILE_MODE)
    except OSError:
        os.close(fd)
        raise
    return fd


def write_all(fd: int, data: bytes) -> None:
    """Write every byte of ``data`` (``os.write`` may write less than asked)."""
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def atomic_write(path: Path, data: bytes) -> None:
    """Replace ``path`` with ``data`` so that readers see either the old or the new file.

    The temp file has a fixed name next to the target: the daemon lock ensures one
    writer, and a temp file left by a kill is simply overwritten next time.
    """
    tmp = path.with_name(path.name + ".tmp")
    fd = open_private(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    try:
        write_all(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsync_folder(path.parent)
