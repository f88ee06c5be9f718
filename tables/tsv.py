"""Append-only TSV tables that survive hostile text and crashes.

Workers type anything into free-text fields: tabs, newlines, quotes, ``=cmd``.
Every value is written with csv quoting so ``pandas.read_csv(path, sep="\\t")``
reads back exactly the text that was typed (only NUL and unpaired surrogates,
which no TSV reader can carry, become U+FFFD).

Crash safety: a batch of records is written with one ``write()`` on an
``O_APPEND`` descriptor and fsync'ed, so a killed process leaves either all of
it or none. A record torn by a power loss is cut off when the table is opened
(and reported), and :meth:`TsvTable.append_once` skips records already present
at the end of the file, so a journal replay after a crash adds no duplicate.

Errors are :class:`TableError`. A disk error is retryable only when it is
EAGAIN-like (:func:`common.errors.retryable_os_error`): a full disk, a
permission or a read-only file system waits for a person, and so does a file
with other columns.
"""

from __future__ import annotations

import csv
import io
import logging
import os
import re
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path

from common.errors import PipelineError, retryable_os_error

log = logging.getLogger(__name__)

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
# A replayed record is looked for only in the file's tail: replays happen at
# start-up, right after the crash that interrupted them.
_TAIL_BYTES = 4 * 1024 * 1024


class TableError(PipelineError):
    """A TSV table cannot be opened or written (the message names the file).

    ``retryable`` is set from the disk error behind it, if any.
    """


def clean(value: object) -> str:
    """The text written for ``value``: ``str(value)`` minus characters no TSV can hold."""
    text = "" if value is None else str(value)
    return _BAD_CHARS.sub("\ufffd", text)


def encode_records(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> bytes:
    """Encode ``rows`` as TSV records (no header), every field quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL, lineterminator="\n")
    for row in rows:
        unknown = set(row) - set(columns)
        if unknown:
            raise ValueError(f"unknown columns {sorted(unknown)}; expected {list(columns)}")
        writer.writerow([clean(row.get(column, "")) for column in columns])
    return buffer.getvalue().encode("utf-8")


class TsvTable:
    """One TSV file with a fixed header, appended to by one process.

    The executor appends from worker threads (``asyncio.to_thread``), several
    at once: a lock makes "check the header, look for a replay, write" one
    step, so two first appends cannot both write a header and two replays
    cannot both find their rows missing.
    """

    def __init__(self, path: str | os.PathLike[str], columns: Sequence[str]) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self._header = encode_records(self.columns, [dict(zip(self.columns, self.columns, strict=True))])
        self._ready = False
        self._lock = threading.Lock()

    def append(self, rows: Sequence[Mapping[str, object]]) -> None:
        """Append ``rows`` (header first if the file is new), durably."""
        if rows:
            data = encode_records(self.columns, rows)
            with self._lock:
                self._write(data)

    def append_once(self, rows: Sequence[Mapping[str, object]]) -> bool:
        """Append ``rows`` unless exactly these records already sit in the file's tail.

        Returns False when they were found (a replay after a crash) and nothing was written.
        """
        if not rows:
            return False
        data = encode_records(self.columns, rows)
        with self._lock:
            self._prepare()
            if self._in_tail(data):
                return False
            self._write(data)
            return True

    def repair(self) -> None:
        """At start-up: check an existing file's header and cut a torn last record left by a crash.

        Appends do this too, but only once something is appended; a table that gets no row
        for a while would keep a half-written line (and show it to readers) until then.
        A missing file is left alone (it is created with its first row).
        """
        with self._lock:
            if self.path.exists():
                self._prepare()

    # -- internals -------------------------------------------------------

    def _prepare(self) -> None:
        if self._ready:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size > 0:
                self._check_header()
                self._repair_torn_tail()
            else:
                self._raw_write(self._header)
        except OSError as exc:
            raise _disk_error("write", self.path, exc) from None
        self._ready = True

    def _check_header(self) -> None:
        with self.path.open("rb") as handle:
            first = handle.read(len(self._header))
        if first == self._header:
            return
        older = self._older_columns(first)
        if older is not None:
            self._add_columns(older)
            return
        if first != self._header:
            raise TableError(
                f"{self.path} has other columns than expected ({', '.join(self.columns)}); "
                "move it aside or restore the matching configuration"
            )

    def _older_columns(self, first: bytes) -> tuple[str, ...] | None:
        """The columns of a file written by an earlier release, if ours only add columns at the end."""
        for n in range(len(self.columns) - 1, 0, -1):
            older = self.columns[:n]
            header = encode_records(older, [dict(zip(older, older, strict=True))])
            if first.startswith(header):
                return older
        return None

    def _add_columns(self, older: tuple[str, ...]) -> None:
        """Rewrite a table from an earlier release with the new columns (empty in old rows); atomic."""
        data = self.path.read_bytes()
        data = data[: _complete_prefix(data)]
        records = list(csv.reader(io.StringIO(data.decode("utf-8")), delimiter="\t", quotechar='"'))[1:]
        rows = [dict(zip(older, record, strict=False)) for record in records]
        temporary = self.path.with_name(self.path.name + ".upgrade")
        with temporary.open("wb") as handle:
            handle.write(self._header + encode_records(self.columns, rows))
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)
        finally:
            os.close(directory)
        log.warning("%s: added the column(s) %s (empty in its %d earlier rows)",
                    self.path, ", ".join(self.columns[len(older):]), len(rows))

    def _repair_torn_tail(self) -> None:
        """Cut a record that a power loss left half-written (never a whole one)."""
        data = self.path.read_bytes()
        good = _complete_prefix(data)
        if good == len(data):
            return
        log.warning("%s ended in a torn record (%d bytes); cut it off", self.path, len(data) - good)
        with self.path.open("r+b") as handle:
            handle.truncate(good)
            os.fsync(handle.fileno())

    def _in_tail(self, data: bytes) -> bool:
        try:
            size = self.path.stat().st_size
            with self.path.open("rb") as handle:
                start = max(0, size - _TAIL_BYTES - len(data))
                handle.seek(start)
                tail = handle.read()
        except OSError as exc:
            raise _disk_error("read", self.path, exc) from None
        if tail.endswith(data) and (len(tail) == len(data) or tail[-len(data) - 1 : -len(data)] == b"\n"):
            return True
        return (b"\n" + data) in tail

    def _write(self, data: bytes) -> None:
        self._prepare()
        try:
            self._raw_write(data)
        except OSError as exc:
            raise _disk_error("write", self.path, exc) from None

    def _raw_write(self, data: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            written = os.write(fd, data)
            if written != len(data):  # a regular file only writes short on a full disk
                raise OSError(f"short write ({written} of {len(data)} bytes)")
            os.fsync(fd)
        finally:
            os.close(fd)


def _disk_error(action: str, path: Path, exc: OSError) -> TableError:
    """``cannot <action> <path>: <reason>``, retryable only for EAGAIN-like errors (not a full disk)."""
    return TableError(f"cannot {action} {path}: {exc.strerror or exc}", retryable=retryable_os_error(exc))


def _complete_prefix(data: bytes) -> int:
    """Length of the longest prefix of ``data`` made of whole records.

    A newline ends a record only outside quotes; with doubled quotes inside
    fields, the parity of the quotes seen so far tells which is the case.
    """
    quotes = 0
    offset = 0
    last_end = 0
    for line in data.split(b"\n")[:-1]:  # the piece after the last newline is unterminated
        quotes += line.count(b'"')
        offset += len(line) + 1
        if quotes % 2 == 0:
            last_end = offset
    return last_end
