"""What a pipeline declares, and what its handlers receive and return.

The engine knows Toloka (cursors, journal, checkpoints, effects, money, status);
a pipeline is a value of :class:`PipelineSpec`: its pools, one observer per
(pool, assignment event) with the pure handler it calls, its INI sections and
their parser, its tables, its decision log and funnel as data, and its gauges.
The engine imports no pipeline: ``pipeline.py`` picks a spec from
``pipelines.REGISTRY`` by ``[Pipeline] definition`` and hands it over.

Handlers are pure: ``handler(state, batch, ctx) -> Decision``. They may change
the pipeline state they are given (and nothing else), never read the clock
(``ctx.now``), the network or the disk, and return actions as plain records.
A handler that raises loses nothing: the engine restores the state from the
last checkpoint and decides the tick again without that observer (see
:mod:`engine.ticker`).
"""

from __future__ import annotations

import configparser
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar

from engine.actions import Action, AppendRows, Step
from engine.intake import IntakeSpec
from engine.pool_specs import PoolExpectation
from engine.toloka_setup import SetupPlan, SetupRequest
from engine.trace import TraceSpec
from toloka_client.records import Assignment

EventKind = Literal["submitted", "accepted", "rejected", "skipped", "expired", "created"]
EVENT_KINDS: tuple[EventKind, ...] = ("submitted", "accepted", "rejected", "skipped", "expired", "created")

C = TypeVar("C")  # the pipeline's typed configuration
S = TypeVar("S")  # the pipeline's picklable state


@dataclass(frozen=True, slots=True)
class Note:
    """A line for the observer's log."""

    level: int
    message: str


@dataclass
class Review:
    """An assignment of a reviewed pool that the daemon took in and will accept or reject.

    Its reward counts as spent when the accept is done; the engine warns once
    (``warned``) before Toloka would accept it by itself. ``label`` names the
    work for a person (e.g. the organization's name and address).
    """

    assignment_id: str
    pool: str
    reward: Decimal
    submitted: datetime
    label: str = ""
    warned: bool = False


