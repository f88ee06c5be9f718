"""Running the daemon: open everything, check it, resume, tick until told to stop.

``run()`` is what ``python pipeline.py`` calls. It owns the resources (lock,
logs, journal, HTTP session, file store) and closes them in reverse order,
whatever happens. Start-up problems (configuration, secrets, a second daemon,
a bad checkpoint, a wrong token or pool) end with one clear message and exit
code 2; SIGTERM and SIGINT finish the current tick, checkpoint, and exit 0.
A start-up failure that can pass by itself (Toloka or the photo store not
answering: the error's ``retryable``) exits 75 instead, which a service
manager restarts (deploy/toloka-pipeline.service restarts anything but 0 and 2).

Start-up says where it works and whether it resumed (one block, printed and
logged): the absolute folders in use, then "resumed from the checkpoint of
<time>" or "no checkpoint". Without a checkpoint but with rows that earlier
runs left in the decision log or the results, it refuses to start unless told
``--fresh``: a lost or misplaced ``saves/`` must not silently start over.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from common.errors import PipelineError, StateError
from common.secrets import Secret, read_secret
from engine.config import Settings, load_settings, read_definition
from engine.executor import Executor
from engine.journal import Journal
from engine.lock import DaemonLock
from engine.logs import SecretRedactor, setup_logging
from engine.spec import PipelineSpec, TableSpec
from engine.state import EngineState, checkpoint_store, load_state
from engine.ticker import Engine, TickSummary, spend_columns
from file_store import open_file_store
from tables.tsv import TsvTable, count_records
from toloka_client.client import TolokaClient
from toloka_client.http import HttpSettings

log = logging.getLogger("pipeline")
_GC_FIRST_THRESHOLD = 10_000  # see main()

C = TypeVar("C")  # the pipeline's typed configuration
S = TypeVar("S")  # the pipeline's picklable state

MAX_PHOTO_BYTES = 20 * 1024 * 1024
#: Exit codes of the daemon: a person must act (not restarted by the service), or try again later.
EXIT_FIX, EXIT_TRY_LATER = 2, 75  # 75 is sysexits' EX_TEMPFAIL
#: Recent decisions read back from the decision log at start-up (the status page's list).
RECENT_SEEDED = 50


#: The photo store is probed at least this often, whatever the tick period.
PROBE_EVERY_S = 10.0


def utc_now() -> datetime:
    """Naive UTC now, the form every timestamp in the pipeline has."""
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class RunOptions:
    """How long to run: ``once`` (one tick), ``max_ticks`` and ``stop`` (tests and the demo).

    ``fresh``: start without a checkpoint even though earlier runs left rows
    (``python pipeline.py --fresh``); without it, such a start is refused.
    """

    once: bool = False
    fresh: bool = False
    max_ticks: int | None = None
    stop: asyncio.Event | None = None
    print_ticks: bool = True
    # The demo stops when this says all work is decided (checked after each tick).
    until: Callable[[Engine[Any, Any]], bool] | None = None


def open_tables(specs: dict[str, TableSpec], logs: Path, results: Path) -> dict[str, TsvTable]:
    """The pipeline's tables by logical name, in the logs or the results folder."""
    return {
        name: TsvTable(spec.path(logs, results), spec.columns, spec.key)
        for name, spec in specs.items()
    }


def repair_tables(tables: dict[str, TsvTable]) -> None:
    """Check headers and cut torn tails of the tables that exist (blocking: run it in a thread)."""
    for table in tables.values():
        table.repair()


def earlier_rows(specs: dict[str, TableSpec], logs: Path, results: Path) -> list[tuple[Path, int]]:
    """The pipeline's tables that already hold rows, with their row counts (reads only)."""
    found = []
    for spec in specs.values():
        path = spec.path(logs, results)
        count = count_records(path)
        if count:
            found.append((path, count))
    return found


