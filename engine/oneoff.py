"""What one-off commands that write the daemon's tables share: its lock, its tools, a journal of their own.

``pipeline.py reverse`` and ``pipeline.py relink`` write the result tables the
daemon appends to, so they run only while no daemon runs on the same
``saves/`` folder: they take the daemon's own lock (``engine.lock``) for their
whole run and refuse at once while a daemon holds it. Taking the lock, not
sending the daemon a request, keeps them simple and obviously safe: a keyed
table keeps the keys it has seen in the daemon's memory, an upgraded table is
rewritten in place, and ``relink`` rewrites whole files; none of that may
interleave with another writer. Stopping the daemon costs nothing (it resumes
from its checkpoint), and these commands take seconds.

A command's effects go through the daemon's :class:`~engine.executor.Executor`
(each one idempotent) and a journal of their own (``engine.journal``, pending
before anything runs, done after each), so a ``kill -9`` at any instant and a
rerun finish them without doing any twice.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from common.errors import StateError
from common.secrets import read_secret
from engine.config import Settings
from engine.executor import Executor
from engine.journal import Journal
from engine.lock import DaemonLock, LockHeldError
from engine.runner import MAX_PHOTO_BYTES, open_tables, repair_tables, utc_now
from engine.spec import PipelineSpec
from file_store import FileStore, open_file_store
from tables.tsv import TsvTable
from toloka_client.client import TolokaClient
from toloka_client.http import HttpSettings


@contextlib.contextmanager
def daemon_stopped(saves: Path, command: str) -> Any:
    """Hold the daemon's lock on ``saves`` for the block; a running daemon is a clear :class:`StateError`.

    A missing ``saves`` is refused, not made: it means a wrong ``--config`` or a move half done,
    and a folder made here would swallow the operator's ``mv saves.bak saves``.
    """
    if not saves.is_dir():
        raise StateError(f"no saves folder {saves}: {command} works on a pipeline the daemon has run; "
                         f"check --config ([Pipeline] saves_folder), or restore the folder first")
    lock = DaemonLock(saves)
    try:
        lock.acquire()
    except LockHeldError as exc:
        holder = f"pid {exc.pid}" if exc.pid is not None else "pid unknown"
        raise StateError(
            f"the pipeline daemon ({holder}) is running on saves folder {exc.folder}; "
            f"{command} writes the tables it writes: stop it, run {command}, start it again"
        ) from None
    try:
        yield lock
    finally:
        lock.release()


def open_tables_of(spec: PipelineSpec[Any, Any], settings: Settings[Any]) -> dict[str, TsvTable]:
    """The pipeline's tables, as the daemon opens them."""
    return open_tables(dict(spec.tables(settings.config)), settings.pipeline.logs_folder,
                       settings.pipeline.results_folder)


async def open_store(settings: Settings[Any]) -> FileStore:
    """The configured photo store (its secrets from the keyring); close it with ``aclose``."""
    if settings.file_store is None:
        raise StateError("the configuration has no [FileStore] section")
    return await open_file_store(settings.file_store)


@dataclass
class Tools:
    """The daemon's means of acting, for a one-off command."""

    client: TolokaClient
    store: FileStore
    tables: dict[str, TsvTable]
    executor: Executor


@contextlib.asynccontextmanager
async def open_tools(spec: PipelineSpec[Any, Any], settings: Settings[Any]) -> AsyncIterator[Tools]:
    """Toloka client, photo store, tables (checked and repaired) and an executor, closed in reverse."""
    async with contextlib.AsyncExitStack() as stack:
        token = await asyncio.to_thread(read_secret, settings.secrets.toloka_token)
        http = HttpSettings(total_timeout_s=settings.toloka.timeout_s)
        client = await stack.enter_async_context(TolokaClient.connect(settings.toloka.base_url, token, http))
        store = await open_store(settings)
        stack.push_async_callback(store.aclose)
        tables = open_tables_of(spec, settings)
        await asyncio.to_thread(repair_tables, tables)
        executor = Executor(client, store, tables, max_photo_bytes=MAX_PHOTO_BYTES,
                            concurrency=settings.pipeline.concurrency, clock=utc_now)
        yield Tools(client, store, tables, executor)


async def carry_out(journal: Journal, executor: Executor) -> list[tuple[Any, str | None]]:
    """Run the journal's pending effects in order, marking each done; the first failure stops (and stays).

    Returns each effect done with what :meth:`Executor.run` said of it (e.g. a downloaded photo's facts).
    """
    done = []
    for effect in journal.pending():
        outcome = await executor.run(effect)  # ActionFailed: the rest stays pending for a rerun
        await asyncio.to_thread(journal.mark_done, [effect])
        done.append((effect, outcome))
    return done
