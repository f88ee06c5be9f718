"""Quality pool: is each photo sharp and usable?

Each photo is one task. A group is decided once all its photos are: ``main``
without a good photo for some required field rejects the pedestrian
assignment ("Low quality photos"); a bonus group without a good photo is
dropped. When every group is decided, the good photos go to the relevance
pool in one idempotent task creation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from engine.actions import CreateTasks, operation_uuid
from engine.spec import Outage
from handlers import flow, photo_checks, verification
from handlers.base import Outcome, Rules, decision_row, decisions
from handlers.state import MAIN, Group, Ledger, Work
from toloka_client.records import Assignment

HANDLER = "quality"


def handle(
    ledger: Ledger,
    assignments: Sequence[Assignment],
    rules: Rules,
    skills: Mapping[str, float],
    now: datetime,
    refused: Mapping[str, str] | None = None,
    outages: Sequence[Outage] = (),
    facts: Mapping[str, str] | None = None,
) -> Outcome:
    """Aggregate completed quality tasks, decide groups, and send good photos on.

    ``facts`` are stored photos' measurements (``Context.facts``); under the dynamic
    policy an unreadable, tiny or blank photo counts against "usable" as evidence.
    """
    outcome = Outcome()
    evidence = photo_checks.quality_evidence(ledger) if rules.quality.policy is not None else None
    for work in verification.judge_photos(
        ledger, "quality", assignments, rules.quality, skills, now, outcome, refused, outages,
        evidence=evidence, facts=facts,
    ):
        settle(ledger, outcome, work, rules, now)
    return outcome


def settle(ledger: Ledger, outcome: Outcome, work: Work, rules: Rules, now: datetime) -> None:
    """Decide every group whose photos are all judged; move on when all groups are."""
    for group in work.groups.values():
        if group.status != "quality" or any(p.quality is None for p in group.photos):
            continue
        rows = [
            decision_row(now, work, HANDLER, work.group_id(group.name),
                         flow.GOOD_IMAGE if p.quality else flow.BAD_IMAGE, p.photo_id)
            for p in group.photos
        ]
        if group.name == MAIN:
            missing = _missing(group, rules.pedestrian.required_fields)
            if missing:
                outcome.add(work.assignment_id, decisions(f"{work.assignment_id}/quality/{group.name}", rows))
                verification.reject(
                    ledger, outcome, work, HANDLER, work.group_id(MAIN), rules.quality.reject_comment, now
                )
                return
            group.status = "relevance"
        elif any(p.quality for p in group.photos):
            group.status = "relevance"
        else:
            group.status = "dropped"
            rows.append(
                decision_row(now, work, HANDLER, work.group_id(group.name), flow.BONUS_DROPPED, "no good photo")
            )
        outcome.add(work.assignment_id, decisions(f"{work.assignment_id}/quality/{group.name}", rows))
    if all(g.status != "quality" for g in work.groups.values()):
        _to_relevance(outcome, work, rules, now)


def _missing(group: Group, required: Sequence[str]) -> list[str]:
    good = {p.field for p in group.photos if p.quality}
    return [field for field in required if field not in good]


def _to_relevance(outcome: Outcome, work: Work, rules: Rules, now: datetime) -> None:
    groups = [g for g in work.groups.values() if g.status == "relevance"]
    tasks = tuple(
        verification.photo_task(work, group, photo, rules.relevance.overlap)
        for group in groups
        for photo in group.photos
        if photo.quality
    )
    work.stage = "relevance"
    outcome.add(
        work.assignment_id,
        CreateTasks(rules.relevance.pool_id, operation_uuid("relevance", work.assignment_id), tasks),
        decisions(
            f"{work.assignment_id}/to-relevance",
            [decision_row(now, work, HANDLER, work.group_id(g.name), flow.TO_RELEVANCE) for g in groups],
        ),
    )
