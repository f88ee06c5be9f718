"""The pedestrian pipeline, declared: four pools, four observers, six tables, a funnel.

pedestrian (submitted) -> visit -> quality -> relevance (each verification pool
read as accepted by default). The handlers live in ``handlers/``, one module
per pool; this module only wires them to the engine (see docs/engine.md).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from decimal import Decimal

from aggregation.classification import preload
from aggregation.evidence import surge, worker_rows
from engine.actions import AppendRows, SetStatus, Step
from engine.spec import (
    AnswerLog,
    Batch,
    Context,
    CountChart,
    Decision,
    DecisionLog,
    FunnelStage,
    Migrated,
    ObserverSpec,
    Outcome,
    PipelineSpec,
    Review,
    V1Checkpoint,
)
from handlers import flow, pedestrian, quality, relevance, verification, visit
from handlers.base import decisions, stamp
from handlers.intake import intake
from handlers.settings import SECTIONS, PedestrianConfig, parse
from handlers.state import Ledger
from handlers.tables import pedestrian_tables
from pipelines.pedestrian_pools import expected_pools
from pipelines.pedestrian_toloka import setup_plan
from pipelines.pedestrian_trace import TRACE, waiting

POOLS = ("pedestrian", "visit", "quality", "relevance")
#: The prior accuracy the worker table shows rates around (the book keeps no skills).
NEUTRAL_PRIOR = 0.7


def _on_submitted(ledger: Ledger, batch: Batch, ctx: Context[PedestrianConfig]) -> Decision:
    return pedestrian.handle(ledger, batch.assignments, ctx.config, ctx.now)


def _on_visit(ledger: Ledger, batch: Batch, ctx: Context[PedestrianConfig]) -> Decision:
    return visit.handle(ledger, batch.assignments, ctx.config, batch.skills, ctx.now, ctx.refused,
                       ctx.outages)


def _on_quality(ledger: Ledger, batch: Batch, ctx: Context[PedestrianConfig]) -> Decision:
    return quality.handle(ledger, batch.assignments, ctx.config, batch.skills, ctx.now, ctx.refused,
                       ctx.outages, ctx.facts)


def _on_relevance(ledger: Ledger, batch: Batch, ctx: Context[PedestrianConfig]) -> Decision:
    return relevance.handle(ledger, batch.assignments, ctx.config, batch.skills, ctx.now, ctx.refused,
                       ctx.outages, ctx.facts)


def groups_waiting(ledger: Ledger, pool: str) -> int:
    """Groups waiting for this pool's verdict (pedestrian: every group of undecided work).

    A visit task judges a whole assignment, so visit counts one (the main group)
    per assignment still at the visit check.
    """
    works = ledger.works.values()
    if pool == "pedestrian":
        return sum(len(w.groups) for w in works)
    if pool == "visit":
        return sum(1 for w in works if w.stage == "visit")
    return sum(1 for w in works if w.stage == pool for g in w.groups.values() if g.status == pool)


def gauges(ledger: Ledger) -> dict[str, dict[str, int]]:
    """Per pool: answers waiting for their task's overlap, and groups waiting for the pool's verdict."""
    return {
        pool: {
            # Ballots of work decided meanwhile leave the ledger at the pool's next look (complete());
            # a pool with nothing at its stage is searched seldom, so they are not counted here.
            "answers_waiting": sum(len(b) for b in ledger.ballots.get(pool, {}).values()
                                   if b and b[0].pedestrian_assignment_id in ledger.works),
            "groups_waiting": groups_waiting(ledger, pool),
        }
        for pool in POOLS
    }


def migrate_v1(old: V1Checkpoint) -> Migrated[Ledger]:
    """Adopt a v1 checkpoint: the ledger as it is, owed rewards as reviews, pending statuses with their row."""
    ledger: Ledger = old.ledger
    reviews: dict[str, Review] = {}
    for aid, reward in old.rewards_owed.items():
        work = ledger.works.get(aid)
        if work is not None:
            reviews[aid] = pedestrian.review_of(work, reward)
        else:  # decided already; only its accept or reject is pending, so no warning is due
            reviews[aid] = Review(aid, "pedestrian", reward, datetime(1970, 1, 1), warned=True)
    for aid, work in ledger.works.items():
        reviews.setdefault(aid, pedestrian.review_of(work, Decimal(0)))
    return Migrated(ledger, reviews, tuple(_upgrade(step, old.now) for step in old.pending))


def _upgrade(step: Step, now: datetime) -> Step:
    """A v1 SetStatus carried ``context`` for the executor's auto-accepted row; v2 carries the row."""
    action = step.action
    if not isinstance(action, SetStatus) or action.if_overtaken is not None or not action.context:
        return step
    c = action.context
    row = {
        "date_time": stamp(now),
        "name": c.get("name", ""),
        "address": c.get("address", ""),
        "pedestrian_assignment_id": action.assignment_id,
        "handler": c.get("handler", ""),
        "group": c.get("group", ""),
        "event": flow.AUTO_ACCEPTED,
        "comment": f"wanted {action.status}: {action.comment}",
    }
    overtaken = decisions(f"{action.assignment_id}/auto-accepted", [row])
    return Step(step.chain, dataclasses.replace(action, context={}, if_overtaken=overtaken))


