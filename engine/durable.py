"""Small durable-file helpers shared by the checkpoint, the journal and the lock.

Rules: everything under ``saves/`` is private to the daemon's user (folder 0700,
files 0600), and a file that group or others could write is never trusted,
because a pickle from a writable file is code someone else could run. Atomic
replacement is: temp file in the same folder, write, flush, fsync, ``os.replace``,
fsync the folder (so the rename itself survives a power cut). Append-only logs
(the journal, the intake record) hold one CRC-checked JSON object a line
(:func:`crc_line`), read back by :func:`read_crc_lines`.
"""

from __future__ import annotations

import json
import os
import stat
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from common.errors import StateError
from common.files import write_all

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


def crc_line(entry: Mapping[str, Any]) -> bytes:
    """One line of an append-only log: the CRC-32 of the JSON body in hex, a space, the body, a newline."""
    text = json.dumps(entry, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    try:
        body = text.encode()
    except UnicodeEncodeError:
        # A lone surrogate (a "\ud800" escape in a worker's answer or an API error message) has
        # no UTF-8 form: escaped, it reads back as the same string.
        body = json.dumps(entry, allow_nan=False, separators=(",", ":")).encode()
    return b"%08x %s\n" % (zlib.crc32(body), body)


def crc_entry(raw: bytes) -> dict[str, Any] | None:
    """The JSON object of one line written by :func:`crc_line` (without its newline), or None if damaged."""
    crc, _, body = raw.partition(b" ")
    if len(crc) != 8 or not body:
        return None
    try:
        if int(crc, 16) != zlib.crc32(body):
            return None
        entry = json.loads(body)
    except ValueError:
        return None
    return entry if isinstance(entry, dict) else None


@dataclass(frozen=True)
class CrcLines:
    """An append-only log's content as :func:`read_crc_lines` found it.

    ``entries`` are the good lines before any damage: (line number from 1, the
    line without its newline, its object). ``damaged`` is the number of a damaged
    line that is not the last: the file cannot be trusted past it. ``tail`` says
    what ends the file when a kill or a power cut interrupted the last append
    (``torn``: bytes after the last newline; ``damaged``: a last line that fails
    its check); ``good_end`` is where the good lines end, where to cut it off.
    """

    entries: list[tuple[int, bytes, dict[str, Any]]]
    damaged: int | None
    tail: Literal["torn", "damaged"] | None
    good_end: int


def read_crc_lines(data: bytes, parse: Callable[[bytes], dict[str, Any] | None] = crc_entry) -> CrcLines:
    """Split a log's bytes into its good entries, a damaged line in the middle, or a broken last append.

    ``parse`` reads one line (None when damaged): :func:`crc_entry`, or a stricter
    reader built on it that also checks the object's fields.
    """
    lines = data.split(b"\n")
    torn = lines.pop()  # the bytes after the last newline: nothing, unless the last append was torn
    entries: list[tuple[int, bytes, dict[str, Any]]] = []
    good_end = 0
    for number, raw in enumerate(lines, start=1):
        entry = parse(raw)
        if entry is None:
            if number == len(lines) and not torn:
                return CrcLines(entries, None, "damaged", good_end)  # a last line never acknowledged
            return CrcLines(entries, number, None, good_end)
        entries.append((number, raw, entry))
        good_end += len(raw) + 1
    return CrcLines(entries, None, "torn" if torn else None, good_end)
