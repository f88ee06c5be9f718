"""The tick: fetch new events, decide, journal, checkpoint, execute. Generic over pipelines.

One tick, in this order (the order is what makes a kill -9 harmless):

1. every observer fetches its new events concurrently (I/O only; a failing
   pool is logged with its id and skipped this tick, its cursor stays put);
2. the pipeline's handlers decide, one after another, with no await in
   between: they change the pipeline state and return chains of actions;
3. the actions become pending (in memory), the cursors move, and the whole
   state is checkpointed atomically: effects are durable together with the
   decisions that made them;
4. the executor runs every pending chain; what succeeded is marked done and
   the state checkpointed again, which drops the done entries.

A crash before 3 re-delivers the events, and the deterministic handlers decide
the same actions with the same keys (already journalled ones are not staged
twice); a crash after 3 leaves pending actions that the next start runs again,
idempotently.

A handler that raises loses nothing, and nothing is copied to make that so:
the state as of the last checkpoint is read back from the bytes of that
checkpoint, and the tick's decisions are taken again without the failing
observer (handlers are deterministic, so the others decide exactly as before);
its cursor stays, and its events come again next tick. The cost is paid only
when a handler fails.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, TypeVar

from common.errors import ConfigError, PipelineError, StateError
from engine import reviews as review_rules
from engine.accounting import Stats
from engine.actions import (
    Action,
    AppendRows,
    CreateTasks,
    PayBonus,
    RaiseOverlap,
    RestrictWorker,
    SendBatch,
    SetStatus,
    Step,
    StorePhoto,
)
from engine.batching import Planned
from engine.checkpoint import CheckpointStore, Encoded
from engine.config import Settings, read_max_spend
from engine.cursor import AssignmentCursor, CursorBatch
from engine.executor import EXISTED, ActionFailed, ChainResult, Executor
from engine.journal import Journal, JournalSnapshot
from engine.logs import pool_logger
from engine.pool_specs import check_pool_specs, raise_on_mismatch
from engine.probe import ProbeResult, StoreProbe, record_probe
from engine.skills import SkillCache
from engine.spec import Batch, Context, Decision, Handler, PipelineSpec, funnel_entries
from engine.state import MAX_FACTS, EngineState
from file_store.base import FileStore
from tables.tsv import TableError, TsvTable, encode_records
from toloka_client.client import TolokaClient
from toloka_client.errors import TolokaError

log = logging.getLogger("pipeline")

#: The journal's chain name for batch records (chains of handlers are named by their unit of work).
BATCH_CHAIN = "~batch"
#: A pool the pipeline expects nothing from (``PipelineSpec.expects``) is searched once in this many ticks.
IDLE_SEARCH_TICKS = 10
#: Effects whose first try this process can prove (``Engine.never_sent``): they need no look before they go.
UNTRIED_KINDS = (CreateTasks, PayBonus, StorePhoto)
#: Names on a done journal line (``Journal.learned``) for what an effect told the handlers: a stored
#: photo's measurements, Toloka's refusal, the status that overtook a reject.
FACTS, REFUSED, OVERTAKEN = "facts", "refused", "overtaken"


def _told(result: ChainResult) -> tuple[tuple[str, dict[str, str]], ...]:
    """What a chain told the handlers, each part under the name its done journal lines give it."""
    return (FACTS, result.facts), (REFUSED, result.refused), (OVERTAKEN, result.overtaken)


C = TypeVar("C")
S = TypeVar("S")
Clock = Callable[[], datetime]


def _replace_file(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def spend_columns(pools: Sequence[str]) -> tuple[str, ...]:
    """Columns of ``logs/spend.tsv``: running money totals, a row after each tick that changed them."""
    return ("date_time", "rewards", "bonuses", "spent", *(f"{name}_rewards" for name in pools),
            "bonuses_paid", "max_spend", "held")


@dataclass(frozen=True)
class Observer(Generic[C, S]):
    """One observer of the pipeline, resolved against the configuration."""

    key: str  # cursor key in the checkpoint
    pool: str  # the pool's name in the pipeline
    pool_id: str
    event: str
    handler: Handler[S, C]
    skill_id: str | None = None


@dataclass
class TickSummary:
    """What one tick did: the one line printed per tick."""

    fetched: int = 0
    decided: int = 0
    created: int = 0
    existed: int = 0  # tasks an earlier try had created (found, not created again); not in ``created``
    errors: int = 0
    pending: int = 0
    duration_s: float = 0.0
    held: int = 0  # effects held back by [Pipeline] max_spend

    def line(self, now: datetime) -> str:
        held = f", HELD {self.held} paid effects: max_spend reached" if self.held else ""
        return (
            f"{now:%Y-%m-%d %H:%M:%S} tick: fetched {self.fetched}, decided {self.decided}, "
            f"created {self.created} tasks ({self.existed} already existed), errors {self.errors}, "
            f"pending effects {self.pending}, "
            f"{self.duration_s:.2f} s{held}"
        )


@dataclass(frozen=True)
class Event:
    """A recent decision row or error, for the status page (memory only)."""

    at: datetime
    pool: str
    kind: str
    text: str
    detail: str = ""


class Engine(Generic[C, S]):
    """Owns the state and runs ticks of one pipeline; the resources (client, executor, journal) are given."""

    def __init__(
        self,
        spec: PipelineSpec[C, S],
        settings: Settings[C],
        client: TolokaClient,
        executor: Executor,
        checkpoints: CheckpointStore,
        journal: Journal,
        state: EngineState[S],
        *,
        clock: Clock,
        monotonic: Callable[[], float] = time.monotonic,
        skill_ttl_s: float = 300.0,
        spend_log: TsvTable | None = None,
    ) -> None:
        self.spec = spec
        self.settings = settings
        self.client = client
        self.executor = executor
        self.checkpoints = checkpoints
        self.journal = journal
        self.state = state
        self.clock = clock
        self.monotonic = monotonic
        config = settings.config
        pools = settings.pools()
        self.pool_names = list(pools)
        self.observers: list[Observer[C, S]] = [
            Observer(o.key, o.pool, pools[o.pool], o.event(config), o.handler, o.skill_id(config))
            for o in spec.observers
        ]
        self.reviewed = spec.reviewed_pools(config)
        lag = timedelta(seconds=settings.toloka.cursor_lag_s)
        self.cursors = {
            o.key: AssignmentCursor(client, o.pool_id, o.event, state=state.cursors.get(o.key), lag=lag)
            for o in self.observers
        }
        self.skills = SkillCache(client, ttl_s=skill_ttl_s, monotonic=monotonic)
        self.auto_accept: dict[str, timedelta] = {}  # reviewed pool -> Toloka's auto-accept period
        self.pool_status: dict[str, str] = {}
        # What the status page shows besides the checkpointed Stats (memory only).
        self.last_tick: TickSummary | None = None
        self.last_tick_at: datetime | None = None
        self.started_at = clock()  # before the first tick, staleness counts from here
        self.next_tick_at: datetime | None = None  # set by the run loop
        self.status_url: str | None = None  # set when [Status] is enabled
        self.spend_log = spend_log
        self._spend_logged: tuple[Decimal, int] | None = None
        self.recent_decisions: deque[Event] = deque(maxlen=50)
        self.recent_errors: deque[Event] = deque(maxlen=50)
        self.held: list[Action] = []  # paid effects held back by max_spend in the last run
        # Chains stopped by a permanent failure: chain -> reason. They stay pending in the journal
        # but are not run again (nor reported again) until the next start, where a person may have
        # fixed the cause; retrying them every tick only repeated the same error line.
        self.parked: dict[str, str] = {}
        # Money of accepts and bonuses started but not counted yet (checked against max_spend).
        self._in_flight: dict[str, Decimal] = {}
        # Tasks created / found already created since the last tick line (resume's count on the first line).
        self._tasks_unshown = (0, 0)
        # The store keeps the last checkpoint's bytes: the state to go back to when a handler fails
        # (encoded once here, then kept from every checkpoint; nothing is copied on a normal tick).
        checkpoints.encode(state)
        # The photo store probe (engine.probe): skipped when there is no file store to probe.
        store = getattr(executor, "store", None)
        self.probe: StoreProbe | None = StoreProbe(store) if isinstance(store, FileStore) else None
        self.last_probe: ProbeResult | None = None
        self._probed_at: float | None = None  # self.monotonic() when the last probe ended; None: none yet
        self._workers_written: bytes | None = None  # what logs/workers.tsv holds (written when it changes)
        self.held_for_store: list[Action] = []  # task creations waiting while photo links do not serve
        self._probe_lock = asyncio.Lock()  # one probe at a time: the tick's and the background one's
        self._outage_reported: datetime | None = None  # start of the open outage already logged by this process
        # Keys of task creations, bonuses and photo downloads this process staged and has not tried
        # yet: the journal proves they never went out, so a creation or bonus may go in a new batch
        # (engine/batching.py) and a photo is downloaded without looking for it first. Anything
        # pending at start-up may have been sent alone by an earlier run, so it goes alone again.
        self.never_sent: set[str] = set()
        self._quiet: set[str] = set()  # observers whose last search brought nothing: they skip the next tick

    # -- start-up -------------------------------------------------------------------

    async def check_pools(self) -> None:
        """Check the token, every pool and its project against the API (clear errors, before any work).

        A pool whose project does not fit the pipeline (``PipelineSpec.expected_pools``)
        stops start-up with a ConfigError naming the section and ``pool_id``.
        """
        requester = await self.client.get_requester()
        log.info("token accepted for requester %s", requester.id)
        for name, pool_id in self.settings.pools().items():
            try:
                pool = await self.client.get_pool(pool_id)
            except TolokaError as exc:
                # Keeps the cause's verdict: a pool Toloka cannot serve right now is not a wrong pool id.
                raise PipelineError(f"{name} pool {pool_id}: {exc}", retryable=exc.retryable) from None
            self.pool_status[pool_id] = pool.status or "?"
            if name in self.reviewed and pool.auto_accept_period_day:
                self.auto_accept[name] = timedelta(days=pool.auto_accept_period_day)
            log.info("%s pool %s is %s", name, pool_id, pool.status)
        if self.spec.expected_pools is not None:
            # A pool whose project does not fit (swapped ids, renamed fields) would get paid tasks it cannot take.
            expected = self.spec.expected_pools(self.settings.config)
            raise_on_mismatch(await check_pool_specs(self.client, expected, self.settings.pools()),
                              self.settings.source.name)
            log.info("every pool's project fits what the pipeline sends and reads")

    async def resume(self) -> int:
        """Run the effects a previous run left pending; returns how many were pending."""
        self.recount_after_restart()
        pending = len(self.journal.pending())
        if pending:
            log.info("resuming %d pending effects from the journal", pending)
            # Every effect runs only while a checkpoint listing it as pending is on disk:
            # that is what lets recount_after_restart find the ones a crash left uncounted.
            await self.checkpoint()
            await self.execute_pending()
            await self.checkpoint()
        return pending

    def recount_after_restart(self) -> int:
        """Count effects done after the last checkpoint (their counts died with the process).

        The checkpoint holds the Stats together with the effects still pending at
        that moment; the journal lines after it say which of those were then done.
        Call once, before the first checkpoint of this run. Returns how many.
        """
        done = [step.action for step in self.state.journal.pending if self.journal.status(step.key) == "done"]
        if done:
            log.info("counting %d effects done after the last checkpoint", len(done))
            learned = {action.key: self.journal.learned(action.key) for action in done}
            result = ChainResult(done=done)
            for name, told in _told(result):
                told.update({key: kept[name] for key, kept in learned.items() if name in kept})
            self._learn(result)
        return len(done)

    # -- one tick ---------------------------------------------------------------------

    async def tick(self) -> TickSummary:
        started = self.monotonic()
        now = self.clock()
        summary = TickSummary()
        # The photo store is probed while the observers fetch, so handlers see the current outage in ctx.
        due = self._due_observers()
        fetched, summary.errors = await asyncio.gather(
            asyncio.gather(*(self._fetch(o, now) for o in due), return_exceptions=True),
            self._probe_store(now),
        )
        batches: dict[str, tuple[CursorBatch, Batch]] = {}
        for observer, result in zip(due, fetched, strict=True):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                summary.errors += 1
                self._pool_log(observer).error("%s pool %s: fetch failed: %s", observer.pool, observer.pool_id, result)
                self._error(now, observer.pool, "fetch failed", str(result))
                continue
            batches[observer.key] = result
            if not result[0].events:
                self._quiet.add(observer.key)
        decisions, failed = self._decide_all(batches, now)
        for observer in self.observers:
            if observer.key in failed:
                summary.errors += 1
                count = len(batches[observer.key][1].assignments)
                self._error(now, observer.pool, "handler failed", f"{count} assignments will be retried")
        steps = []
        for observer in self.observers:
            decision = decisions.get(observer.key)
            if decision is None:
                continue
            cursor_batch, batch = batches[observer.key]
            self._emit(self._pool_log(observer), decision)
            for review in decision.reviewing:
                self.state.reviews.setdefault(review.assignment_id, review)
            summary.fetched += len(batch.assignments)
            summary.decided += decision.decided
            steps += decision.steps()
            self.cursors[observer.key].commit(cursor_batch.state)
            self._count_fetched(observer, batch)
        self._warn_before_auto_accept(now)
        # Pending in memory only: the checkpoint below makes them durable with the decisions (journal.stage).
        staged = self.journal.stage(steps)
        self.never_sent.update(step.key for step in staged if isinstance(step.action, UNTRIED_KINDS))
        await self.checkpoint()
        await self._reload_max_spend()
        _, failures = await self.execute_pending()
        (summary.created, summary.existed), self._tasks_unshown = self._tasks_unshown, (0, 0)
        summary.errors += failures
        # No checkpoint here: what the effects told the handlers (photo facts, refusals, an
        # auto-accept) is on their done lines, and a restart takes it back from there
        # (recount_after_restart); the next tick's checkpoint covers the rest.
        await self._write_workers()
        stats = self.state.stats
        stats.ticks += 1
        stats.fetched += summary.fetched
        stats.decided += summary.decided
        stats.errors += summary.errors
        summary.pending = len(self.journal.pending())
        summary.held = len(self.held)
        await self._log_spend(now)
        summary.duration_s = self.monotonic() - started
        self.last_tick, self.last_tick_at = summary, now
        return summary

    async def _write_workers(self) -> None:
        """``logs/workers.tsv``: the pipeline's learned worker quality, replaced whole when it changed.

        A view for people and the report, rebuilt from the checkpoint every tick, so it
        is written atomically (temporary file, rename) and never journalled.
        """
        rows = list(self.spec.workers(self.state.state))
        if not rows:
            return
        data = encode_records(tuple(rows[0]), [dict(zip(rows[0], rows[0], strict=True)), *rows])
        if data == self._workers_written:
            return
        path = self.settings.pipeline.logs_folder / "workers.tsv"
        try:
            await asyncio.to_thread(_replace_file, path, data)
        except OSError as exc:
            log.warning("could not write %s: %s", path, exc)
            return
        self._workers_written = data

    def _decide_all(
        self, batches: Mapping[str, tuple[CursorBatch, Batch]], now: datetime
    ) -> tuple[dict[str, Decision], set[str]]:
        """Every observer's decision, in order; a failing handler is left out and the others decide again."""
        failed: set[str] = set()
        while True:
            # Refused effects and photo facts go to every handler (even one with nothing new) until one
            # acknowledges them.
            ctx = Context(self.settings.config, self.settings.pools(), now, dict(self.state.refused),
                          outages=tuple(self.state.outages), facts=dict(self.state.facts))
            decisions: dict[str, Decision] = {}
            for observer in self.observers:
                if observer.key not in batches or observer.key in failed:
                    continue
                batch = batches[observer.key][1]
                if not batch.assignments and not ctx.refused and not ctx.facts:
                    decisions[observer.key] = Decision()
                    continue
                try:
                    decisions[observer.key] = observer.handler(self.state.state, batch, ctx)
                except Exception:
                    self._pool_log(observer).exception(
                        "%s pool %s: handler failed on %d assignments; they will be retried",
                        observer.pool, observer.pool_id, len(batch.assignments),
                    )
                    failed.add(observer.key)
                    self._restore()
                    break
            else:
                for decision in decisions.values():
                    for key in decision.acknowledged:
                        self.state.refused.pop(key, None)
                        self.state.facts.pop(key, None)
                return decisions, failed

    def _restore(self) -> None:
        """Put the pipeline state back as the last checkpoint has it (a handler failed half-way)."""
        saved = self.checkpoints.restore()
        if not isinstance(saved, EngineState):
            raise StateError("the last checkpoint does not hold engine state")  # pragma: no cover
        self.state.state = saved.state

    async def _log_spend(self, now: datetime) -> None:
        """Append the money totals to ``logs/spend.tsv`` when they (or the held count) changed.

        The totals are the checkpointed ones, so the series never goes back after a
        restart. It is a log for charts: a failure to write it is reported, not fatal.
        """
        stats = self.state.stats
        key = (stats.spent, len(self.held))
        if self.spend_log is None or key == self._spend_logged:
            return
        limit = self.settings.pipeline.max_spend
        row: dict[str, object] = {
            "date_time": f"{now:%Y-%m-%d %H:%M:%S}",
            "rewards": stats.reward_money,
            "bonuses": stats.bonus_money,
            "spent": stats.spent,
            **{f"{name}_rewards": stats.pool(name).rewards for name in self.pool_names},
            "bonuses_paid": stats.bonuses_paid,
            "max_spend": "" if limit is None else limit,
            "held": len(self.held),
        }
        try:
            await asyncio.to_thread(self.spend_log.append, [row])
        except TableError as exc:
            log.error("%s", exc)
            return
        self._spend_logged = key

    def _count_fetched(self, observer: Observer[C, S], batch: Batch) -> None:
        """Per-pool fetch counts; rewards of pools the pipeline does not review count as they are read."""
        pool = self.state.stats.pool(observer.pool)
        pool.fetched += len(batch.assignments)
        if observer.pool in self.reviewed or observer.event != "accepted":
            return  # a reviewed pool's rewards count when its accept is done
        for a in batch.assignments:
            if a.reward:
                pool.rewards += a.reward
                self.state.stats.reward_money += a.reward

    def _warn_before_auto_accept(self, now: datetime) -> None:
        if not self.auto_accept:
            return
        warning = timedelta(hours=self.settings.pipeline.auto_accept_warning_hours)
        for pool in self.reviewed:
            reviews = [r for r in self.state.reviews.values() if r.pool == pool]
            unwarned = [r for r in reviews if not r.warned]
            for line in review_rules.due_warnings(reviews, self.auto_accept, warning, now):
                pool_logger(pool, self.settings.pools()[pool]).warning("%s", line)
            for review in unwarned:
                if review.warned:  # marked by the warning: found by a walk, so say it changed
                    self.state.reviews.touch(review.assignment_id)

    async def probe_forever(self, interval_s: float) -> None:
        """Probe the photo store whenever no probe ran for ``interval_s`` (a background task).

        A tick can wait minutes on effects that a stalled store holds up; the probe at
        the start of each tick alone would then never see the stall. Windows and
        reports are the same as the tick's own probe (it is the same code). While
        ticks come at least every ``interval_s``, their probes are enough and this
        one waits.
        """
        if self.probe is None:
            return
        while True:
            # A probe of the tick's own counts: the background one runs only when none ran for
            # interval_s (a tick held up, or ticks further apart), so a store is not probed twice
            # a period for nothing.
            if self._probe_lock.locked():  # a tick's probe is under way: it counts, look again once it ends
                async with self._probe_lock:
                    pass
                continue
            since = self.monotonic() - self._probed_at if self._probed_at is not None else 0.0
            if since < interval_s:
                await asyncio.sleep(interval_s - since)
                continue
            try:
                await self._probe_store(self.clock())
            except Exception:  # the probe turns store errors into results; anything else must not end the daemon
                log.exception("the photo store probe failed")

    @property
    def store_out(self) -> bool:
        """True while an outage window of the photo store is open."""
        return bool(self.state.outages) and self.state.outages[-1].end is None

    async def _probe_store(self, now: datetime) -> int:
        """Probe the photo store and keep its outage windows; 1 when an outage is reported now, else 0.

        An open window is logged once (ERROR, error.log, the page's errors) per
        window start by this process; its close gets a WARNING.
        """
        if self.probe is None:
            return 0
        async with self._probe_lock:
            try:
                return await self._probe_once(now)
            finally:
                self._probed_at = self.monotonic()

    async def _probe_once(self, now: datetime) -> int:
        assert self.probe is not None  # checked by the caller
        result = await self.probe.check(now)
        self.last_probe = result
        change = record_probe(self.state.outages, self.state.probe_ok_at, result)
        self.state.outages, self.state.probe_ok_at = change.outages, change.ok_at
        if change.closed is not None:
            self._outage_reported = None
            log.warning("photo store: links serve again since %s (they did not from %s: %s)",
                        f"{result.at:%Y-%m-%d %H:%M:%S}", f"{change.closed.start:%Y-%m-%d %H:%M:%S}",
                        change.closed.detail)
        current = self.state.outages[-1] if self.state.outages and self.state.outages[-1].end is None else None
        if current is None or current.start == self._outage_reported:
            return 0
        self._outage_reported = current.start
        text = (f"photo store: links do not serve since {current.start:%Y-%m-%d %H:%M:%S}: {current.detail}; "
                f"negative answers from this window will be voided and asked again")
        log.error("%s", text)
        self._error(now, "files", "photo store outage", text)
        return 1

    def _error(self, now: datetime, pool: str, kind: str, text: str) -> None:
        self.state.stats.pool(pool).errors += 1
        self.recent_errors.append(Event(now, pool, kind, text))

    def _due_observers(self) -> list[Observer[C, S]]:
        """The observers to search this tick: every pool the pipeline waits on, the others now and then.

        A pool whose last search brought nothing rests one tick. Skipping a search
        loses nothing: the cursor stays where it is and the next search returns
        what came meanwhile. It only saves requests (and Toloka's quota), at the
        price of at most one period before new work is seen.
        """
        every = self.state.stats.ticks % IDLE_SEARCH_TICKS == 0
        state = self.state.state
        due = []
        for observer in self.observers:
            if observer.key in self._quiet:  # its last search brought nothing: it rests one tick
                self._quiet.discard(observer.key)
            elif every or self.spec.expects(state, observer.pool):
                due.append(observer)
        return due

    async def _fetch(self, observer: Observer[C, S], now: datetime) -> tuple[CursorBatch, Batch]:
        cursor_batch = await self.cursors[observer.key].fetch(now)
        assignments = tuple(event.assignment for event in cursor_batch.events)
        skills: dict[str, float] = {}
        if observer.skill_id and assignments:
            skills = await self.skills.values(observer.skill_id)
        return cursor_batch, Batch(observer.pool, observer.pool_id, observer.event, assignments, skills)

    # -- effects ----------------------------------------------------------------------

    async def execute_pending(self) -> tuple[int, int]:
        """Run every pending chain; returns (tasks created, chains failed).

        Tasks an earlier try had created are found, not created again, and are not
        in the first count; the next tick line shows both (resume's too).
        """
        self.held = []
        self.held_for_store = []
        stuck, (created, existed), failures = await self._resend_batches()
        chains: dict[str, list[Action]] = {}
        for step in self.journal.pending():
            if step.chain not in self.parked and step.chain not in stuck and not isinstance(step.action, SendBatch):
                chains.setdefault(step.chain, []).append(step.action)

        done_marks: list[str] = []
        learned_marks: dict[str, dict[str, str]] = {}

        async def chain_end(chain: str, result: ChainResult) -> None:
            nonlocal created, existed, failures
            tried = [a.key for a in result.done if isinstance(a, StorePhoto)]
            if result.error is not None:
                tried.append(result.error.action.key)
            self.never_sent.difference_update(tried)
            done_marks.extend(a.key for a in result.done)
            for name, told in _told(result):
                for key, text in told.items():
                    learned_marks.setdefault(key, {})[name] = text
            fresh, found = self._chain_done(result)
            created, existed = created + fresh, existed + found
            if result.error is not None:
                failures += 1
                self._chain_stopped(chain, result.error)

        if chains:
            await self.executor.run_chains(chains, chain_end, gate=self._within_budget, batching=self)
        if done_marks:
            # One journal write (and fsync) for every chain of the run. A crash before it replays
            # those chains: every effect is idempotent, and the tables' rows are written already.
            await asyncio.to_thread(self.journal.mark_done, done_marks, learned_marks)
        if self.held_for_store:
            log.warning("photo store outage: %d task creations wait until photo links serve again",
                        len(self.held_for_store))
        self._tasks_unshown = (self._tasks_unshown[0] + created, self._tasks_unshown[1] + existed)
        if self.held:
            log.warning(
                "SPENDING LIMIT: %s spent of [Pipeline] max_spend %s; %d paid effects (%d task creations, "
                "%d bonuses) are held in the journal. Raise max_spend in %s to go on (read again every tick).",
                self.state.stats.spent, self.settings.pipeline.max_spend, len(self.held),
                sum(isinstance(a, CreateTasks) for a in self.held), sum(isinstance(a, PayBonus) for a in self.held),
                self.settings.source,
            )
        return created, failures

    def _chain_done(self, result: ChainResult) -> tuple[int, int]:
        """Count what a chain did; returns the tasks it created and those it found created by an earlier try."""
        created = existed = 0
        if not result.done:
            return created, existed
        for action in result.done:
            if isinstance(action, CreateTasks):
                if action.key in result.existed:
                    existed += len(action.tasks)
                else:
                    created += len(action.tasks)
        self._learn(result)
        return created, existed

    def _learn(self, result: ChainResult) -> None:
        """Count done actions, keep what they told the handlers: a live chain's, or the journal's after a restart."""
        self._count(result.done, result.overtaken)
        self.state.refused.update(result.refused)
        self._keep_facts(result.facts)

    def _chain_stopped(self, chain: str, error: ActionFailed) -> None:
        """Report a chain stopped by ``error``; a permanent failure parks it until the next start."""
        self._in_flight.pop(error.action.key, None)
        kind = "held for a person; tried again at the next start" if error.permanent else "will be retried"
        if error.permanent:
            self.parked[chain] = str(error)
        log.error("chain %s stopped (%s): %s", chain, kind, error)
        self._error(self.clock(), self.pool_acted_on(error.action), f"effect {kind}", str(error))

    # -- batches (the executor's Batching protocol) --------------------------------------

    def untried(self, action: Action) -> bool:
        """Did this process stage ``action`` and never try it? (Only those may join a new batch.)"""
        return action.key in self.never_sent

    async def sending(self, planned: Planned) -> None:
        """A batch of several is journalled (fsync'ed) before it goes out; its members never join another."""
        for member in planned.batch.members:
            self.never_sent.discard(member.key)
        if planned.recorded:
            await asyncio.to_thread(self.journal.record, [Step(BATCH_CHAIN, planned.batch)])

    async def settled(self, batch: SendBatch, done: Sequence[Action]) -> None:
        """Toloka answered ``batch``: its done members and the batch itself are done, in one journal write."""
        await asyncio.to_thread(self.journal.mark_done, [*(a.key for a in done), batch.key])

    async def _resend_batches(self) -> tuple[set[str], tuple[int, int], int]:
        """Send every journalled batch again, exactly as it was (same members, same ``operation_id``).

        Toloka recognises a batch that got through and creates nothing twice.
        Returns the chains that must wait (their batch got no answer), the tasks
        created and found created, and the batches that failed.
        """
        stuck: set[str] = set()
        created = existed = failures = 0
        for step in self.journal.pending():
            if not isinstance(step.action, SendBatch) or step.chain in self.parked:
                continue
            done, found, error = await self._resend(step.action)
            for action in done:
                if isinstance(action, CreateTasks):
                    if found:
                        existed += len(action.tasks)
                    else:
                        created += len(action.tasks)
            if error is not None:
                stuck.update(self._chains_of(step.action))
                failures += 1
                log.error("batch %s stopped (will be retried): %s", step.action.operation_id, error)
                self._error(self.clock(), self.pool_acted_on(step.action), "effect will be retried", error)
        return stuck, (created, existed), failures

    async def _resend(self, batch: SendBatch) -> tuple[list[Action], bool, str | None]:
        """Send a journalled batch again; its done members are counted and marked done here.

        Returns the done members, whether Toloka had them from the earlier try, and the error if it got no answer.
        """
        outcomes, answered = await self.executor.send_batch(batch)
        done: list[Action] = [m for m in batch.members if not isinstance(outcomes[m.key], ActionFailed)]
        found = any(outcomes[m.key] == EXISTED for m in done)
        if answered:
            await self.settled(batch, done)
            self._count(done, {})
        errors = [str(o) for o in outcomes.values() if isinstance(o, ActionFailed)]
        for member in batch.members:  # a refused member is parked with its chain, as when it ran alone
            outcome = outcomes[member.key]
            if answered and isinstance(outcome, ActionFailed) and outcome.permanent:
                for chain in self._chains_of(batch, member.key):
                    self.parked[chain] = str(outcome)
        return done, found, (errors[0] if errors and not answered else None)

    def _chains_of(self, batch: SendBatch, only: str | None = None) -> list[str]:
        """The chains whose pending steps include a member of ``batch`` (or only the member ``only``)."""
        keys = {m.key for m in batch.members} if only is None else {only}
        return [step.chain for step in self.journal.pending() if step.key in keys]

    def _keep_facts(self, facts: Mapping[str, str]) -> None:
        """Keep stored photos' facts for the handlers, at most ``MAX_FACTS`` (the oldest unread ones go)."""
        if not facts:
            return
        kept = self.state.facts
        kept.update(facts)
        dropped = 0
        while len(kept) > MAX_FACTS:
            del kept[next(iter(kept))]
            dropped += 1
        if dropped:
            log.warning("photo facts: %d left unread were dropped (at most %d are kept); those photos go "
                        "without automatic checks", dropped, MAX_FACTS)

    def pool_acted_on(self, action: Action | SendBatch) -> str:
        """The pool an action acts on ("files" for photo copies and tables).

        Tasks belong to the pool they are created in; accepts, rejects, bonuses and
        attachment downloads act on the reviewed pool of the assignment.
        """
        if isinstance(action, SendBatch):
            return self.pool_acted_on(action.members[0])
        if isinstance(action, (CreateTasks, RaiseOverlap, RestrictWorker)):
            return next((name for name, pid in self.settings.pools().items() if pid == action.pool_id), "files")
        if isinstance(action, (SetStatus, PayBonus, StorePhoto)):
            review = self.state.reviews.get(getattr(action, "assignment_id", ""))
            if review is not None:
                return review.pool
            return next((name for name in self.pool_names if name in self.reviewed), "files")
        return "files"

    async def _reload_max_spend(self) -> None:
        """While effects are held, re-read ``[Pipeline] max_spend``: raising it in the file resumes them.

        Only this one key is re-read; any other change still needs a restart.
        """
        if not self.held:
            return
        current = self.settings.pipeline.max_spend
        try:
            limit = await asyncio.to_thread(read_max_spend, self.settings.source)
        except ConfigError as exc:
            log.error("%s; keeping max_spend %s", exc, current)
            return
        if limit != current:
            self.settings = dataclasses.replace(
                self.settings, pipeline=dataclasses.replace(self.settings.pipeline, max_spend=limit)
            )
            log.warning("[Pipeline] max_spend changed from %s to %s in %s", current, limit or "no limit",
                        self.settings.source)

    def _within_budget(self, action: Action) -> bool:
        """May this action run under ``[Pipeline] max_spend``? (Called on the loop, just before it runs.)

        While the photo store is out (an open outage window), no task is created
        and no overlap raised: checkers would see links that do not open.

        New tasks are created only while spending is below the limit; a bonus is
        paid only if it keeps spending within it. Accepts and rejects always run:
        the work is done and owed (Toloka would accept it by itself anyway).
        A held action stops its chain; it stays pending in the journal.
        """
        if self.store_out and isinstance(action, (CreateTasks, RaiseOverlap)):
            # Checkers would be shown links that do not open: the tasks wait for the store.
            self.held_for_store.append(action)
            return False
        limit = self.settings.pipeline.max_spend
        if limit is None:
            return True
        committed = self.state.stats.spent + sum(self._in_flight.values(), Decimal(0))
        if isinstance(action, SetStatus):
            if action.status == "ACCEPTED":  # never held, but its reward counts for what follows
                review = self.state.reviews.get(action.assignment_id)
                self._in_flight[action.key] = review.reward if review else Decimal(0)
            return True
        if isinstance(action, (CreateTasks, RaiseOverlap)):  # both buy answers
            allowed = committed < limit
        elif isinstance(action, PayBonus):
            allowed = committed + action.amount <= limit
            if allowed:
                self._in_flight[action.key] = action.amount
        else:
            return True
        if not allowed:
            self.held.append(action)
        return allowed

    @property
    def over_budget(self) -> bool:
        """True when spending has reached ``[Pipeline] max_spend`` or effects are held by it."""
        limit = self.settings.pipeline.max_spend
        return limit is not None and (bool(self.held) or self.state.stats.spent >= limit)

    def _count(self, done: Sequence[Action], overtaken: Mapping[str, str]) -> None:
        """Count done actions: statuses and the rewards they release, bonuses, decision-log rows."""
        stats = self.state.stats
        now = self.clock()
        for action in done:
            self._in_flight.pop(action.key, None)
            if isinstance(action, SetStatus):
                review = self.state.reviews.pop(action.assignment_id, None)
                final = overtaken.get(action.key, action.status)
                if final == "ACCEPTED":
                    reward = review.reward if review else Decimal(0)
                    stats.accepted += 1
                    stats.reward_money += reward
                    stats.pool(review.pool if review else self.pool_acted_on(action)).rewards += reward
                else:
                    stats.rejected += 1
                if action.key in overtaken and action.if_overtaken is not None:
                    self._count_decisions(stats, action.if_overtaken, now)
            elif isinstance(action, PayBonus):
                stats.bonuses_paid += 1
                stats.bonus_money += action.amount
            elif isinstance(action, CreateTasks):
                # Found ones count too: the try that created them died before counting them.
                stats.tasks_created += len(action.tasks)
            elif isinstance(action, AppendRows):
                self._count_decisions(stats, action, now)

    def _count_decisions(self, stats: Stats, action: AppendRows, now: datetime) -> None:
        """Rows of the decision log: per-pool event counts, recent decisions, funnel entries (once per unit)."""
        spec_log = self.spec.decision_log
        if spec_log is None or action.table != spec_log.table:
            return
        for row in action.rows:
            pool = str(row.get(spec_log.pool_column, ""))
            event = str(row.get(spec_log.event_column, ""))
            subject = str(row.get(spec_log.subject_column, ""))
            label = str(row.get(spec_log.label_column, "")) if spec_log.label_column else ""
            comment = str(row.get(spec_log.comment_column, "")) if spec_log.comment_column else ""
            decisions = stats.pool(pool).decisions
            decisions[event] = decisions.get(event, 0) + 1
            self.recent_decisions.append(Event(now, pool, event, f"{subject} {label}".strip(), comment))
        for stage_name, _subject in funnel_entries(self.spec.funnel, spec_log, action.rows):
            stats.funnel[stage_name] = stats.funnel.get(stage_name, 0) + 1

    async def checkpoint(self) -> int:
        """Save cursors, pipeline state and the journal snapshot together; then compact the journal."""
        self.state.cursors = {key: cursor.state for key, cursor in self.cursors.items()}
        snapshot = self.journal.snapshot()
        self.state.journal = snapshot
        data = self.checkpoints.encode(self.state)  # on the loop: the state must not change meanwhile
        return await asyncio.to_thread(self._write_checkpoint, data, snapshot)

    def _write_checkpoint(self, data: Encoded, snapshot: JournalSnapshot) -> int:
        """Write the checkpoint, then drop the journal lines it covers (blocking: one thread hop for both)."""
        size = self.checkpoints.write(data)
        self.journal.compact(snapshot)
        return size

    # -- stopping -------------------------------------------------------------------

    async def pools_closed(self) -> bool:
        """True when every pool is closed (or archived) and nothing is left to do."""
        for pool_id in dict.fromkeys(self.settings.pools().values()):
            pool = await self.client.get_pool(pool_id)
            self.pool_status[pool_id] = pool.status or "?"
            if pool.status == "OPEN":
                return False
        return not self.journal.pending() and not self.spec.in_progress(self.state.state)

    @property
    def in_progress(self) -> int:
        """Units of work the pipeline has not decided yet."""
        return self.spec.in_progress(self.state.state)

    # -- logging ----------------------------------------------------------------------

    def _pool_log(self, observer: Observer[Any, Any]) -> logging.Logger:
        return pool_logger(observer.pool, observer.pool_id)

    @staticmethod
    def _emit(logger: logging.Logger, decision: Decision) -> None:
        for note in decision.notes:
            logger.log(note.level, "%s", note.message)
