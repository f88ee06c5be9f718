"""The tick loop: fetch new events, decide, journal, checkpoint, execute.

One tick, in this order (the order is what makes a kill -9 harmless):

1. every observer fetches its new events concurrently (I/O only; a failing
   pool is logged with its id and skipped this tick, its cursor stays put);
2. the handlers decide, one after another, with no await in between: they
   change the ledger and return chains of actions;
3. the actions are journalled as pending (fsync), the cursors move, and the
   whole state is checkpointed atomically;
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
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.actions import Action, CreateTasks, PayBonus, SetStatus, Step
from engine.checkpoint import CheckpointStore
from engine.config import Settings
from engine.cursor import AssignmentCursor, CursorBatch, CursorState
from engine.errors import PipelineError, StateError
from engine.executor import ActionFailed, Executor
from engine.journal import Journal, JournalSnapshot
from engine.logs import pool_logger
from handlers import pedestrian, quality, relevance, visit
from handlers.base import Outcome
from handlers.state import Ledger
from toloka_client.client import TolokaClient
from toloka_client.errors import TolokaError

log = logging.getLogger("pipeline")

STATE_VERSION = 1
Clock = Callable[[], datetime]


@dataclass
class Stats:
    """Running totals kept in the checkpoint (for the tick line, the status page, the demo)."""

    fetched: int = 0
    decided: int = 0
    accepted: int = 0
    rejected: int = 0
    tasks_created: int = 0
    bonuses_paid: int = 0
    bonus_money: Decimal = Decimal(0)
    errors: int = 0
    ticks: int = 0


@dataclass
class DaemonState:
    """Everything the daemon must remember across a restart: plain data only."""

    version: int = STATE_VERSION
    cursors: dict[str, CursorState] = field(default_factory=dict)
    ledger: Ledger = field(default_factory=Ledger)
    journal: JournalSnapshot = field(default_factory=JournalSnapshot)
    stats: Stats = field(default_factory=Stats)


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

    def line(self, now: datetime) -> str:
        return (
            f"{now:%Y-%m-%d %H:%M:%S} tick: fetched {self.fetched}, decided {self.decided}, "
            f"created {self.created} tasks, errors {self.errors}, pending effects {self.pending}, "
            f"{self.duration_s:.2f} s"
        )


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
        pending = len(self.journal.pending())
        if pending:
            log.info("resuming %d pending effects from the journal", pending)
            await self.execute_pending()
            await self.checkpoint()
        return pending

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
                continue
            batch, skills = result
            outcome = self._decide(observer, batch, skills, now)
            if outcome is None:
                summary.errors += 1
                continue
            summary.fetched += len(batch.events)
            summary.decided += outcome.decided
            steps += [Step(chain, action) for chain, actions in outcome.chains.items() for action in actions]
            moved[observer.name] = batch.state
        self._emit(
            pool_logger("pedestrian", self.settings.pedestrian.pool_id),
            pedestrian.warn_before_auto_accept(
                self.state.ledger,
                self.auto_accept_period,
                timedelta(hours=self.settings.pipeline.auto_accept_warning_hours),
                now,
            ),
        )
        await asyncio.to_thread(self.journal.record, steps)
        for name, cursor_state in moved.items():
            self.cursors[name].commit(cursor_state)
        await self.checkpoint()
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
        summary.duration_s = time.monotonic() - started
        return summary

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
            chains.setdefault(step.chain, []).append(step.action)
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
                failures += 1
                kind = "held for a person" if error.permanent else "will be retried"
                log.error("chain %s stopped (%s): %s", chain, kind, error)

        await self.executor.run_chains(chains, chain_end)
        self.state.stats.tasks_created += created
        return created, failures

    def _count(self, done: Sequence[Action]) -> None:
        stats = self.state.stats
        for action in done:
            if isinstance(action, SetStatus):
                if action.status == "ACCEPTED":
                    stats.accepted += 1
                else:
                    stats.rejected += 1
            elif isinstance(action, PayBonus):
                stats.bonuses_paid += 1
                stats.bonus_money += action.amount

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
    return state
