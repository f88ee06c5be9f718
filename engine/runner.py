"""Running the daemon: open everything, check it, resume, tick until told to stop.

``run()`` is what ``python pipeline.py`` calls. It owns the resources (lock,
logs, journal, HTTP session, file store) and closes them in reverse order,
whatever happens. Start-up problems (configuration, secrets, a second daemon,
a bad checkpoint, a wrong token or pool) end with one clear message and exit
code 2; SIGTERM and SIGINT finish the current tick, checkpoint, and exit 0.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from common.errors import PipelineError
from common.secrets import Secret, read_secret
from engine.config import Settings, load_settings, read_definition
from engine.executor import Executor
from engine.journal import Journal
from engine.lock import DaemonLock
from engine.logs import SecretRedactor, setup_logging
from engine.snapshot import take_snapshot
from engine.spec import PipelineSpec, TableSpec
from engine.state import checkpoint_store, load_state
from engine.ticker import Engine, TickSummary, spend_columns
from file_store import open_file_store
from status.server import serve_status
from tables.tsv import TsvTable
from toloka_client.client import TolokaClient
from toloka_client.http import HttpSettings

log = logging.getLogger("pipeline")

C = TypeVar("C")  # the pipeline's typed configuration
S = TypeVar("S")  # the pipeline's picklable state

MAX_PHOTO_BYTES = 20 * 1024 * 1024


#: The photo store is probed at least this often, whatever the tick period.
PROBE_EVERY_S = 10.0


def utc_now() -> datetime:
    """Naive UTC now, the form every timestamp in the pipeline has."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class RunOptions:
    """How long to run: ``once`` (one tick), ``max_ticks`` and ``stop`` (tests and the demo)."""

    once: bool = False
    max_ticks: int | None = None
    stop: asyncio.Event | None = None
    print_ticks: bool = True
    # The demo stops when this says all work is decided (checked after each tick).
    until: Callable[[Engine[Any, Any]], bool] | None = None


def open_tables(specs: dict[str, TableSpec], logs: Path, results: Path) -> dict[str, TsvTable]:
    """The pipeline's tables by logical name, in the logs or the results folder."""
    return {
        name: TsvTable((logs if spec.folder == "logs" else results) / spec.filename, spec.columns, spec.key)
        for name, spec in specs.items()
    }


def repair_tables(tables: dict[str, TsvTable]) -> None:
    """Check headers and cut torn tails of the tables that exist (blocking: run it in a thread)."""
    for table in tables.values():
        table.repair()


@contextlib.asynccontextmanager
async def open_engine(
    spec: PipelineSpec[C, S], settings: Settings[C], *, clock: Callable[[], datetime] = utc_now
) -> AsyncIterator[Engine[C, S]]:
    """Everything an engine needs, opened in order and closed in reverse."""
    redactor = SecretRedactor()

    def secret(entry: str) -> Secret:
        value = read_secret(entry)
        redactor.add(value)  # a second line of defence: log records never show it
        return value

    async with contextlib.AsyncExitStack() as stack:
        saves = settings.pipeline.saves_folder
        logs = setup_logging(settings.pipeline.logs_folder, settings.pipeline.log_level, settings.pools(), redactor)
        stack.callback(logs.close)
        stack.enter_context(DaemonLock(saves))
        checkpoints = checkpoint_store(saves, spec)
        state, _resumed = load_state(checkpoints, spec, clock())
        journal = Journal.open(saves, state.journal)
        stack.callback(journal.close)
        token_entry = settings.secrets.toloka_token
        token = await asyncio.to_thread(secret, token_entry)
        http = HttpSettings(total_timeout_s=settings.toloka.timeout_s)
        # After a 401 the token is read again (and redacted too): a rotated token needs no restart.
        client = await stack.enter_async_context(TolokaClient.connect(
            settings.toloka.base_url, token, http, reread_token=lambda: secret(token_entry)))
        # load_settings always parses [FileStore]; only hand-built settings (tests, the report) lack it.
        assert settings.file_store is not None, "the daemon needs settings with a [FileStore]"
        store = await open_file_store(settings.file_store, secrets=secret)
        stack.push_async_callback(store.aclose)
        tables = open_tables(dict(spec.tables(settings.config)), settings.pipeline.logs_folder,
                             settings.pipeline.results_folder)
        # A torn last row from a crash is cut now, not at the next append.
        await asyncio.to_thread(repair_tables, tables)
        executor = Executor(client, store, tables, max_photo_bytes=MAX_PHOTO_BYTES,
                            concurrency=settings.pipeline.concurrency, clock=clock)
        spend_log = TsvTable(settings.pipeline.logs_folder / "spend.tsv", spend_columns(list(settings.pools())))
        engine = Engine(spec, settings, client, executor, checkpoints, journal, state, clock=clock,
                        spend_log=spend_log)
        if settings.status.enabled:
            status_token = None
            if settings.status.token is not None:
                status_token = await asyncio.to_thread(secret, settings.status.token)

            def snapshot() -> dict[str, Any]:
                return take_snapshot(engine, engine.clock())

            server = await stack.enter_async_context(serve_status(snapshot, settings.status, status_token))
            engine.status_url = server.url
        yield engine


