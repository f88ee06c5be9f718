"""List old ``tmp/<YYYY-MM-DD>/`` folders for a person to remove (nothing is deleted here).

The pipeline never deletes photos ("no delete politics"). Photos under review live in
``tmp/<date>/``; good ones are copied to ``main/`` and ``main_bonus/``. After the review
of a day is long over, its ``tmp/`` folder only costs storage. This command prints such
folders, oldest first, so an operator can remove them with the storage's own tools::

    python -m file_store.retention --config toloka.ini --keep-days 30
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta

from common.errors import PipelineError
from file_store import load_file_store_settings, open_file_store
from file_store.settings import read_config

TMP_PREFIX = "tmp/"


def old_tmp_folders(folders: Iterable[str], today: date, keep_days: int) -> list[str]:
    """The ``tmp/<date>/`` folders dated more than ``keep_days`` days before ``today``, oldest first.

    Folders whose name is not a date are never listed (they are not the pipeline's).
    """
    cutoff = today - timedelta(days=keep_days)
    dated: list[tuple[date, str]] = []
    for folder in folders:
        if not folder.startswith(TMP_PREFIX) or not folder.endswith("/"):
            continue
        name = folder[len(TMP_PREFIX) : -1]
        try:
            day = date.fromisoformat(name)
        except ValueError:
            continue
        if len(name) == 10 and day < cutoff:
            dated.append((day, folder))
    return [folder for _, folder in sorted(dated)]


async def list_old_tmp_folders(config: str, keep_days: int, today: date) -> list[str]:
    """Open the configured store and list its old ``tmp/`` folders."""
    settings = load_file_store_settings(read_config(config))
    async with await open_file_store(settings) as store:
        return old_tmp_folders(await store.list_folders(TMP_PREFIX), today, keep_days)


def main(argv: list[str] | None = None) -> int:
    """Command line entry point; prints one folder per line."""
    parser = argparse.ArgumentParser(prog="python -m file_store.retention", description=__doc__.splitlines()[0])
    parser.add_argument("--config", default="toloka.ini", help="configuration file (default: toloka.ini)")
    parser.add_argument("--keep-days", type=int, default=30, help="keep this many recent days (default: 30)")
    parser.add_argument("--today", type=date.fromisoformat, default=None, help="YYYY-MM-DD (default: today, UTC)")
    args = parser.parse_args(argv)
    if args.keep_days < 0:
        parser.error("--keep-days must be >= 0")
    today = args.today or datetime.now(UTC).date()
    try:
        folders = asyncio.run(list_old_tmp_folders(args.config, args.keep_days, today))
    except PipelineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for folder in folders:
        print(folder)
    print(
        f"{len(folders)} tmp/ folder(s) older than {args.keep_days} days; nothing was deleted. "
        f"Check that their photos were copied to main/ or are not needed, then remove them by hand.",
        file=sys.stderr,
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
