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

One fact, one row: a table opened with a ``key`` (the columns that identify a
fact, e.g. ``pedestrian_assignment_id`` in ``main_tasks.tsv``) skips every row
whose key is already in the file, whenever and by whichever run it was written.
That is what keeps a start from scratch (``saves/`` lost, ``--fresh``), which
decides everything again at another time, from doubling the tables. The index
is read once, when the table is first opened or appended to, and kept in
memory as 16-byte digests (about 90 bytes a row), updated on each append.

Errors are :class:`TableError`. A disk error is retryable only when it is
EAGAIN-like (:func:`common.errors.retryable_os_error`): a full disk, a
permission or a read-only file system waits for a person, and so does a file
with other columns.
"""

from __future__ import annotations

import contextlib
import csv
import hashlib
import io
import logging
import os
import re
import threading
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from common.errors import PipelineError, retryable_os_error

log = logging.getLogger(__name__)

_BAD_CHARS = re.compile("[\x00\ud800-\udfff]")
# A replayed record is looked for only in the file's tail: replays happen at
# start-up, right after the crash that interrupted them.
_TAIL_BYTES = 4 * 1024 * 1024
# What we write we must read back: a worker's comment may exceed csv's default field limit (128 KiB).
csv.field_size_limit(2**31 - 1)


class TableError(PipelineError):
    """A TSV table cannot be opened or written (the message names the file).

    ``retryable`` is set from the disk error behind it, if any.
    """


def clean(value: object) -> str:
    """The text written for ``value``: ``str(value)`` minus characters no TSV can hold."""
    text = "" if value is None else str(value)
    if text.isascii() and "\x00" not in text:  # most cells: nothing to replace, no regex run
        return text
    return _BAD_CHARS.sub("\ufffd", text)


def encode_records(columns: Sequence[str], rows: Sequence[Mapping[str, object]]) -> bytes:
    """Encode ``rows`` as TSV records (no header), every field quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", quotechar='"', quoting=csv.QUOTE_ALL, lineterminator="\n")
    known = frozenset(columns)
    for row in rows:
        if not known.issuperset(row):
            unknown = set(row) - known
            raise ValueError(f"unknown columns {sorted(unknown)}; expected {list(columns)}")
        writer.writerow([clean(row.get(column, "")) for column in columns])
    return buffer.getvalue().encode("utf-8")


def keep_owner_and_mode(fd: int, original: os.stat_result) -> None:
    """Give a replacement file (open as ``fd``) the owner, group and mode of the file it will replace.

    A table rewritten by a person's command run as root beside the service user
    (``relink``, ``reverse``, a column upgrade) must stay the service user's, or the
    daemon's next append fails. Someone who is not root cannot give a file away:
    then the group is kept where allowed, and the mode always.
    """
    try:
        os.fchown(fd, original.st_uid, original.st_gid)
    except PermissionError:
        with contextlib.suppress(PermissionError):
            os.fchown(fd, -1, original.st_gid)
    os.fchmod(fd, original.st_mode & 0o7777)  # after fchown, which may clear set-id bits


def replace_keeping_owner(path: Path, data: bytes, suffix: str) -> None:
    """Replace ``path`` by ``data`` atomically (temp file ``<name><suffix>``, fsync, rename, folder
    fsync), the new file keeping the owner, group and mode of the old (:func:`keep_owner_and_mode`)."""
    original = path.stat()
    temporary = path.with_name(path.name + suffix)
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        keep_owner_and_mode(handle.fileno(), original)
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)