async def run(
    spec: PipelineSpec[C, S],
    settings: Settings[C],
    options: RunOptions,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> int:
    """Run the daemon until stopped; returns the process exit code."""
    async with open_engine(spec, settings, clock=clock) as engine:
        return await _loop(engine, settings, options)


async def _loop(daemon: Engine[C, S], settings: Settings[C], options: RunOptions) -> int:
    stop = options.stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    installed = []
    for signum in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
            installed.append(signum)
    background: list[asyncio.Task[None]] = []
    try:
        if daemon.status_url and options.print_ticks:
            print(f"status page: {daemon.status_url}", flush=True)
        await daemon.check_pools()
        # What the handlers import (crowd-kit: seconds when cold) loads now, not in the first tick.
        loading = loop.time()
        await asyncio.to_thread(daemon.spec.prepare)
        log.info("the handlers' libraries are loaded (%.1f s)", loop.time() - loading)
        await daemon.resume()
        period = settings.pipeline.period_s
        # Between and during ticks too: a tick held up by a stalled store must not hide the stall.
        prober = asyncio.create_task(daemon.probe_forever(min(period, PROBE_EVERY_S)))
        background.append(prober)
        start = loop.time()
        ticks = 0
        while True:
            summary: TickSummary = await daemon.tick()
            ticks += 1
            if options.print_ticks:
                print(summary.line(daemon.clock()), flush=True)
            if options.once or (options.max_ticks is not None and ticks >= options.max_ticks):
                break
            if options.until is not None and options.until(daemon):
                break
            if settings.pipeline.stop_when_pools_closed and await daemon.pools_closed():
                log.info("every pool is closed and nothing is pending: stopping")
                break
            # Drift-free: tick k starts at start + k * period, or at once if late.
            delay = max(0.0, start + ticks * period - loop.time())
            daemon.next_tick_at = daemon.clock() + timedelta(seconds=delay)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=delay)
            if stop.is_set():
                log.info("stop requested: the last tick is checkpointed; exiting")
                break
        return 0
    finally:
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for signum in installed:
            loop.remove_signal_handler(signum)


def main(config: Path, options: RunOptions, pipelines: Callable[[str], PipelineSpec[Any, Any]]) -> int:
    """Entry point of ``python pipeline.py``: clear messages, no tracebacks, for our errors.

    ``pipelines`` finds the definition ``[Pipeline] definition`` names (the
    engine imports no pipeline; ``pipeline.py`` passes ``pipelines.get``).
    """
    try:
        spec = pipelines(read_definition(config))
        settings = load_settings(config, spec)
        return asyncio.run(run(spec, settings, options))
    except PipelineError as exc:
        for line in str(exc).splitlines():  # several configuration mistakes: one line each
            print(f"pipeline: {line}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
