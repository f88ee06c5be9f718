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
import contextlib
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
from common.files import write_all
from engine.durable import (
    crc_line,
    ensure_private_folder,
    fsync_folder,
    open_private,
    read_crc_lines,
    refuse_shared_file,
)
from engine.lock import FolderLock
from toloka_client import jsonio
from toloka_client.errors import (
    AuthenticationError,
    IncorrectAction,
    OperationAlreadyExists,
    TolokaError,
    UnexpectedResponse,
)
from toloka_client.ids import operation_uuid

if TYPE_CHECKING:  # the client (aiohttp) only where it is used: PipelineSpec imports this module
    from toloka_client.client import TolokaClient

log = logging.getLogger(__name__)

#: Rows per create request: well under Toloka's limits, small enough that a retried batch is cheap.
BATCH_SIZE = 1000
#: Bytes of task JSON per create request: Toloka refuses a request whose ``input_values`` total over
#: 1 MiB (toloka-api.md 3.2), so a batch also ends before its tasks' JSON passes this margin below it.
BATCH_BYTES = 900_000
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
    records = _records(text, _delimiter(path, first)) if first else []
    if not records:  # nothing, blank lines, or only separators (",,," lines a spreadsheet leaves)
        raise IntakeError([f"{shown}: empty file: expected a header line naming the columns"])
    (header_line, header), *rows = records
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
    def open(cls, saves: Path, pool_id: str, *, read_only: bool = False) -> IntakeRecord:
        """Read the record (a torn last line, from a kill mid-append, is cut off); :class:`StateError` if damaged.

        ``read_only`` (``--dry-run``): create no folder and cut nothing; a missing record reads as empty.
        """
        if read_only:
            record = cls(saves / f"intake-{pool_id}.jsonl", pool_id)
        else:
            record = cls(ensure_private_folder(saves) / f"intake-{pool_id}.jsonl", pool_id)
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
        if lines.tail is not None and not read_only:  # an append torn by a kill or a power cut, never acknowledged
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
    stopped: str | None = None  # Toloka refused a whole request in a way the next batches would repeat
    not_opened: str | None = None  # --open-pool: why the pool is not open

    def summary(self) -> str:
        return f"added {self.added}, already sent {self.already}, refused {len(self.refused)}"


def task_bytes(task: Mapping[str, Any]) -> int:
    """The size of a task in a create request's JSON (with its ``__item_idx`` and separator)."""
    return len(jsonio.dumps(task).encode("utf-8")) + 24


def _chunks(items: Sequence[Good], tasks: Sequence[Mapping[str, Any]], size: int,
            max_bytes: int) -> Iterator[tuple[int, int]]:
    """``(start, end)`` slices of at most ``size`` rows and ``max_bytes`` of JSON (a larger row goes alone)."""
    start = 0
    while start < len(items):
        end, used = start, 0
        while end < len(items) and end - start < size:
            cost = task_bytes(tasks[end])
            if end > start and used + cost > max_bytes:
                break
            used += cost
            end += 1
        yield start, end
        start = end


def _reason(errors: Mapping[str, Any]) -> str:
    parts = []
    for path, detail in errors.items():
        message = detail.get("message") or detail.get("code") if isinstance(detail, Mapping) else detail
        parts.append(f"{path}: {message}")
    return "; ".join(parts) or "refused"


def refuses_request(exc: PipelineError) -> bool:
    """Toloka refused the whole request for good (403/404 on the pool, a body over the limit, ...).

    Not a refusal of the batch: a retryable error (the batch stays open and is
    resent), a wrong token (says nothing about the batch), an answer of the
    wrong shape (the operation may exist).
    """
    return (isinstance(exc, TolokaError) and not exc.retryable
            and not isinstance(exc, (AuthenticationError, OperationAlreadyExists, UnexpectedResponse)))


def _stops_run(exc: PipelineError) -> bool:
    """A refusal every later batch would get too: the pool or the account, not this batch's content."""
    return isinstance(exc, TolokaError) and exc.status in (403, 404)


async def _send(client: TolokaClient, record: IntakeRecord, batch: Batch,
                open_pool: bool) -> tuple[dict[int, str], PipelineError | None]:
    """Create a begun batch (again, after a crash: the same operation_id resumes it); refused items by index.

    A permanent refusal of the whole request closes the batch with every item
    refused (so it is not resent by every later run) and is returned with it.
    """
    try:
        result = await client.create_tasks(list(batch.tasks), operation_id=batch.operation_id, read_back=False,
                                           open_pool=open_pool)
    except PipelineError as exc:
        if not refuses_request(exc):
            raise
        refused = dict.fromkeys(range(len(batch.tasks)), f"Toloka refused the whole request: {exc}")
        await asyncio.to_thread(record.finish, batch, refused)
        return refused, exc
    refused = {i: f"Toloka refused the task: {_reason(e)}" for i, e in result.validation_errors.items()}
    await asyncio.to_thread(record.finish, batch, refused)
    return refused, None


async def existing_keys(client: TolokaClient, pool_id: str, read: Reader) -> set[str]:
    """Keys of the tasks already in the pool (made by an earlier run, by hand, or before ``saves/`` was lost)."""
    keys: set[str] = set()
    async for task in client.iter_tasks(pool_id, batch_size=SCAN_PAGE):
        unit = read({k: "" if v is None else str(v) for k, v in task.input_values.items()})
        if isinstance(unit, Unit):
            keys.add(unit.key)
    return keys