class TsvTable:
    """One TSV file with a fixed header, appended to by one process.

    ``key`` names the columns that identify a fact; when given, a row whose key
    is already in the file (or earlier in the same batch) is not written again.
    Without a key every row is appended, and only :meth:`append_once` looks for
    a replayed batch in the file's tail.

    The executor appends from worker threads (``asyncio.to_thread``), several
    at once: a lock makes "check the header, look for a replay, write" one
    step, so two first appends cannot both write a header and two replays
    cannot both find their rows missing.
    """

    def __init__(
        self, path: str | os.PathLike[str], columns: Sequence[str], key: Sequence[str] = ()
    ) -> None:
        self.path = Path(path)
        self.columns = tuple(columns)
        self.key = tuple(key)
        unknown = [name for name in self.key if name not in self.columns]
        if unknown:
            raise ValueError(f"{self.path.name}: key columns {unknown} are not among {list(self.columns)}")
        self._header = encode_records(self.columns, [dict(zip(self.columns, self.columns, strict=True))])
        self._ready = False
        self._lock = threading.Lock()
        self._seen: set[bytes] = set()  # digests of the keys in the file (keyed tables only)

    def append(self, rows: Sequence[Mapping[str, object]]) -> int:
        """Append ``rows`` (header first if the file is new), durably; returns how many were written.

        A keyed table skips the rows whose key is already there.
        """
        with self._lock:
            return self._append_new(rows)

    def append_once(self, rows: Sequence[Mapping[str, object]]) -> bool:
        """Append ``rows`` unless they are there already; False when nothing was written.

        Keyed: the rows whose key is in the file are skipped, the others written.
        Unkeyed: the batch is skipped when exactly these records sit in the file's tail
        (a replay after a crash).
        """
        if not rows:
            return False
        if self.key:
            return self.append(rows) > 0
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

    def _append_new(self, rows: Sequence[Mapping[str, object]]) -> int:
        """Under the lock: write the rows a keyed table does not hold yet (all of them, unkeyed)."""
        if not rows:
            return 0
        data = encode_records(self.columns, rows)  # refuses unknown columns before anything is written
        if not self.key:
            self._write(data)
            return len(rows)
        self._prepare()
        fresh: list[Mapping[str, object]] = []
        digests: set[bytes] = set()  # a set: a busy tick's batch holds thousands of rows
        for row in rows:
            digest = self._digest(clean(row.get(name, "")) for name in self.key)
            if digest in self._seen or digest in digests:
                continue
            fresh.append(row)
            digests.add(digest)
        if fresh:
            self._write(encode_records(self.columns, fresh) if len(fresh) < len(rows) else data)
            self._seen.update(digests)  # only once the rows are on disk
        return len(fresh)

    @staticmethod
    def _digest(values: Iterable[str]) -> bytes:
        """A fixed-size fingerprint of a key (a set of these costs far less than the texts)."""
        hasher = hashlib.blake2b(digest_size=16)
        for value in values:
            encoded = value.encode("utf-8", "surrogatepass")
            hasher.update(len(encoded).to_bytes(8, "little"))  # lengths keep ("ab", "c") apart from ("a", "bc")
            hasher.update(encoded)
        return hasher.digest()

    def _load_index(self) -> None:
        """Read the keys of every record in the file, once (streamed: the file is never held whole)."""
        self._seen = set()
        positions = [self.columns.index(name) for name in self.key]
        with self.path.open(encoding="utf-8", newline="") as handle:
            records = csv.reader(handle, delimiter="\t", quotechar='"')
            next(records, None)  # the header, checked already
            for record in records:
                self._seen.add(self._digest(record[i] if i < len(record) else "" for i in positions))

    def _prepare(self) -> None:
        if self._ready:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if self.path.exists() and self.path.stat().st_size > 0:
                self._check_header()
                self._repair_torn_tail()
                if self.key:
                    self._load_index()
            else:
                self._raw_write(self._header)
        except OSError as exc:
            raise _disk_error("write", self.path, exc) from None
        except (UnicodeDecodeError, csv.Error) as exc:
            raise TableError(f"cannot read {self.path}: {exc}; move it aside or repair it") from None
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
        replace_keeping_owner(self.path, self._header + encode_records(self.columns, rows), ".upgrade")
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


def count_records(path: Path) -> int:
    """How many rows ``path`` holds below its header (0 for a missing or empty file); reads only.

    For the start-up check that refuses to start from scratch over earlier results.
    """
    try:
        with path.open(encoding="utf-8", newline="", errors="replace") as handle:
            return max(0, sum(1 for _ in csv.reader(handle, delimiter="\t", quotechar='"')) - 1)
    except (FileNotFoundError, NotADirectoryError):
        # No file, or a folder on its path that is not one: no rows to protect (the tick
        # that writes there reports the blocked folder and holds its rows).
        return 0
    except (OSError, csv.Error) as exc:
        raise TableError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from None


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
