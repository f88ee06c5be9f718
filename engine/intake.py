"""Feeding a pool from a file of work, each unit once: the engine's half of ``pipeline.py add``.

A pipeline declares what a row of the file must hold (``PipelineSpec.intake``
gives an :class:`IntakeSpec`: the pool, the columns, and a pure reader that
turns a row into a task's input and an identity, or into the reason it is
refused). This module reads the file (TSV or CSV), checks every row (all
problems are reported at once, one line each, ``file:line: reason``) and
creates one task per new unit, in batches of bounded size.

"Once", across runs and crashes, rests on three things:

* **An identity per unit.** The reader normalizes the fields that identify a
  unit (for an organization: its name and address, case and spaces aside); the
  key is a hash of them. Two rows with one key in a file: the second is refused
  as a duplicate. A key sent before is "already sent", not sent again.
* **A durable record written before each request**
  (``saves/intake-<pool_id>.jsonl``, one ``<crc32> <json>`` line per event): a
  ``begin`` line holds a batch's keys, its tasks and its ``operation_id`` and is
  fsynced *before* the POST; a ``finish`` line after Toloka's operation ended
  says which items it refused. A run finds batches begun and not finished (a
  kill -9 between the two) and sends them again, byte for byte, with the same
  ``operation_id``.
* **Toloka's idempotency.** A repeated ``operation_id`` is answered 409
  ``OPERATION_ALREADY_EXISTS`` and the client resumes the first operation, so
  the batch that reached Toloka before the kill is not created again, and the
  one that did not is created now. Toloka has no per-task dedupe key, so the
  record is what spans runs; as a second guard (``saves/`` lost, tasks made by
  hand) the pool's existing tasks are read and their identities count as sent.

A batch is one operation, and Toloka runs an operation to its end whether or
not anyone still waits for it, so a kill leaves no operation or a whole one,
never half a batch; the rerun reads the outcome from the operation's log.
Items Toloka refuses (a field its project requires that the row lacks) are
reported by line and stay unsent, to be tried again by the next run.

The record belongs to ``add``, not to the daemon: the daemon never reads it,
and ``add`` takes its own lock (``saves/intake.lock``), never the daemon's, so
it runs beside a running daemon and two ``add`` runs cannot race. The daemon
creates no task in the pool ``add`` feeds; it sees these tasks only when a
worker submits them, like any task made by hand.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import io
import logging
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from common.errors import PipelineError, StateError
from engine.durable import (
    crc_line,
    ensure_private_folder,
    fsync_folder,
    open_private,
    read_crc_lines,
    refuse_shared_file,
    write_all,
)
from engine.lock import FolderLock
from toloka_client.ids import operation_uuid

if TYPE_CHECKING:  # the client (aiohttp) only where it is used: PipelineSpec imports this module
    from toloka_client.client import TolokaClient

log = logging.getLogger(__name__)

#: Rows per create request: well under Toloka's limits, small enough that a retried batch is cheap.
BATCH_SIZE = 1000
#: Tasks per page when the pool's existing tasks are read.
SCAN_PAGE = 10_000
LOCK_NAME = "intake.lock"


class IntakeError(PipelineError):
    """The file cannot be used at all (unreadable, not text, no header, a required column missing).

    ``lines`` holds one problem each, already naming the file (and line).
    """

    def __init__(self, lines: Sequence[str]) -> None:
        self.lines = tuple(lines)
        super().__init__("\n".join(self.lines))


class IntakeLockHeld(StateError):
    """Another ``add`` is feeding from the same saves folder."""


@dataclass(frozen=True, slots=True)
class Unit:
    """A row as the pool will get it: the task's input, and what identifies the unit of work."""

    input_values: Mapping[str, str]
    identity: tuple[str, ...]  # normalized values; equal identities mean the same unit

    @property
    def key(self) -> str:
        return unit_key(self.identity)


#: A pure reader: a row (column -> text) to a :class:`Unit`, or the reason it is refused.
Reader = Callable[[Mapping[str, str]], "Unit | str"]


@dataclass(frozen=True)
class IntakeSpec:
    """What a pipeline takes from a file of work (``PipelineSpec.intake``)."""

    pool: str  # the pool's name in the pipeline; its tasks are created there
    columns: tuple[str, ...]  # a file without one of these is refused as a whole
    optional: tuple[str, ...]  # passed through when the file has them
    read: Reader
    same: str = "same identity"  # how a duplicate is described: "duplicate of line 3 (same name and address)"
    overlap: int = 1


def unit_key(identity: Sequence[str]) -> str:
    """The stable key of an identity (128 bits of SHA-256, hex)."""
    return hashlib.sha256("\x1f".join(identity).encode("utf-8")).hexdigest()[:32]


