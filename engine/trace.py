"""One unit of work's path through a pipeline's tables (``pipeline.py trace``), from the files alone.

A pipeline declares in a :class:`TraceSpec` which of its tables say something
about one unit of work (for the pedestrian pipeline: one pedestrian assignment,
i.e. one organization visited), which column links each row to its unit, which
columns hold other ids a person may have at hand (a checking task, a checker's
assignment) and which hold text to search (name, address), and how its rows
read as lines. This module does the rest for any pipeline: reads the TSV files
(tolerating a missing file and the unfinished last record of a table the daemon
is appending to), finds the units a query names, and puts a unit's lines in
time order. It calls no API, so it can run beside the daemon.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

Row = Mapping[str, str]
Rows = Sequence[Row]


@dataclass(frozen=True, slots=True)
class Entry:
    """One line of a unit's path: ``at`` is the table's ``YYYY-mm-dd HH:MM:SS`` UTC text ("" unknown)."""

    at: str
    kind: str  # what it is, e.g. answer, aggregate, decision, result, held
    text: str


@dataclass(frozen=True)
class TraceTable:
    """One table in a trace: how its rows link to a unit, what may be searched, how they read.

    ``entries`` gets all the rows of one unit from this table, in file order,
    and returns their lines (a table of answers may add one aggregate line per
    task, for example).
    """

    table: str  # a name of the pipeline's ``tables``
    subject_column: str  # the unit a row belongs to
    entries: Callable[[Rows], Sequence[Entry]]
    id_columns: tuple[str, ...] = ()  # other ids that name the row's unit exactly
    text_columns: tuple[str, ...] = ()  # searched for a substring (case-insensitive)


def _no_photos(rows: Mapping[str, Rows]) -> Sequence[tuple[str, str]]:
    return ()


@dataclass(frozen=True)
class TraceSpec:
    """What ``pipeline.py trace`` reads for a pipeline (a ``PipelineSpec.trace``)."""

    tables: tuple[TraceTable, ...]  # in this order where two lines share a second
    label: Callable[[Row], str]  # names a unit after one of its rows (e.g. "name, address")
    unit: str = "unit"  # what a unit is called, for people ("pedestrian assignment")
    # (what, link) of every photo or file of a unit, from its rows by table name.
    photos: Callable[[Mapping[str, Rows]], Sequence[tuple[str, str]]] = _no_photos
    # The result table of accepted units, one row each (``pipeline.py sample``); None: nothing to sample.
    accepted: str | None = None


@dataclass
class Trace:
    """One unit's path: its id, its name, its photos and its lines in time order."""

    unit: str
    label: str
    photos: list[tuple[str, str]] = field(default_factory=list)
    entries: list[Entry] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # tables that could not be read, cut records


def read_rows(path: Path) -> tuple[list[dict[str, str]], str | None]:
    """The rows of a TSV table as text, and a note when it is missing or was cut short.

    The daemon may be appending right now: a last record without its newline
    (or with an open quote) is left out, never half-read.
    """
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return [], None
    except OSError as exc:
        return [], f"{path} cannot be read: {exc.strerror or exc}"
    note = None
    end = _whole_records(data)
    if end < len(data):
        data = data[:end]
        note = f"{path}: an unfinished last record (the daemon is writing) was left out"
    text = data.decode("utf-8", errors="replace")
    records = list(csv.reader(io.StringIO(text), delimiter="\t", quotechar='"'))
    if not records:
        return [], note
    header = records[0]
    return [dict(zip(header, record, strict=False)) for record in records[1:] if record], note


def _whole_records(data: bytes) -> int:
    """Length of the prefix made of whole records (a newline inside quotes ends none)."""
    quotes = 0
    offset = 0
    end = 0
    for line in data.split(b"\n")[:-1]:
        quotes += line.count(b'"')
        offset += len(line) + 1
        if quotes % 2 == 0:
            end = offset
    return end


def load(trace: TraceSpec, paths: Mapping[str, Path]) -> tuple[dict[str, list[dict[str, str]]], list[str]]:
    """Every traced table's rows by name (``paths``: table name -> file), and notes on what was off."""
    rows: dict[str, list[dict[str, str]]] = {}
    notes: list[str] = []
    for table in trace.tables:
        path = paths.get(table.table)
        if path is None:
            notes.append(f"the pipeline has no table {table.table!r}")
            continue
        found, note = read_rows(path)
        rows[table.table] = found
        if note:
            notes.append(note)
    return rows, notes