def refuse_to_start_over(saves: Path, found: list[tuple[Path, int]]) -> StateError:
    """Why a start without a checkpoint over earlier rows is refused, and what ``--fresh`` would do."""
    listing = "\n".join(f"  {path}: {count} row{'s' if count != 1 else ''}" for path, count in found)
    return StateError(
        f"no checkpoint in {saves}, but earlier runs left rows:\n{listing}\n"
        f"Starting now would read every pool from its beginning as if nothing had been decided. If saves/ "
        f"was lost or is elsewhere, restore it (or point [Pipeline] saves_folder at it) and start again.\n"
        f"To start from scratch on purpose, add --fresh: the cursors start from the beginning of the pools, "
        f"work Toloka already holds accepted or rejected is left alone, work still waiting is decided, "
        f"and the existing rows are kept and not written twice."
    )


_FILES_ONLY = "files_only"


def _not_files_only(record: logging.LogRecord) -> bool:
    """Console filter: a record marked ``files_only`` (already printed to stdout) is not shown again."""
    return not getattr(record, _FILES_ONLY, False)


def photo_store_location(settings: Settings[Any]) -> str:
    """Where photos go, for people: a folder, a bucket or a container."""
    fs = settings.file_store
    if fs is None:
        return "none configured"
    if fs.local is not None:
        return f"local folder {fs.local.folder.absolute()}"
    if fs.s3 is not None:
        return f"S3 bucket {fs.s3.bucket_name} at {fs.s3.url or 'the default endpoint'}"
    if fs.azure is not None:
        return f"Azure container {fs.azure.container_name} of account {fs.azure.account_name}"
    return fs.backend


def startup_block(
    settings: Settings[Any], state: EngineState[Any], *, resumed: bool, saved_at: datetime | None, pending: int
) -> str:
    """The lines start-up prints and logs: the folders in use and what it resumed from."""
    pipeline = settings.pipeline
    lines = [
        f"config file:  {Path(settings.source).absolute()}",
        f"results:      {pipeline.results_folder.absolute()}",
        f"saves:        {pipeline.saves_folder.absolute()}",
        f"logs:         {pipeline.logs_folder.absolute()}",
        f"photo store:  {photo_store_location(settings)}",
    ]
    if resumed:
        when = f"{saved_at:%Y-%m-%d %H:%M:%S} UTC" if saved_at is not None else "an unknown time"
        under_review = len(state.reviews)
        lines.append(f"resumed from the checkpoint of {when}: {under_review} assignment"
                     f"{'s' if under_review != 1 else ''} under review, {pending} effect"
                     f"{'s' if pending != 1 else ''} pending")
    else:
        lines.append("no checkpoint: starting from the beginning of the pools")
    return "\n".join(lines)