# --- reading and checking the file ---------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sheet:
    """A file's header and rows (line numbers are the line each record starts on)."""

    name: str  # the file as the person named it (messages say ``name:line``)
    header_line: int
    columns: tuple[str, ...]
    rows: tuple[tuple[int, tuple[str, ...] | str], ...]  # cells, or why the record cannot be read


def _delimiter(path: Path, first_line: str) -> str:
    """Tab for .tsv/.tab, comma (or semicolon, a spreadsheet's CSV in some locales) for .csv; else sniffed."""
    suffix = path.suffix.lower()
    if suffix in (".tsv", ".tab"):
        return "\t"
    if suffix != ".csv" and "\t" in first_line:
        return "\t"
    return ";" if ";" in first_line and "," not in first_line else ","


def _unreadable(exc: csv.Error, kind: str) -> str:
    """Why the csv reader gave up on a record, in words a person can act on."""
    if "end of data" in str(exc):
        return "a quote opened here is never closed (the rest of the file was not read)"
    if "expected after" in str(exc):
        return ('a cell that starts with a quote goes on after its closing quote (quote the whole cell, '
                'inner quotes doubled: "a ""b"" c")')
    return f"cannot be read as {kind}: {exc}"


def _records(text: str, delimiter: str) -> list[tuple[int, tuple[str, ...] | str]]:
    """Non-blank records with the line each starts on; a record that does not parse is its reason instead."""
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, strict=True)
    records: list[tuple[int, tuple[str, ...] | str]] = []
    start = 1
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return records
        except csv.Error as exc:  # the reader goes on with the next record
            records.append((start, _unreadable(exc, "TSV" if delimiter == "\t" else "CSV")))
        else:
            if any(cell.strip() for cell in cells):
                records.append((start, tuple(cells)))
        start = reader.line_num + 1


