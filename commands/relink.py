"""``python pipeline.py relink [--days N]``: fresh photo links in the result tables, from their storage keys.

The links the daemon writes into the results expire: a presigned S3 link after
at most 7 days, an Azure SAS link after ``sas_url_valid_days``. Next to every
link column ``X`` the results keep ``X_keys``, the storage keys of the same
photos in the same order (``handlers.relevance.keys_column``). This command
rewrites every link cell of the result tables with fresh links to those keys,
valid ``--days`` days (default: the store's configured validity): presigned S3,
SAS Azure, or ``file://`` for the local store (which never expire, but a moved
photo folder gets its new path).

Each table is rewritten atomically (a temporary file beside it, fsync'ed, then
renamed over it, with the same owner, group and permissions), so a kill at any instant leaves
the old file or the new one, every row kept. A row without keys (written
before keys were kept) or whose photo is missing from the store keeps its old
cell, and is reported. Tables written before the key columns existed get them
added, empty, first (``tables.tsv``). Any other store failure (refused
credentials, a bucket that does not exist, the store down) stops the command
with one line and exit code 2 before any table is changed: it is not about
one photo, and marking every photo missing would hide it.

It takes the daemon's lock on ``saves/`` and refuses while a daemon runs
(``engine.oneoff``): the daemon appends to these files, and a rewrite must not
race an append.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commands import Command, fail

if TYPE_CHECKING:  # heavy modules are imported inside the functions (every command is imported for --help)
    from engine.config import Settings
    from engine.spec import PipelineSpec
    from file_store import FileStore
    from tables.tsv import TsvTable

KEYS_SUFFIX = "_keys"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--days", type=int, default=None,
                        help="how long the new links stay valid (default: the store's configured validity)")


def _run(args: argparse.Namespace) -> int:
    import pipelines
    from common.errors import PipelineError

    try:
        settings = pipelines.load_settings(args.config)
        spec = pipelines.get(settings.definition)
        reports = asyncio.run(relink(spec, settings, args.days))
    except PipelineError as exc:
        return fail(exc, 2)
    from file_store.settings import link_valid_days_limit

    lines = [line for report in reports for line in report.lines()]
    if args.days is not None and settings.file_store and link_valid_days_limit(settings.file_store) is None:
        lines.append(f"note: links of the {settings.file_store.backend} store do not expire; --days changes nothing")
    print("\n".join(lines) if lines else "no result table holds photo links yet")
    return 1 if any(report.without_key or report.missing for report in reports) else 0


@dataclass
class TableReport:
    """What relinking one table did."""

    path: Path
    rows: int = 0
    relinked: int = 0  # link cells rewritten
    without_key: list[int] = field(default_factory=list)  # row numbers (1 = the first after the header)
    missing: list[str] = field(default_factory=list)  # keys with no object in the store

    def lines(self) -> list[str]:
        out = [f"{self.path}: {self.relinked} link cells renewed in {self.rows} rows"]
        if self.without_key:
            shown = ", ".join(str(n) for n in self.without_key[:10])
            more = f" and {len(self.without_key) - 10} more" if len(self.without_key) > 10 else ""
            out.append(f"{self.path}: {len(self.without_key)} rows have links but no storage keys "
                       f"(written before keys were kept), left as they are: rows {shown}{more}")
        for key in self.missing[:10]:
            out.append(f"{self.path}: no photo under key {key} in the store; its link left as it is")
        if len(self.missing) > 10:
            out.append(f"{self.path}: {len(self.missing) - 10} more missing keys")
        return out


async def relink(spec: PipelineSpec[Any, Any], settings: Settings[Any], days: int | None) -> list[TableReport]:
    """Renew the links of every result table that keeps storage keys; one report per table rewritten."""
    from common.errors import PipelineError
    from engine.oneoff import daemon_stopped, open_store, open_tables_of
    from engine.runner import repair_tables
    from file_store.settings import link_valid_days_limit
    from tables.tsv import replace_keeping_owner

    assert settings.file_store is not None  # load_settings always reads [FileStore]
    limit = link_valid_days_limit(settings.file_store)
    if days is not None and days < 1:
        raise PipelineError(f"--days {days}: a link must stay valid for at least 1 day")
    if days is not None and limit is not None and days > limit:
        raise PipelineError(f"--days {days}: links of the {settings.file_store.backend} store "
                            f"last at most {limit} days")
    specs = dict(spec.tables(settings.config))
    with daemon_stopped(settings.pipeline.saves_folder, "relink"):
        tables = {name: table for name, table in open_tables_of(spec, settings).items()
                  if specs[name].folder == "results" and _pairs(table.columns) and table.path.exists()}
        store = await open_store(settings)
        try:
            # The store must answer before any table is touched (the repair below rewrites
            # tables too): a wrong bucket or refused credentials stop the command here.
            await store.list_folders("")
            await asyncio.to_thread(repair_tables, tables)  # cuts a torn tail, adds missing key columns
            # Every table's new text first, then the writes: a store that fails on anything
            # but a missing photo (refused credentials, a wrong bucket) stops the command
            # before a single table is rewritten.
            renewed = [await _relink_table(table, store, days) for table in tables.values()]
        finally:
            await store.aclose()
        for table, (_report, data) in zip(tables.values(), renewed, strict=True):
            await asyncio.to_thread(replace_keeping_owner, table.path, data, ".relink")
        return [report for report, _data in renewed]


def _pairs(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    """(link column, keys column) pairs of a table."""
    return [(c, c + KEYS_SUFFIX) for c in columns if c + KEYS_SUFFIX in columns]


async def _relink_table(table: TsvTable, store: FileStore, days: int | None) -> tuple[TableReport, bytes]:
    """What relinking ``table`` finds, and the table's new text (written by the caller)."""
    from common.errors import MissingObjectError
    from tables.tsv import encode_records

    report = TableReport(table.path)
    records = await asyncio.to_thread(_read_records, table.path)
    header, rows = records[0], records[1:]
    columns = tuple(header)
    pairs = _pairs(columns)

    async def fresh(key: str) -> str | None:
        try:
            return await store.link_existing(key, valid_days=days)
        except MissingObjectError:
            report.missing.append(key)
            return None
        # Any other StorageError (the store is down, refuses the credentials, has no such
        # bucket) goes up: nothing is rewritten, and it is not about one photo.

    out: list[dict[str, str]] = []
    for number, record in enumerate(rows, start=1):
        row = dict(zip(columns, record, strict=False))
        keyless = False
        for link_column, keys_column in pairs:
            keys = _keys(row.get(keys_column, ""))
            if keys is None:
                keyless = keyless or row.get(link_column, "") not in ("", "[]")
                continue
            links = await asyncio.gather(*(fresh(key) for key in keys))
            if any(link is None for link in links):
                continue
            row[link_column] = json.dumps(links, ensure_ascii=False)
            report.relinked += 1
        if keyless:
            report.without_key.append(number)
        out.append(row)
    report.rows = len(out)
    data = encode_records(columns, [dict(zip(columns, columns, strict=True))]) + encode_records(columns, out)
    return report, data


def _keys(cell: str) -> list[str] | None:
    """The keys of a keys cell (a JSON list), or None when the row has none."""
    if not cell:
        return None
    try:
        keys = json.loads(cell)
    except ValueError:
        return None
    if not isinstance(keys, list) or not all(isinstance(key, str) for key in keys):
        return None
    return keys


def _read_records(path: Path) -> list[list[str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.reader(io.StringIO(handle.read()), delimiter="\t", quotechar='"'))


COMMAND = Command("relink", "write fresh photo links into the result tables, from their storage keys "
                  "(docs/operations.md)", _arguments, _run)
