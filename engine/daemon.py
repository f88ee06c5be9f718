"""The tick loop: fetch new events, decide, journal, checkpoint, execute.

One tick, in this order (the order is what makes a kill -9 harmless):

1. every observer fetches its new events concurrently (I/O only; a failing
   pool is logged with its id and skipped this tick, its cursor stays put);
2. the handlers decide, one after another, with no await in between: they
   change the ledger and return chains of actions;
3. the actions become pending (in memory), the cursors move, and the whole
   state is checkpointed atomically: effects are durable together with the
   decisions that made them;
4. the executor runs every pending chain; what succeeded is marked done and
   the state checkpointed again, which drops the done entries.

A crash before 3 re-delivers the events, and the deterministic handlers decide
the same actions with the same keys (already journalled ones are not recorded
twice); a crash after 3 leaves pending actions that the next start runs again,
idempotently.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import logging
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.actions import Action, AppendRows, CreateTasks, PayBonus, SetStatus, Step, StorePhoto
from engine.checkpoint import CheckpointStore
from engine.config import Settings, read_max_spend
from engine.cursor import AssignmentCursor, CursorBatch, CursorState
from common.errors import ConfigError, PipelineError, StateError
from engine.executor import ActionFailed, Executor
from engine.journal import Journal, JournalSnapshot
from engine.logs import pool_logger
from handlers import pedestrian, quality, relevance, visit
from handlers.base import Outcome
from handlers.state import Ledger
from tables.tsv import TableError, TsvTable
from toloka_client.client import TolokaClient
from toloka_client.errors import TolokaError

log = logging.getLogger("pipeline")

STATE_VERSION = 1
Clock = Callable[[], datetime]
# logs/spend.tsv: running money totals, a row after each tick that changed them (for report.py).
SPEND_COLUMNS = (
    "date_time", "rewards", "bonuses", "spent", "pedestrian_rewards", "visit_rewards", "quality_rewards",
    "relevance_rewards", "bonuses_paid", "max_spend", "held",
)


# Funnel stages of a pedestrian assignment, by the decision events that enter them.
FUNNEL = (
    ("pedestrian", "submit"),
    ("visit", "to visit validation"),
    ("quality", "to quality validation"),
    ("relevance", "to relevance validation"),
    ("accepted", "ACCEPT assignment"),
)


def funnel_stage(handler: str, event: str) -> str | None:
    """The funnel stage a decision row enters (None: not a stage entry).

    ``accepted`` counts only assignments accepted after the relevance check; an
    organization found not to exist is accepted by the visit handler and is not
    a step further down the funnel.
    """
    if event == "ACCEPT assignment":
        return "accepted" if handler == "relevance" else None
    return next((stage for stage, entry in FUNNEL if entry == event), None)


@dataclass
class PoolStats:
    """Running totals of one pool (by handler name), kept in the checkpoint."""

    fetched: int = 0
    errors: int = 0
    rewards: Decimal = Decimal(0)  # rewards of this pool's assignments that were accepted
    decisions: dict[str, int] = field(default_factory=dict)  # decision event -> rows written


@dataclass
class Stats:
    """Running totals kept in the checkpoint (for the tick line, the status page, the demo).

    Money is counted as it is spent: a verification assignment's reward when the
    daemon reads it as accepted, a pedestrian assignment's reward when its accept
    is done, a bonus when it is paid. The counts move together with the journal's
    done marks and the cursors, so a restart neither loses nor doubles them (see
    :meth:`Daemon.recount_after_restart`).
    """

    fetched: int = 0
    decided: int = 0
    accepted: int = 0
    rejected: int = 0
    tasks_created: int = 0
    bonuses_paid: int = 0
    bonus_money: Decimal = Decimal(0)
    errors: int = 0
    ticks: int = 0
    reward_money: Decimal = Decimal(0)
    pools: dict[str, PoolStats] = field(default_factory=dict)
    funnel: dict[str, int] = field(default_factory=dict)  # stage -> pedestrian assignments that entered it

    @property
    def spent(self) -> Decimal:
        """Rewards plus bonuses paid."""
        return self.reward_money + self.bonus_money

    def pool(self, name: str) -> PoolStats:
        return self.pools.setdefault(name, PoolStats())


@dataclass
class DaemonState:
    """Everything the daemon must remember across a restart: plain data only."""

    version: int = STATE_VERSION
    cursors: dict[str, CursorState] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    journal: JournalSnapshot = field(default_factory=JournalSnapshot)
    stats: Stats = field(default_factory=Stats)
    # Rewards of pedestrian assignments under review, counted as spent once accepted.
    rewards_owed: dict[str, Decimal] = field(default_factory=dict)


@dataclass(frozen=True)
class Observer:
    """One pool and the assignment event its handler reads."""

    name: str  # handler name: pedestrian, visit, quality, relevance
    pool_id: str
    kind: str  # submitted or accepted
    skill_id: str | None = None


@dataclass
class TickSummary:
    """What one tick did: the one line printed per tick."""

    fetched: int = 0
    decided: int = 0
    created: int = 0
    errors: int = 0
    pending: int = 0
    duration_s: float = 0.0
    held: int = 0  # effects held back by [Pipeline] max_spend

    def line(self, now: datetime) -> str:
        held = f", HELD {self.held} paid effects: max_spend reached" if self.held else ""
        return (
            f"{now:%Y-%m-%d %H:%M:%S} tick: fetched {self.fetched}, decided {self.decided}, "
            f"created {self.created} tasks, errors {self.errors}, pending effects {self.pending}, "
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


def pool_acted_on(action: Action, pools: Mapping[str, str]) -> str:
    """The handler name of the pool an action acts on ("files" for photos and tables).

    Tasks belong to the pool they are created in; accepts, rejects, bonuses and
    attachment downloads act on the pedestrian pool.
    """
    if isinstance(action, CreateTasks):
        return next((name for name, pool_id in pools.items() if pool_id == action.pool_id), "files")
    if isinstance(action, (SetStatus, PayBonus, StorePhoto)):
        return "pedestrian"
    return "files"


def observers_of(settings: Settings) -> list[Observer]:
    """The four observers, in flow order."""
    return [
        Observer("pedestrian", settings.pedestrian.pool_id, settings.pedestrian.event),
        Observer("visit", settings.visit.pool_id, settings.visit.event, settings.visit.skill_id),
        Observer("quality", settings.quality.pool_id, settings.quality.event, settings.quality.skill_id),
        Observer("relevance", settings.relevance.pool_id, settings.relevance.event, settings.relevance.skill_id),
    ]


class Daemon:
    """Owns the state and runs ticks; the resources (client, executor, journal) are given."""

    def __init__(
        self,
        settings: Settings,
        client: TolokaClient,
        executor: Executor,
        checkpoints: CheckpointStore,
        journal: Journal,
        state: DaemonState,
        *,
        clock: Clock,
        skill_ttl_s: float = 300.0,
        spend_log: TsvTable | None = None,
    ) -> None:
        self.settings = settings
        self.client = client
        self.executor = executor
        self.checkpoints = checkpoints
        self.journal = journal
        self.state = state
        self.clock = clock
        self.observers = observers_of(settings)
        lag = timedelta(seconds=settings.toloka.cursor_lag_s)
        self.cursors = {
            o.name: AssignmentCursor(client, o.pool_id, o.kind, state=state.cursors.get(o.name), lag=lag)
            for o in self.observers
        }
        self._skills: dict[str, tuple[float, dict[str, float]]] = {}
        self._skill_ttl_s = skill_ttl_s
        self.auto_accept_period: timedelta | None = None
        self.pool_status: dict[str, str] = {}
        # What the status page shows besides the checkpointed Stats (memory only).
        self.last_tick: TickSummary | None = None
        self.last_tick_at: datetime | None = None
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

    # -- start-up -------------------------------------------------------------------

    async def check_pools(self) -> None:
        """Check the token and every pool against the API (clear errors, before any work)."""
        requester = await self.client.get_requester()
        log.info("token accepted for requester %s", requester.id)
        for observer in self.observers:
            try:
                pool = await self.client.get_pool(observer.pool_id)
            except TolokaError as exc:
                raise PipelineError(f"{observer.name} pool {observer.pool_id}: {exc}") from None
            self.pool_status[observer.pool_id] = pool.status or "?"
            if observer.name == "pedestrian" and pool.auto_accept_period_day:
                self.auto_accept_period = timedelta(days=pool.auto_accept_period_day)
            log.info("%s pool %s is %s", observer.name, observer.pool_id, pool.status)

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
            self._count(done)
        return len(done)

    # -- one tick ---------------------------------------------------------------------

    async def tick(self) -> TickSummary:
        started = time.monotonic()
        now = self.clock()
        summary = TickSummary()
        fetched = await asyncio.gather(*(self._fetch(o, now) for o in self.observers), return_exceptions=True)
        steps: list[Step] = []
        moved: dict[str, CursorState] = {}
        for observer, result in zip(self.observers, fetched):
            if isinstance(result, BaseException):
                if not isinstance(result, Exception):
                    raise result
                summary.errors += 1
                self._pool_log(observer).error("%s pool %s: fetch failed: %s", observer.name, observer.pool_id, result)
                self._error(now, observer.name, "fetch failed", str(result))
                continue
            batch, skills = result
            outcome = self._decide(observer, batch, skills, now)
            if outcome is None:
                summary.errors += 1
                self._error(now, observer.name, "handler failed", f"{len(batch.events)} assignments will be retried")
                continue
            summary.fetched += len(batch.events)
            summary.decided += outcome.decided
            steps += [Step(chain, action) for chain, actions in outcome.chains.items() for action in actions]
            moved[observer.name] = batch.state
            self._count_fetched(observer, batch)
        self._emit(
            pool_logger("pedestrian", self.settings.pedestrian.pool_id),
            pedestrian.warn_before_auto_accept(
                self.state.ledger,
                self.auto_accept_period,
                timedelta(hours=self.settings.pipeline.auto_accept_warning_hours),
                now,
            ),
        )
        # Pending in memory only: the checkpoint below makes them durable with the decisions (journal.stage).
        self.journal.stage(steps)
        for name, cursor_state in moved.items():
            self.cursors[name].commit(cursor_state)
        await self.checkpoint()
        await self._reload_max_spend()
        created, failures = await self.execute_pending()
        summary.created = created
        summary.errors += failures
        await self.checkpoint()
        stats = self.state.stats
        stats.ticks += 1
        stats.fetched += summary.fetched
        stats.decided += summary.decided
        stats.errors += summary.errors
        summary.pending = len(self.journal.pending())
        summary.held = len(self.held)
        await self._log_spend(now)
        summary.duration_s = time.monotonic() - started
        self.last_tick, self.last_tick_at = summary, now
        return summary

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
            **{f"{name}_rewards": stats.pool(name).rewards for name in ("pedestrian", "visit", "quality", "relevance")},
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

    def _count_fetched(self, observer: Observer, batch: CursorBatch) -> None:
        """Per-pool fetch counts and rewards; runs as the cursor moves, before the checkpoint."""
        pool = self.state.stats.pool(observer.name)
        pool.fetched += len(batch.events)
        for event in batch.events:
            a = event.assignment
            if observer.name == "pedestrian":
                # Owed once accepted; only work the handler took in (not re-deliveries, not held).
                if a.id and a.id in self.state.ledger.works and a.id not in self.state.rewards_owed:
                    self.state.rewards_owed[a.id] = a.reward or Decimal(0)
            elif observer.kind == "accepted" and a.reward:
                pool.rewards += a.reward
                self.state.stats.reward_money += a.reward

    def _error(self, now: datetime, pool: str, kind: str, text: str) -> None:
        self.state.stats.pool(pool).errors += 1
        self.recent_errors.append(Event(now, pool, kind, text))

    async def _fetch(self, observer: Observer, now: datetime) -> tuple[CursorBatch, dict[str, float]]:
        batch = await self.cursors[observer.name].fetch(now)
        skills: dict[str, float] = {}
        if observer.skill_id and batch.events:
            skills = await self._skill_values(observer.skill_id)
        return batch, skills

    async def _skill_values(self, skill_id: str) -> dict[str, float]:
        """Every worker's value of a skill, re-read at most every ``skill_ttl_s``."""
        cached = self._skills.get(skill_id)
        if cached and time.monotonic() - cached[0] < self._skill_ttl_s:
            return cached[1]
        values: dict[str, float] = {}
        async for user_skill in self.client.iter_user_skills(skill_id):
            score = user_skill.exact_value if user_skill.exact_value is not None else user_skill.value
            if user_skill.user_id and score is not None:
                values[user_skill.user_id] = float(score)
        self._skills[skill_id] = (time.monotonic(), values)
        return values

    def _decide(
        self, observer: Observer, batch: CursorBatch, skills: Mapping[str, float], now: datetime
    ) -> Outcome | None:
        """Run one handler on a copy-protected ledger: a handler bug loses nothing."""
        assignments = [event.assignment for event in batch.events]
        if not assignments:
            return Outcome()
        before = copy.deepcopy(self.state.ledger)
        try:
            if observer.name == "pedestrian":
                outcome = pedestrian.handle(self.state.ledger, assignments, self.settings, now)
            else:
                module = {"visit": visit, "quality": quality, "relevance": relevance}[observer.name]
                outcome = module.handle(self.state.ledger, assignments, self.settings, skills, now)
        except Exception:
            self.state.ledger = before  # the events come again next tick
            self._pool_log(observer).exception(
                "%s pool %s: handler failed on %d assignments; they will be retried",
                observer.name, observer.pool_id, len(assignments),
            )
            return None
        self._emit(self._pool_log(observer), outcome)
        return outcome

    # -- effects ----------------------------------------------------------------------

    async def execute_pending(self) -> tuple[int, int]:
        """Run every pending chain; returns (tasks created, chains failed)."""
        chains: dict[str, list[Action]] = {}
        for step in self.journal.pending():
            if step.chain not in self.parked:
                chains.setdefault(step.chain, []).append(step.action)
        self.held = []
        if not chains:
            return 0, 0
        created = 0
        failures = 0

        async def chain_end(chain: str, done: list[Action], error: ActionFailed | None) -> None:
            nonlocal created, failures
            if done:
                await asyncio.to_thread(self.journal.mark_done, [a.key for a in done])
                created += sum(len(a.tasks) for a in done if isinstance(a, CreateTasks))
                self._count(done)
            if error is not None:
                self._in_flight.pop(error.action.key, None)
                failures += 1
                kind = "held for a person; tried again at the next start" if error.permanent else "will be retried"
                if error.permanent:
                    self.parked[chain] = str(error)
                log.error("chain %s stopped (%s): %s", chain, kind, error)
                pool = pool_acted_on(error.action, self.settings.pools())
                self._error(self.clock(), pool, f"effect {kind}", str(error))

        await self.executor.run_chains(chains, chain_end, gate=self._within_budget)
        self.state.stats.tasks_created += created
        if self.held:
            log.warning(
                "SPENDING LIMIT: %s spent of [Pipeline] max_spend %s; %d paid effects (%d task creations, "
                "%d bonuses) are held in the journal. Raise max_spend in %s to go on (read again every tick).",
                self.state.stats.spent, self.settings.pipeline.max_spend, len(self.held),
                sum(isinstance(a, CreateTasks) for a in self.held), sum(isinstance(a, PayBonus) for a in self.held),
                self.settings.source,
            )
        return created, failures

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

        New tasks are created only while spending is below the limit; a bonus is
        paid only if it keeps spending within it. Accepts and rejects always run:
        the work is done and owed (Toloka would accept it by itself anyway).
        A held action stops its chain; it stays pending in the journal.
        """
        limit = self.settings.pipeline.max_spend
        if limit is None:
            return True
        committed = self.state.stats.spent + sum(self._in_flight.values(), Decimal(0))
        if isinstance(action, SetStatus):
            if action.status == "ACCEPTED":  # never held, but its reward counts for what follows
                self._in_flight[action.key] = self.state.rewards_owed.get(action.assignment_id, Decimal(0))
            return True
        if isinstance(action, CreateTasks):
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

    def _count(self, done: Sequence[Action]) -> None:
        """Count done actions: statuses, rewards of accepted pedestrian work, bonuses, decision rows."""
        stats = self.state.stats
        now = self.clock()
        for action in done:
            self._in_flight.pop(action.key, None)
            if isinstance(action, SetStatus):
                reward = self.state.rewards_owed.pop(action.assignment_id, Decimal(0))
                final = self.executor.settled.pop(action.assignment_id, action.status)
                if final == "ACCEPTED":
                    stats.accepted += 1
                    stats.reward_money += reward
                    stats.pool("pedestrian").rewards += reward
                else:
                    stats.rejected += 1
                if final != action.status:  # the platform accepted it first
                    handler = action.context.get("handler", "pedestrian")
                    self._decision(now, handler, "auto-accepted", action.assignment_id, action.context.get("name", ""))
            elif isinstance(action, PayBonus):
                stats.bonuses_paid += 1
                stats.bonus_money += action.amount
            elif isinstance(action, AppendRows) and action.table == "decisions":
                entered: set[str] = set()
                for row in action.rows:
                    handler, event = str(row.get("handler", "")), str(row.get("event", ""))
                    self._decision(now, handler, event, str(row.get("pedestrian_assignment_id", "")),
                                   str(row.get("name", "")), str(row.get("comment", "")))
                    stage = funnel_stage(handler, event)
                    if stage is not None:
                        entered.add(stage)
                for stage in entered:  # one assignment enters a stage once, whatever its groups
                    stats.funnel[stage] = stats.funnel.get(stage, 0) + 1

    def _decision(self, now: datetime, handler: str, event: str, assignment: str, name: str, comment: str = "") -> None:
        decisions = self.state.stats.pool(handler).decisions
        decisions[event] = decisions.get(event, 0) + 1
        self.recent_decisions.append(Event(now, handler, event, f"{assignment} {name}".strip(), comment))

    async def checkpoint(self) -> int:
        """Save cursors, ledger and the journal snapshot together; then compact the journal."""
        self.state.cursors = {name: cursor.state for name, cursor in self.cursors.items()}
        snapshot = self.journal.snapshot()
        self.state.journal = snapshot
        data = self.checkpoints.encode(self.state)  # on the loop: the state must not change meanwhile
        size = await asyncio.to_thread(self.checkpoints.write, data)
        await asyncio.to_thread(self.journal.compact, snapshot)
        return size

    # -- stopping -------------------------------------------------------------------

    async def pools_closed(self) -> bool:
        """True when every pool is closed (or archived) and nothing is left to do."""
        for observer in self.observers:
            pool = await self.client.get_pool(observer.pool_id)
            self.pool_status[observer.pool_id] = pool.status or "?"
            if pool.status == "OPEN":
                return False
        return not self.journal.pending() and not self.state.ledger.works

    # -- logging ----------------------------------------------------------------------

    def _pool_log(self, observer: Observer) -> logging.Logger:
        return pool_logger(observer.name, observer.pool_id)

    @staticmethod
    def _emit(logger: logging.Logger, outcome: Outcome) -> None:
        for note in outcome.notes:
            logger.log(note.level, "%s", note.message)


def load_state(checkpoints: CheckpointStore) -> DaemonState:
    """The saved state, a fresh one on first start; a foreign or newer state stops start-up."""
    state: Any = checkpoints.load()
    if state is None:
        return DaemonState()
    if not isinstance(state, DaemonState):
        raise StateError(f"checkpoint {checkpoints.path} does not hold pipeline state; the file was left in place")
    if state.version != STATE_VERSION:
        raise StateError(
            f"checkpoint {checkpoints.path} has state version {state.version}, this daemon reads "
            f"{STATE_VERSION}; the file was left in place"
        )
    _fill_new_fields(state)
    _fill_new_fields(state.stats)
    return state


def _fill_new_fields(obj: Any) -> None:
    """Give a state saved by an older daemon the fields added since, at their defaults."""
    for f in dataclasses.fields(obj):
        if f.name in vars(obj):
            continue
        if f.default_factory is not dataclasses.MISSING:
            setattr(obj, f.name, f.default_factory())
        elif f.default is not dataclasses.MISSING:
            setattr(obj, f.name, f.default)