def read_sheet(path: Path, name: str | None = None) -> Sheet:
    """Read a TSV or CSV file (UTF-8, an optional BOM, csv quoting); :class:`IntakeError` if unusable.

    A record the csv reader cannot parse (a stray quote) becomes a problem of
    its line, not of the file; a quote never closed swallows the rest of the
    file, which its problem says.
    """
    shown = name or str(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise IntakeError([f"{shown}: cannot read: {exc.strerror or exc}"]) from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise IntakeError([f"{shown}:{line}: not UTF-8 text (byte {exc.start}); save the file as UTF-8"]) from None
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if not first:
        raise IntakeError([f"{shown}: empty file: expected a header line naming the columns"])
    (header_line, header), *rows = _records(text, _delimiter(path, first))
    if isinstance(header, str):
        raise IntakeError([f"{shown}:{header_line}: the header: {header}"])
    columns = tuple(cell.strip() for cell in header)
    problems = [f"{shown}:{header_line}: column {i + 1} of the header has no name"
                for i, c in enumerate(columns) if not c]
    problems += [f"{shown}:{header_line}: column {c!r} appears twice in the header"
                 for c in dict.fromkeys(columns) if c and columns.count(c) > 1]
    if problems:
        raise IntakeError(problems)
    return Sheet(shown, header_line, columns, tuple(rows))


@dataclass(frozen=True, slots=True)
class Good:
    """A row that reads as a unit: its line, key and task input."""

    line: int
    key: str
    input_values: Mapping[str, str]


@dataclass
class Checked:
    """Every row of a sheet sorted into good ones and refused ones (``file:line: reason``)."""

    good: list[Good] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # not refusals: e.g. a column that is not sent


def check_rows(sheet: Sheet, spec: IntakeSpec) -> Checked:
    """Check the header (a missing column refuses the file) and every row; pure."""
    missing = [c for c in spec.columns if c not in sheet.columns]
    if missing:
        raise IntakeError([
            f"{sheet.name}:{sheet.header_line}: missing column {c!r} (the {spec.pool} pool's tasks need "
            f"{', '.join(spec.columns)}; the file has {', '.join(sheet.columns)})"
            for c in missing
        ])
    known = set(spec.columns) | set(spec.optional)
    out = Checked()
    for column in sheet.columns:
        if column not in known:
            out.notes.append(f"{sheet.name}:{sheet.header_line}: column {column!r} is not an input of the "
                             f"{spec.pool} pool's tasks; its values are not sent")
    first_line: dict[str, int] = {}
    width = len(sheet.columns)
    for line, cells in sheet.rows:
        if isinstance(cells, str):
            out.refused.append(f"{sheet.name}:{line}: {cells}")
            continue
        extra = cells[width:]
        absent = sheet.columns[len(cells):]  # trailing cells an editor left out: fine if none is required
        if any(c.strip() for c in extra) or any(c in spec.columns for c in absent):
            out.refused.append(f"{sheet.name}:{line}: {len(cells)} cells, the header has {width} "
                               f"(a separator missing or too many?)")
            continue
        row = {c: v for c, v in zip(sheet.columns, cells, strict=False) if c in known}
        unit = spec.read(row)
        if isinstance(unit, str):
            out.refused.append(f"{sheet.name}:{line}: {unit}")
            continue
        key = unit.key
        if key in first_line:
            out.refused.append(f"{sheet.name}:{line}: duplicate of line {first_line[key]} ({spec.same})")
            continue
        first_line[key] = line
        out.good.append(Good(line, key, dict(unit.input_values)))
    return out


# --- the durable record ----------------------------------------------------------------------


@dataclass(frozen=True)
class Batch:
    """Tasks sent in one request: begun (durable before the POST), finished once Toloka answered."""

    seq: int
    operation_id: str
    keys: tuple[str, ...]
    tasks: tuple[Mapping[str, Any], ...]


class IntakeRecord:
    """``saves/intake-<pool_id>.jsonl``: which keys were sent to a pool, and batches still open.

    Methods block on disk I/O (call them through ``asyncio.to_thread``); one
    ``add`` at a time holds :class:`IntakeLock`, so there is one writer.
    """

    def __init__(self, path: Path, pool_id: str) -> None:
        self.path = path
        self.pool_id = pool_id
        self.sent: set[str] = set()  # keys of every begun batch, minus the items Toloka refused
        self.open_batches: dict[int, Batch] = {}
        self.last_seq = 0

    @classmethod
    def open(cls, saves: Path, pool_id: str) -> IntakeRecord:
        """Read the record (a torn last line, from a kill mid-append, is cut off); :class:`StateError` if damaged."""
        folder = ensure_private_folder(saves)
        record = cls(folder / f"intake-{pool_id}.jsonl", pool_id)
        try:
            fd = os.open(record.path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except FileNotFoundError:
            return record
        except OSError as exc:
            raise StateError(f"cannot read {record.path}: {exc.strerror or exc}") from None
        with os.fdopen(fd, "rb") as handle:
            refuse_shared_file(record.path, os.fstat(handle.fileno()))
            data = handle.read()
        lines = read_crc_lines(data)
        if lines.damaged is not None:
            raise StateError(f"{record.path}: line {lines.damaged} is damaged; the file was left in place")
        for number, _, entry in lines.entries:
            try:
                record._apply(entry)
            except (KeyError, TypeError, ValueError) as exc:
                raise StateError(f"{record.path}: line {number} is not a record line ({exc}); left in place") from None
        if lines.tail is not None:  # an append torn by a kill or a power cut, never acknowledged
            log.warning("%s: cutting off a torn last line (an interrupted write)", record.path)
            with open(record.path, "r+b") as handle:
                handle.truncate(lines.good_end)
                os.fsync(handle.fileno())
        return record

    def _apply(self, entry: Mapping[str, Any]) -> None:
        seq = int(entry["seq"])
        if entry["op"] == "begin":
            batch = Batch(seq, str(entry["operation_id"]), tuple(entry["keys"]), tuple(entry["tasks"]))
            if len(batch.keys) != len(batch.tasks):
                raise ValueError("keys and tasks differ in number")
            self.open_batches[seq] = batch
            self.sent.update(batch.keys)
            self.last_seq = max(self.last_seq, seq)
        elif entry["op"] == "finish":
            batch = self.open_batches.pop(seq)
            for index in entry.get("refused", {}):
                self.sent.discard(batch.keys[int(index)])
        else:
            raise ValueError(f"unknown op {entry['op']!r}")

    def _append(self, entry: Mapping[str, Any]) -> None:
        """One line, one write, fsynced (and the folder too when the file is new)."""
        try:
            existed = self.path.exists()
            fd = open_private(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND)
            try:
                write_all(fd, crc_line(entry))
                os.fsync(fd)
            finally:
                os.close(fd)
            if not existed:
                fsync_folder(self.path.parent)
        except OSError as exc:
            raise StateError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def begin(self, keys: Sequence[str], tasks: Sequence[Mapping[str, Any]]) -> Batch:
        """Make a batch durable before it is sent; its ``operation_id`` is fixed by its place and content."""
        seq = self.last_seq + 1
        digest = hashlib.sha256("\x1f".join(keys).encode()).hexdigest()
        batch = Batch(seq, operation_uuid("intake", self.pool_id, str(seq), digest), tuple(keys), tuple(tasks))
        self._append({"seq": seq, "op": "begin", "operation_id": batch.operation_id,
                      "keys": list(batch.keys), "tasks": list(batch.tasks)})
        self._apply({"seq": seq, "op": "begin", "operation_id": batch.operation_id,
                     "keys": batch.keys, "tasks": batch.tasks})
        return batch

    def finish(self, batch: Batch, refused: Mapping[int, str]) -> None:
        """Close a batch once its operation ended; items Toloka refused are not counted as sent."""
        entry = {"seq": batch.seq, "op": "finish", "refused": {str(i): r for i, r in refused.items()}}
        self._append(entry)
        self._apply(entry)


class IntakeLock(FolderLock):
    """One ``add`` per saves folder: the lock on ``saves/intake.lock`` (not the daemon's lock)."""

    def __init__(self, saves: Path) -> None:
        super().__init__(saves, LOCK_NAME, _intake_held)


def _intake_held(folder: Path, pid: int | None) -> IntakeLockHeld:
    holder = f" (pid {pid})" if pid is not None else ""
    return IntakeLockHeld(f"another `pipeline.py add` is running on saves folder {folder}{holder}; "
                          f"wait for it to finish")


# --- sending ---------------------------------------------------------------------------------


@dataclass
class AddReport:
    """What a run did: rows added, already sent, refused (``file:line: reason`` lines), notes."""

    added: int = 0
    already: int = 0
    refused: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resumed: list[str] = field(default_factory=list)  # interrupted batches of an earlier run, finished now
    would_add: int = 0  # --dry-run: rows a real run would send

    def summary(self) -> str:
        return f"added {self.added}, already sent {self.already}, refused {len(self.refused)}"


def _chunks(items: Sequence[Good], size: int) -> Iterator[Sequence[Good]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _reason(errors: Mapping[str, Any]) -> str:
    parts = []
    for path, detail in errors.items():
        message = detail.get("message") or detail.get("code") if isinstance(detail, Mapping) else detail
        parts.append(f"{path}: {message}")
    return "; ".join(parts) or "refused"


async def _send(client: TolokaClient, record: IntakeRecord, batch: Batch, open_pool: bool) -> dict[int, str]:
    """Create a begun batch (again, after a crash: the same operation_id resumes it); refused items by index."""
    result = await client.create_tasks(list(batch.tasks), operation_id=batch.operation_id, read_back=False,
                                       open_pool=open_pool)
    refused = {i: _reason(e) for i, e in result.validation_errors.items()}
    await asyncio.to_thread(record.finish, batch, refused)
    return refused


async def existing_keys(client: TolokaClient, pool_id: str, read: Reader) -> set[str]:
    """Keys of the tasks already in the pool (made by an earlier run, by hand, or before ``saves/`` was lost)."""
    keys: set[str] = set()
    async for task in client.iter_tasks(pool_id, batch_size=SCAN_PAGE):
        unit = read({k: "" if v is None else str(v) for k, v in task.input_values.items()})
        if isinstance(unit, Unit):
            keys.add(unit.key)
    return keys


async def add_rows(
    client: TolokaClient,
    spec: IntakeSpec,
    pool_id: str,
    saves: Path,
    checked: Checked,
    *,
    name: str,
    batch_size: int = BATCH_SIZE,
    dry_run: bool = False,
    open_pool: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> AddReport:
    """Send the good rows of ``checked`` not sent before, in batches, each once (see the module docstring).

    ``name`` is the file as the person named it (Toloka's refusals say ``name:line``);
    ``open_pool``: Toloka opens the pool after creating the tasks, if it was closed.
    """
    report = AddReport(refused=list(checked.refused), notes=list(checked.notes))
    with IntakeLock(saves):
        record = await asyncio.to_thread(IntakeRecord.open, saves, pool_id)
        for batch in list(record.open_batches.values()):
            if dry_run:
                report.resumed.append(f"an interrupted batch of {len(batch.tasks)} rows waits to be finished")
                continue
            refused = await _send(client, record, batch, open_pool)
            report.resumed.append(f"finished an interrupted batch of {len(batch.tasks)} rows from an earlier run "
                                  f"({len(batch.tasks) - len(refused)} tasks, {len(refused)} refused by Toloka)")
        in_pool = await existing_keys(client, pool_id, spec.read)
        new = [g for g in checked.good if g.key not in record.sent and g.key not in in_pool]
        report.already = len(checked.good) - len(new)
        if dry_run:
            report.would_add = len(new)
            return report
        total = (len(new) + batch_size - 1) // batch_size
        for number, chunk in enumerate(_chunks(new, batch_size), 1):
            tasks = [{"pool_id": pool_id, "input_values": dict(g.input_values), "overlap": spec.overlap,
                      "infinite_overlap": False} for g in chunk]
            batch = await asyncio.to_thread(record.begin, [g.key for g in chunk], tasks)
            refused = await _send(client, record, batch, open_pool)
            for index, reason in sorted(refused.items()):
                report.refused.append(f"{name}:{chunk[index].line}: Toloka refused the task: {reason}")
            report.added += len(chunk) - len(refused)
            progress(f"batch {number} of {total}: {len(chunk) - len(refused)} tasks created"
                     + (f", {len(refused)} refused" if refused else ""))
    return report