@contextlib.asynccontextmanager
async def open_engine(
    spec: PipelineSpec[C, S],
    settings: Settings[C],
    *,
    clock: Callable[[], datetime] = utc_now,
    fresh: bool = False,
    announce: Callable[[str], None] | None = None,
) -> AsyncIterator[Engine[C, S]]:
    """Everything an engine needs, opened in order and closed in reverse.

    Without a checkpoint, earlier rows in the pipeline's tables stop start-up
    (:class:`StateError`) unless ``fresh``. The start-up block is logged, and
    handed to ``announce`` too (the daemon prints it).
    """
    redactor = SecretRedactor()

    def secret(entry: str) -> Secret:
        value = read_secret(entry)
        redactor.add(value)  # a second line of defence: log records never show it
        return value

    table_specs = dict(spec.tables(settings.config))
    saves = settings.pipeline.saves_folder

    async def refuse_over_earlier_rows() -> None:
        found = await asyncio.to_thread(earlier_rows, table_specs, settings.pipeline.logs_folder,
                                        settings.pipeline.results_folder)
        if found:
            raise refuse_to_start_over(saves, found)

    if not fresh and not saves.exists():
        # Refused before the lock and the logs make anything: a missing saves/ (a wrong folder, a copy
        # not yet restored) must stay missing, or the operator's next `mv saves.bak saves` goes inside it.
        await refuse_over_earlier_rows()
    async with contextlib.AsyncExitStack() as stack:
        logs = setup_logging(settings.pipeline.logs_folder, settings.pipeline.log_level, settings.pools(), redactor)
        stack.callback(logs.close)
        for _, handler in logs.installed:
            if not isinstance(handler, logging.FileHandler):
                handler.addFilter(_not_files_only)
        stack.enter_context(DaemonLock(saves))
        checkpoints = checkpoint_store(saves, spec)
        state, resumed = load_state(checkpoints, spec, clock())
        if not resumed and not fresh:  # saves/ there, but no checkpoint in it
            await refuse_over_earlier_rows()
        journal = Journal.open(saves, state.journal)
        stack.callback(journal.close)
        block = startup_block(settings, state, resumed=resumed, saved_at=checkpoints.saved_at,
                              pending=len(journal.pending()))
        # Announced (printed) blocks skip the console log handler: one copy on the terminal, one in the files.
        log.info("start-up:\n%s", block, extra={_FILES_ONLY: announce is not None})
        if announce is not None:
            announce(block)
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
        tables = open_tables(table_specs, settings.pipeline.logs_folder, settings.pipeline.results_folder)
        # A torn last row from a crash is cut now, not at the next append.
        await asyncio.to_thread(repair_tables, tables)
        executor = Executor(client, store, tables, max_photo_bytes=MAX_PHOTO_BYTES,
                            concurrency=settings.pipeline.concurrency, clock=clock)
        spend_log = TsvTable(settings.pipeline.logs_folder / "spend.tsv", spend_columns(list(settings.pools())))
        engine = Engine(spec, settings, client, executor, checkpoints, journal, state, clock=clock,
                        spend_log=spend_log)
        if settings.status.enabled:
            # Imported here: the page (aiohttp.web, the snapshot code) is off by default and costs
            # 50 to 100 ms of start-up CPU (measured both ways) a daemon without it should not pay.
            from engine.snapshot import logged_decisions, take_snapshot
            from status.server import serve_status

            decision_log = spec.decision_log
            if decision_log is not None and decision_log.table in tables:  # a restart shows what came before
                engine.recent_decisions.extend(await asyncio.to_thread(
                    logged_decisions, tables[decision_log.table].path, decision_log, RECENT_SEEDED))
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
    def announce(block: str) -> None:
        print(block, flush=True)

    async with open_engine(spec, settings, clock=clock, fresh=options.fresh,
                           announce=announce if options.print_ticks else None) as engine:
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
        await asyncio.to_thread(daemon.spec.prepare, settings.config)
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
                log.info("stop requested: the last tick is done; checkpointing and exiting")
                break
        await daemon.checkpoint()  # the last tick's effects are in the journal's done lines; this one compacts them
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
        # What start-up loaded (modules, settings) lives as long as the process: the collector's
        # full passes need not walk it again and again (they grow with the state otherwise).
        gc.freeze()
        # A tick allocates many short-lived containers (a search page's assignments, their records)
        # that reference counting frees; the default first threshold (700) ran the collector about
        # 290 times in a 200-organization run (110 ms of CPU, counted with gc.callbacks), mostly
        # over objects about to die anyway. At 10,000 it ran 5 times (15 ms); peak memory unchanged.
        gc.set_threshold(_GC_FIRST_THRESHOLD, *gc.get_threshold()[1:])
        return asyncio.run(run(spec, settings, options))
    except PipelineError as exc:
        for line in str(exc).splitlines():  # several configuration mistakes: one line each
            print(f"pipeline: {line}", file=sys.stderr)
        if exc.retryable:
            print("pipeline: this can pass by itself: starting again later may work", file=sys.stderr)
            return EXIT_TRY_LATER
        return EXIT_FIX
    except KeyboardInterrupt:
        return 0