def find_units(trace: TraceSpec, rows: Mapping[str, Rows], query: str) -> dict[str, str]:
    """The units ``query`` names (unit id -> label), in the order they first appear.

    An exact id (the unit's own, or one of a table's ``id_columns``) wins; only
    when none matches is ``query`` looked for, case-insensitively, inside the
    ``text_columns`` (a name or an address).
    """
    wanted = query.strip()
    exact: dict[str, str] = {}
    partial: dict[str, str] = {}
    needle = wanted.casefold()
    for table in trace.tables:
        for row in rows.get(table.table, ()):
            unit = row.get(table.subject_column, "")
            if not unit or not wanted:
                continue
            if wanted == unit or any(row.get(column) == wanted for column in table.id_columns):
                exact.setdefault(unit, "")
            elif any(needle in row.get(column, "").casefold() for column in table.text_columns):
                partial.setdefault(unit, "")
    found = exact or partial
    # Each named by the fullest label its rows give (a table may carry the address but not the name).
    for table in trace.tables:
        for row in rows.get(table.table, ()):
            unit = row.get(table.subject_column, "")
            if unit in found:
                label = trace.label(row)
                if len(label) > len(found[unit]):
                    found[unit] = label
    return found


def trace_unit(trace: TraceSpec, rows: Mapping[str, Rows], unit: str, label: str = "") -> Trace:
    """``unit``'s photos and lines from every traced table, in time order (ties: table order, file order).

    A line without a time takes the time of the line declared before it.
    """
    mine = {
        table.table: [row for row in rows.get(table.table, ()) if row.get(table.subject_column) == unit]
        for table in trace.tables
    }
    entries: list[Entry] = []
    last = ""
    for table in trace.tables:
        for entry in table.entries(mine[table.table]):
            # A row without a time (a table with no time column) sits right after the line before it.
            last = entry.at or last
            entries.append(entry if entry.at else Entry(last, entry.kind, entry.text))
    entries.sort(key=lambda entry: entry.at)  # stable: ties keep the declared order
    return Trace(unit, label, list(dict.fromkeys(trace.photos(mine))), entries)


#: Control characters (C0, DEL, C1) shown as escapes: text typed by workers must not move the cursor,
#: recolour the terminal or break one entry into several lines.
_CONTROLS = {code: f"\\x{code:02x}" for code in (*range(0x20), *range(0x7F, 0xA0))} | {
    ord("\n"): "\\n", ord("\t"): "\\t", ord("\r"): "\\r"}


def printable(text: str) -> str:
    """``text`` with control characters written as escapes (``\\n``, ``\\x1b``), safe for a terminal."""
    return text.translate(_CONTROLS)


def render(found: Trace, unit_name: str = "unit") -> str:
    """The trace as text for a terminal: a heading, the photos, then one line per entry."""
    lines = [f"{found.label or found.unit}", f"  {unit_name} {found.unit}"]
    lines.append(f"Photos ({len(found.photos)}):" if found.photos else "Photos: none in the tables")
    lines.extend(f"  {what}  {link}" for what, link in found.photos)
    lines.append("Path (UTC, oldest first):")
    width = max((len(e.kind) for e in found.entries), default=0)
    lines.extend(f"  {e.at or '?':<19}  {e.kind:<{width}}  {e.text}" for e in found.entries)
    if not found.entries:
        lines.append("  nothing in the tables yet")
    lines.extend(f"note: {note}" for note in found.notes)
    return "\n".join(printable(line) for line in lines)


def tail_rows(path: Path, limit: int, chunk_bytes: int = 1 << 20) -> list[dict[str, str]]:
    """The last ``limit`` rows of a TSV table, reading only its end (a log may be gigabytes).

    Every field is quoted, so a newline ends a record exactly when the quotes
    after it are even in number (the file ends outside quotes). The chunk grows
    until it holds ``limit`` records or the whole file. A missing file has no rows.
    """
    try:
        with path.open("rb") as handle:
            header = handle.readline()
            size = handle.seek(0, io.SEEK_END)
            while True:
                start = max(len(header), size - chunk_bytes)
                handle.seek(start)
                data = handle.read()
                data = data[: data.rfind(b"\n") + 1]  # an unfinished last record is left out
                cut = _first_boundary(data) if start > len(header) else 0
                body = data[cut:]
                if body.count(b"\n") >= limit or start == len(header):
                    break
                chunk_bytes *= 4
    except FileNotFoundError:
        return []
    columns = next(csv.reader(io.StringIO(header.decode("utf-8", errors="replace")), delimiter="\t"), [])
    records = list(csv.reader(io.StringIO(body.decode("utf-8", errors="replace")), delimiter="\t", quotechar='"'))
    return [dict(zip(columns, record, strict=False)) for record in records[-limit:] if record] if limit else []


def _first_boundary(data: bytes) -> int:
    """Offset just after the first newline of ``data`` that ends a record (even quotes after it)."""
    after = data.count(b'"')
    position = 0
    while True:
        newline = data.find(b"\n", position)
        if newline < 0:
            return len(data)
        after -= data.count(b'"', position, newline)
        if after % 2 == 0:
            return newline + 1
        position = newline + 1
