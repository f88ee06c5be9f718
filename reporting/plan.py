"""What the report reads of a pipeline's declaration, resolved once into a :class:`ReportPlan`.

The report assumes nothing about a pipeline: every column, event, stage, pool
and table it uses comes from the :class:`~engine.spec.PipelineSpec` it is
given. Report fields a spec leaves empty (``DecisionLog.start_event``,
``final_events``, ``timeline_events``, ``PipelineSpec.outcomes``,
``answer_log``) are derived from what it does declare, as each note below
says (docs/status.md, "What the report reads of a pipeline").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from engine.spec import AnswerLog, CountChart, DecisionLog, FunnelStage, Outcome, PipelineSpec, pool_names

T = TypeVar("T")
Location = tuple[str, str]  # (folder: "logs" or "results", file name)
SPEND = "engine:spend"  # the engine's own money log, whatever the pipeline
SPEND_LOCATION: Location = ("logs", "spend.tsv")


@dataclass(frozen=True)
class ReportPlan:
    """Everything the report needs to know about one pipeline."""

    name: str
    title: str
    log: DecisionLog | None
    time_column: str  # of the decision log
    subject_noun: str  # what the funnel counts, plural ("pedestrian assignments")
    funnel: tuple[FunnelStage, ...]
    start_event: str | None  # None: a unit's first row starts its clock
    final_events: tuple[str, ...]
    outcomes: tuple[Outcome, ...]
    timeline_events: tuple[str, ...]  # drawn over time, in this order
    answer_log: AnswerLog | None
    charts: tuple[CountChart, ...]
    pools: tuple[str, ...]  # in flow order
    tables: dict[str, Location]  # the pipeline's tables; the engine's spend log under SPEND
    rare: frozenset[str] = frozenset()  # tables that may well not exist yet (no note when missing)

    def outcome_of(self, pool: str, event: str) -> str:
        """The outcome a final row names."""
        for outcome in self.outcomes:
            if outcome.matches(pool, event):
                return outcome.label(pool)
        return f"{event} at {pool}"


def _empty(value: Any) -> bool:
    return value is None or (hasattr(value, "__len__") and len(value) == 0)


def _field(owner: Any, name: str, derive: Callable[[], T]) -> T:
    """``owner.name`` if declared there (not empty), else ``derive()``."""
    value = getattr(owner, name, None) if owner is not None else None
    if _empty(value):
        return derive()
    return cast(T, value)  # getattr by name is untyped; the caller names the field's type


def noun_of(column: str) -> str:
    """A plural noun for the units a subject column names (``parcel_id`` -> ``parcels``)."""
    words = column.strip().replace("-", "_").split("_")
    if len(words) > 1 and words[-1].lower() == "id":
        words = words[:-1]
    noun = " ".join(w for w in words if w) or "units"
    return noun if noun.endswith("s") else noun + "s"


def _location(table: Any) -> Location:
    """A :class:`~engine.spec.TableSpec` or a ``(folder, filename)`` pair, as a pair."""
    if hasattr(table, "folder") and hasattr(table, "filename"):
        return str(table.folder), str(table.filename)
    folder, filename = table
    return str(folder), str(filename)


def plan(spec: PipelineSpec[Any, Any], config: Any = None) -> ReportPlan:
    """Resolve what the report reads of ``spec`` (with its parsed ``config``, when there is one).

    Without a config the pipeline's tables cannot be asked for
    (``spec.tables(config)``); they are assumed to be ``<table>.tsv``: the
    decision and answer logs in the logs folder, the tables of count charts in
    the results folder.
    """
    log = spec.decision_log
    funnel = tuple(spec.funnel)

    time_column: str = _field(log, "time_column", lambda: "date_time")
    subject_noun: str = _field(log, "subject_noun",
                               lambda: noun_of(log.subject_column) if log is not None else "units")
    # The first stage is where a unit's clock starts (pedestrian: "submit"; find_items: "link found").
    start_event: str | None = _field(log, "start_event", lambda: funnel[0].event if funnel else None)
    # Not declared: every stage after the first may be where a unit ends (its last such row decides it).
    final_events: tuple[str, ...] = tuple(_field(
        log, "final_events", lambda: tuple(dict.fromkeys(s.event for s in funnel[1:]))))
    outcomes: tuple[Outcome, ...] = tuple(_field(
        spec, "outcomes",
        lambda: tuple(Outcome(s.name, s.event, s.pool) for s in funnel[1:] if s.event in final_events)))
    timeline: tuple[str, ...] = tuple(_field(
        log, "timeline_events",
        lambda: tuple(dict.fromkeys([*([start_event] if start_event else []), *final_events]))))
    charts: tuple[CountChart, ...] = tuple(_field(spec, "report_charts", tuple))

    tables: dict[str, Location]
    rare: frozenset[str] = frozenset()
    if config is not None:
        tables = {name: _location(t) for name, t in spec.tables(config).items()}
        rare = frozenset(name for name, t in spec.tables(config).items() if getattr(t, "rare", False))
        pools = tuple(spec.pools(config))
        known = True
    else:
        tables = {}
        pools = tuple(pool_names(spec.observers))
        known = False

    def conventional_answers() -> AnswerLog | None:
        # Both pipelines so far log answers in "answers" with the decision log's pool column.
        if log is None or (known and "answers" not in tables):
            return None
        return AnswerLog("answers", log.pool_column, "worker", "label", "result")

    answer_log: AnswerLog | None = _field(spec, "answer_log", conventional_answers)
    if not known:
        if log is not None:
            tables[log.table] = ("logs", f"{log.table}.tsv")
        if answer_log is not None:
            tables.setdefault(answer_log.table, ("logs", f"{answer_log.table}.tsv"))
        for chart in charts:
            tables.setdefault(chart.table, ("results", f"{chart.table}.tsv"))
    tables[SPEND] = SPEND_LOCATION
    return ReportPlan(
        name=spec.name, title=spec.title, log=log, time_column=time_column, subject_noun=subject_noun,
        funnel=funnel, start_event=start_event, final_events=final_events, outcomes=outcomes,
        timeline_events=timeline, answer_log=answer_log if answer_log and answer_log.table in tables else None,
        charts=tuple(c for c in charts if c.table in tables), pools=pools, tables=tables, rare=rare,
    )