async def _finish_open_batches(client: TolokaClient, record: IntakeRecord, in_pool: set[str], lines: Mapping[str, int],
                               report: AddReport, *, name: str, open_pool: bool) -> set[str]:
    """Close the batches an earlier run began and did not finish; the keys refused whole in this run.

    A batch whose every row is already a task of the pool is closed without a
    request: Toloka forgets operations after a month, so resending it then would
    create its tasks twice.
    """
    refused_whole: set[str] = set()
    for batch in list(record.open_batches.values()):
        rows = len(batch.tasks)
        if all(key in in_pool for key in batch.keys):
            await asyncio.to_thread(record.finish, batch, {})
            report.resumed.append(f"closed an interrupted batch of {rows} rows from an earlier run: its tasks "
                                  f"are already in the pool (not sent again)")
            continue
        refused, error = await _send(client, record, batch, open_pool)
        if error is None:
            report.resumed.append(f"finished an interrupted batch of {rows} rows from an earlier run "
                                  f"({rows - len(refused)} tasks, {len(refused)} refused by Toloka)")
            continue
        refused_whole.update(batch.keys)
        elsewhere = 0
        for index, reason in sorted(refused.items()):
            line = lines.get(batch.keys[index])
            if line is None:
                elsewhere += 1
            else:
                report.refused.append(f"{name}:{line}: {reason}")
        report.resumed.append(f"an interrupted batch of {rows} rows from an earlier run was refused whole by "
                              f"Toloka ({error}); closed, its rows are not recorded as sent"
                              + (f" ({elsewhere} of them are not in this file)" if elsewhere else ""))
        if _stops_run(error):
            report.stopped = f"stopped: {error}"
            break
    return refused_whole


async def _open_pool(client: TolokaClient, pool_id: str) -> str | None:
    """Open the pool unless it is open; why it is not open afterwards, or None."""
    pool = await client.get_pool(pool_id)
    if pool.is_open:
        return None
    try:
        op = await client.open_pool(pool_id)
    except IncorrectAction as exc:
        return f"pool {pool_id} is {pool.status} and Toloka refused to open it: {exc.code}: {exc.server_message}"
    if op is not None and op.status == "FAIL":
        return f"pool {pool_id} is {pool.status}: opening it failed: {dict(op.details) or op.status}"
    pool = await client.get_pool(pool_id)
    return None if pool.is_open else f"pool {pool_id} is still {pool.status} after Toloka was asked to open it"


async def add_rows(
    client: TolokaClient,
    spec: IntakeSpec,
    pool_id: str,
    saves: Path,
    checked: Checked,
    *,
    name: str,
    batch_size: int = BATCH_SIZE,
    batch_bytes: int = BATCH_BYTES,
    dry_run: bool = False,
    open_pool: bool = False,
    progress: Callable[[str], None] = lambda line: None,
) -> AddReport:
    """Send the good rows of ``checked`` not sent before, in batches, each once (see the module docstring).

    ``name`` is the file as the person named it (Toloka's refusals say ``name:line``);
    ``open_pool``: afterwards the pool is open (opened if it was not), or ``not_opened`` says why not.
    ``dry_run`` creates nothing, not even ``saves/``, and takes no lock.
    """
    report = AddReport(refused=list(checked.refused), notes=list(checked.notes))
    with contextlib.nullcontext() if dry_run else IntakeLock(saves):
        record = await asyncio.to_thread(IntakeRecord.open, saves, pool_id, read_only=dry_run)
        # Read before any resend: an open batch whose tasks are all in the pool is closed, not resent.
        in_pool = await existing_keys(client, pool_id, spec.read)
        if dry_run:
            for batch in record.open_batches.values():
                report.resumed.append(f"an interrupted batch of {len(batch.tasks)} rows waits to be finished")
            new = [g for g in checked.good if g.key not in record.sent and g.key not in in_pool]
            report.already = len(checked.good) - len(new)
            report.would_add = len(new)
            return report
        lines = {g.key: g.line for g in checked.good}
        skip = await _finish_open_batches(client, record, in_pool, lines, report, name=name, open_pool=open_pool)
        new = [g for g in checked.good if g.key not in record.sent and g.key not in in_pool and g.key not in skip]
        report.already = len([g for g in checked.good if g.key not in skip]) - len(new)
        if report.stopped is not None:
            report.stopped += f"; {len(new)} new rows were not sent"
            return report
        tasks = [{"pool_id": pool_id, "input_values": dict(g.input_values), "overlap": spec.overlap,
                  "infinite_overlap": False} for g in new]
        slices = list(_chunks(new, tasks, batch_size, batch_bytes))
        for number, (start, end) in enumerate(slices, 1):
            chunk = new[start:end]
            batch = await asyncio.to_thread(record.begin, [g.key for g in chunk], tasks[start:end])
            refused, error = await _send(client, record, batch, open_pool)
            for index, reason in sorted(refused.items()):
                report.refused.append(f"{name}:{chunk[index].line}: {reason}")
            report.added += len(chunk) - len(refused)
            progress(f"batch {number} of {len(slices)}: {len(chunk) - len(refused)} tasks created"
                     + (f", {len(refused)} refused" if refused else ""))
            if error is not None and _stops_run(error):
                report.stopped = f"stopped: {error}; {len(new) - end} new rows were not sent"
                return report
        if open_pool:
            report.not_opened = await _open_pool(client, pool_id)
    return report