@dataclass
class Decision:
    """What one handler call decided.

    Actions come in chains (``chain key -> ordered actions``): the executor runs
    a chain in order and different chains concurrently, so one failing unit of
    work holds up only its own chain. ``reviewing`` lists the submitted
    assignments the handler took in for review; ``decided`` counts final
    decisions, for the tick line; ``acknowledged`` names the refused effects
    (``Context.refused``) and the photo facts (``Context.facts``) the handler
    has taken into account, so the engine forgets them.
    """

    chains: dict[str, list[Action]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    decided: int = 0
    reviewing: list[Review] = field(default_factory=list)
    acknowledged: list[str] = field(default_factory=list)  # keys of ``Context.refused``/``facts`` dealt with

    def add(self, chain: str, *actions: Action) -> None:
        self.chains.setdefault(chain, []).extend(actions)

    @property
    def actions(self) -> list[Action]:
        return [action for chain in self.chains.values() for action in chain]

    def steps(self) -> list[Step]:
        return [Step(chain, action) for chain, actions in self.chains.items() for action in actions]

    def note(self, level: int, message: str) -> None:
        self.notes.append(Note(level, message))

    def info(self, message: str) -> None:
        self.note(logging.INFO, message)

    def warning(self, message: str) -> None:
        self.note(logging.WARNING, message)


@dataclass(frozen=True, slots=True)
class Batch:
    """What one observer fetched this tick."""

    pool: str  # the pool's name in the pipeline (e.g. "visit")
    pool_id: str
    event: str
    assignments: tuple[Assignment, ...]
    skills: Mapping[str, float] = field(default_factory=dict)  # empty unless the observer names a skill


@dataclass(frozen=True)
class Outage:
    """A time when photo links may not have opened for checkers (found by the engine's store probe).

    ``start`` is the last successful probe before the failure (links may have
    failed any time after it); ``end`` is the first successful probe after it,
    None while the outage goes on. Naive UTC. A negative answer given inside a
    window may be a checker who could not see the photo, not a bad photo.
    """

    start: datetime
    end: datetime | None
    detail: str  # why the probe failed (never a link's query string)

    def covers(self, at: datetime) -> bool:
        """Whether ``at`` falls inside the window (an open window has no end yet)."""
        return self.start <= at and (self.end is None or at <= self.end)


@dataclass(frozen=True, slots=True)
class Context(Generic[C]):
    """What a handler may know besides its state and batch."""

    config: C
    pools: Mapping[str, str]  # pool name -> pool id, in flow order
    now: datetime  # naive UTC, the tick's time
    refused: Mapping[str, str] = field(default_factory=dict)  # effects Toloka refused: action key -> reason
    # Photo store outage windows of the last 24 hours (at most 50), oldest first; only the last may be
    # open (end None). Probed this tick, before the handlers decide.
    outages: tuple[Outage, ...] = ()
    # Measurements of photos the executor stored (StorePhoto key "store:<dst_key>" -> engine.photo_facts text),
    # until a handler acknowledges them; a photo stored before a crash has none.
    facts: Mapping[str, str] = field(default_factory=dict)


Handler = Callable[[S, Batch, Context[C]], Decision]


def _no_skill(config: Any) -> str | None:
    return None


@dataclass(frozen=True)
class ObserverSpec(Generic[C, S]):
    """One pool, the assignment event it reads and the handler it calls.

    ``name`` keys the observer's cursor in the checkpoint; it defaults to the
    pool's name, so a pool read once needs none (two observers on one pool need
    distinct names).
    """

    pool: str
    event: Callable[[C], str]
    handler: Handler[S, C]
    skill_id: Callable[[C], str | None] = _no_skill
    name: str = ""

    @property
    def key(self) -> str:
        return self.name or self.pool


@dataclass(frozen=True, slots=True)
class TableSpec:
    """A TSV table the pipeline writes: in the logs or the results folder.

    ``rare``: a table that gets rows only now and then (e.g. work held for a
    person); while it does not exist, the report shows no rows instead of a note.
    ``key``: the columns that identify one fact (never a time or a link, which
    differ when the same fact is decided again); a row whose key is in the file
    already is not appended, so a start from scratch doubles nothing. Empty:
    every row is a new fact.
    """

    folder: Literal["logs", "results"]
    filename: str
    columns: tuple[str, ...]
    rare: bool = False
    key: tuple[str, ...] = ()

    def path(self, logs: Path, results: Path) -> Path:
        """Where the table is, given the configured logs and results folders."""
        return (logs if self.folder == "logs" else results) / self.filename


@dataclass(frozen=True, slots=True)
class DecisionLog:
    """Which table is the decision log, and which of its columns say what.

    Rows appended to it are counted per pool and event (status page, metrics)
    and shown as recent decisions; ``subject_column`` names the unit of work a
    funnel counts (each unit enters a stage once).
    """

    table: str
    pool_column: str
    event_column: str
    subject_column: str
    label_column: str | None = None
    comment_column: str | None = None
    time_column: str = "date_time"
    start_event: str | None = None  # starts a unit's clock (time to decision); None: its first row
    final_events: tuple[str, ...] = ()  # a unit's last row of one of these is its decision
    timeline_events: tuple[str, ...] = ()  # events the report draws over time, in this order


@dataclass(frozen=True, slots=True)
class FunnelStage:
    """A unit of work enters stage ``name`` with a decision-log row of ``event`` (from ``pool``, if given)."""

    name: str
    event: str
    pool: str | None = None

    def entered_by(self, pool: str, event: str) -> bool:
        return event == self.event and (self.pool is None or pool == self.pool)


def funnel_entries(
    funnel: Sequence[FunnelStage], log: DecisionLog, rows: Iterable[Mapping[str, object]]
) -> set[tuple[str, str]]:
    """The (stage, subject) pairs that decision-log ``rows`` enter: each unit enters a stage once.

    The one reading of a row for the status page, /metrics and the report (a
    missing cell is ``""``, every value compared as text), so their funnels agree.
    """
    entered: set[tuple[str, str]] = set()
    for row in rows:
        pool = str(row.get(log.pool_column, ""))
        event = str(row.get(log.event_column, ""))
        subject = str(row.get(log.subject_column, ""))
        for stage in funnel:
            if stage.entered_by(pool, event):
                entered.add((stage.name, subject))
    return entered


@dataclass(frozen=True, slots=True)
class Outcome:
    """A unit whose last final decision-log row is ``event`` (from ``pool``, if given) ended as ``name``.

    ``{pool}`` in ``name`` stands for the row's pool (``"rejected at {pool}"``).
    The first outcome that matches names a row; a row none matches is named
    ``"<event> at <pool>"``.
    """

    name: str
    event: str
    pool: str | None = None

    def matches(self, pool: str, event: str) -> bool:
        return event == self.event and (self.pool is None or pool == self.pool)

    def label(self, pool: str) -> str:
        return self.name.replace("{pool}", pool)


@dataclass(frozen=True, slots=True)
class AnswerLog:
    """The table of individual answers and the aggregate each was counted in (worker agreement)."""

    table: str
    pool_column: str
    worker_column: str
    label_column: str  # the worker's answer
    result_column: str  # the aggregated answer of the task it belongs to


@dataclass(frozen=True, slots=True)
class CountChart:
    """A report chart: how many rows of ``table`` have each value of ``column``.

    ``unique_by``: columns whose combination is counted once (empty: every row).
    ``money_column``: summed exactly and shown under the chart as ``money_label``.
    """

    key: str  # the PNG's file name, without .png
    title: str
    table: str
    column: str
    unique_by: tuple[str, ...] = ()
    unit: str = "rows"  # what a bar counts (the y axis)
    money_column: str | None = None
    money_label: str = "money"


@dataclass(frozen=True)
class V1Checkpoint:
    """What a version-1 checkpoint (the pedestrian-only daemon) held that a pipeline must adopt."""

    ledger: Any
    rewards_owed: Mapping[str, Decimal]
    pending: tuple[Step, ...]
    now: datetime  # when it is adopted (rows the migration writes are stamped with it)


@dataclass(frozen=True)
class Migrated(Generic[S]):
    """A pipeline's reading of a :class:`V1Checkpoint`."""

    state: S
    reviews: dict[str, Review]
    pending: tuple[Step, ...]


def _nothing(state: Any) -> dict[str, Any]:
    return {}


def _zero(state: Any) -> int:
    return 0


def _no_lines(state: Any) -> Sequence[str]:
    return ()


def _no_rows(state: Any) -> Sequence[Mapping[str, object]]:
    return ()


def _always(state: Any, pool: str) -> bool:
    return True


def _nothing_to_prepare(config: Any) -> None:
    return None


@dataclass(frozen=True)
class PipelineSpec(Generic[C, S]):
    """A pipeline, declared. See docs/engine.md for a worked example."""

    name: str
    title: str  # one line for people: what the pipeline does
    sections: Mapping[str, frozenset[str]]  # INI sections and keys it owns (a misspelt key is an error)
    parse_config: Callable[[configparser.ConfigParser], C]  # raises ConfigError(section, key, ...)
    pools: Callable[[C], Mapping[str, str]]  # pool name -> pool id, in flow order
    observers: tuple[ObserverSpec[C, S], ...]  # decided in this order every tick
    new_state: Callable[[], S]
    tables: Callable[[C], Mapping[str, TableSpec]]
    state_packages: tuple[str, ...] = ()  # packages whose classes the pipeline's state pickles
    decision_log: DecisionLog | None = None
    funnel: tuple[FunnelStage, ...] = ()
    # Per pool, numbers for the status page and /metrics (e.g. answers waiting).
    gauges: Callable[[S], Mapping[str, Mapping[str, int]]] = _nothing
    # Units of work not decided yet, and units held for a person (malformed input).
    in_progress: Callable[[S], int] = _zero
    # Whether the pipeline waits on answers from a pool (state, pool name). A pool it waits on
    # nothing from is searched only every IDLE_SEARCH_TICKS ticks (engine/ticker.py): nothing it
    # could send would change a decision, and the cursor picks up what came meanwhile.
    expects: Callable[[S, str], bool] = _always
    held_for_a_person: Callable[[S], int] = _zero
    # How to adopt a checkpoint of the v1 (pedestrian-only) daemon; None: refuse one.
    migrate_v1: Callable[[V1Checkpoint], Migrated[S]] | None = None
    # For the offline report (report.py): how units end, the answers table, extra bar charts.
    outcomes: tuple[Outcome, ...] = ()
    answer_log: AnswerLog | None = None
    report_charts: tuple[CountChart, ...] = ()
    # What each pool and its project must look like (engine/pool_specs.py): ``pipeline.py check`` and
    # start-up compare them with Toloka and refuse a mismatch. None: the pools' projects are not checked.
    expected_pools: Callable[[C], Mapping[str, PoolExpectation]] | None = None
    # Loads what the handlers will need with this configuration (e.g. crowd-kit, seconds when cold); the
    # daemon calls it in a worker thread at start-up, so the first tick that aggregates does not stall,
    # and a configuration that never aggregates with it does not pay for it at every restart.
    # Never at ``--help`` time.
    prepare: Callable[[C], None] = _nothing_to_prepare
    # What a person must see (the status page turns red): e.g. a pool whose negative verdicts surge.
    alarms: Callable[[S], Sequence[str]] = _no_lines
    # The learned quality of each worker (rows of plain values, worst first): the page, logs/workers.tsv.
    workers: Callable[[S], Sequence[Mapping[str, object]]] = _no_rows
    # Work held for a person, one row each (at least "id" and "reason").
    held: Callable[[S], Sequence[Mapping[str, object]]] = _no_rows
    # The decision-log row of ``pipeline.py unrestrict`` (now, pool name, pool id, worker); None: no row.
    unrestrict_row: Callable[[datetime, str, str, str], AppendRows] | None = None
    # What ``pipeline.py add FILE`` feeds, and into which pool (engine/intake.py); None: the pipeline takes no file.
    intake: Callable[[C], IntakeSpec] | None = None
    # What ``pipeline.py setup`` creates on Toloka for this configuration (projects, skills, pools);
    # None: the pipeline's pools are made by hand (docs/toloka-setup.md).
    toloka_setup: Callable[[C, SetupRequest], SetupPlan] | None = None
    # ``pipeline.py trace``: which tables tell one unit's path and how they read; None: no trace.
    trace: TraceSpec | None = None
    # Work that waits, one row each: "id", "label", "stage", "since" (naive UTC datetime), "answers".
    waiting: Callable[[S], Sequence[Mapping[str, object]]] = _no_rows

    def reviewed_pools(self, config: C) -> frozenset[str]:
        """Pools whose submitted work the pipeline accepts or rejects itself (their rewards count at accept)."""
        return frozenset(o.pool for o in self.observers if o.event(config) == "submitted")

    def check(self) -> None:
        """Refuse a malformed declaration (a programming error, caught by the tests)."""
        keys = [o.key for o in self.observers]
        if len(set(keys)) != len(keys):
            raise ValueError(f"pipeline {self.name}: two observers share a cursor key: {keys}")


def pool_names(observers: Sequence[ObserverSpec[Any, Any]]) -> list[str]:
    """The distinct pools of ``observers``, in order."""
    return list(dict.fromkeys(o.pool for o in observers))