def _check_section(name: str) -> ObserverSpec[PedestrianConfig, Ledger]:
    handler = {"visit": _on_visit, "quality": _on_quality, "relevance": _on_relevance}[name]
    return ObserverSpec(
        name,
        event=lambda c: getattr(c, name).event,
        handler=handler,
        skill_id=lambda c: getattr(c, name).skill_id,
    )


def _unrestrict_row(now: datetime, pool: str, pool_id: str, worker: str) -> AppendRows:
    # The time is part of the fact: each lift is a person's act, and the table keeps one row per fact.
    row = verification.restriction_row(now, pool, worker, pool_id,
                                       f"lifted by a person (pipeline.py unrestrict) at {stamp(now)}")
    return AppendRows(row.table, f"unrestrict/{pool_id}/{worker}/{stamp(now)}",
                      tuple({**r, "event": flow.UNRESTRICT} for r in row.rows))


def _prepare(config: PedestrianConfig) -> None:
    """crowd-kit only where a pool keeps a fixed overlap with a method that fits a model (DawidSkene, Wawa).

    The dynamic policy never uses it, and MajorityVote is computed without it.
    """
    if any(pool.policy is None and pool.aggregation != "MajorityVote"
           for pool in (config.visit, config.quality, config.relevance)):
        preload()


def _alarms(ledger: Ledger) -> list[str]:
    """Pools whose negative verdicts surge (their rejections wait), for the status page."""
    lines = []
    for kind, book in sorted(ledger.books.items()):
        why = surge(book)
        if why is not None:
            waiting = sum(1 for d in ledger.deferred.values() if d.handler == kind)
            lines.append(f"{kind} pool: {why} ({waiting} rejections waiting)")
    return lines


def _workers(ledger: Ledger) -> list[dict[str, object]]:
    rows = [row for kind, book in sorted(ledger.books.items()) for row in worker_rows(kind, book, NEUTRAL_PRIOR)]
    rows.sort(key=lambda row: (row["restricted"] == "", float(str(row["accuracy"]))))
    return rows


def _held_rows(ledger: Ledger) -> list[dict[str, object]]:
    return [{"id": aid, "reason": reason} for aid, reason in ledger.held.items()]


def _pools(config: PedestrianConfig) -> Mapping[str, str]:
    return config.pools()


def _in_progress(ledger: Ledger) -> int:
    return len(ledger.works)


def _expects(ledger: Ledger, pool: str) -> bool:
    """New organizations can come any time; a checking pool matters while work waits at its stage."""
    return pool == "pedestrian" or any(w.stage == pool for w in ledger.works.values())


def _held(ledger: Ledger) -> int:
    return len(ledger.held)


PEDESTRIAN: PipelineSpec[PedestrianConfig, Ledger] = PipelineSpec(
    name="pedestrian",
    title="field workers photograph organizations; visit, quality and relevance pools check their work",
    sections=SECTIONS,
    parse_config=parse,
    pools=_pools,
    observers=(
        ObserverSpec("pedestrian", event=lambda c: c.pedestrian.event, handler=_on_submitted),
        _check_section("visit"),
        _check_section("quality"),
        _check_section("relevance"),
    ),
    new_state=Ledger,
    tables=pedestrian_tables,
    state_packages=("handlers", "aggregation"),
    decision_log=DecisionLog(
        table="decisions", pool_column="handler", event_column="event",
        subject_column="pedestrian_assignment_id", label_column="name", comment_column="comment",
        start_event=flow.SUBMIT, final_events=flow.FINAL,
        timeline_events=(flow.SUBMIT, flow.ACCEPT, flow.REJECT, flow.PAY_BONUS),
    ),
    funnel=(
        FunnelStage("pedestrian", flow.SUBMIT),
        FunnelStage("visit", flow.TO_VISIT),
        FunnelStage("quality", flow.TO_QUALITY),
        FunnelStage("relevance", flow.TO_RELEVANCE),
        # An organization found not to exist is accepted by the visit handler: not a step further down.
        FunnelStage("accepted", flow.ACCEPT, pool="relevance"),
    ),
    gauges=gauges,
    in_progress=_in_progress,
    expects=_expects,
    held_for_a_person=_held,
    migrate_v1=migrate_v1,
    outcomes=(
        Outcome("accepted", flow.ACCEPT, pool="relevance"),
        Outcome("no_org", flow.ACCEPT),  # the visit handler accepts work whose organization does not exist
        Outcome("rejected at {pool}", flow.REJECT),
    ),
    expected_pools=expected_pools,
    prepare=_prepare,
    answer_log=AnswerLog("answers", pool_column="handler", worker_column="worker", label_column="label",
                         result_column="result"),
    report_charts=(
        CountChart("bonus_fields", "Bonus fields accepted", table="bonus_tasks", column="bonus_field",
                   unique_by=("pedestrian_assignment_id", "bonus_field"), unit="accepted assignments",
                   money_column="bonus_amount", money_label="bonus money owed for them"),
    ),
    unrestrict_row=_unrestrict_row,
    alarms=_alarms,
    workers=_workers,
    held=_held_rows,
    intake=intake,
    toloka_setup=setup_plan,
    trace=TRACE,
    waiting=waiting,
)

__all__ = ["PEDESTRIAN", "POOLS", "gauges", "groups_waiting", "migrate_v1"]
