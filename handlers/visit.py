"""Visit pool: did the pedestrian really go there?

Once a visit task is judged: "no" rejects the pedestrian assignment
("Incorrect object"); under the dynamic policy the distance between the
worker's coordinates and the organization is evidence too (a "does not
exist" sent from kilometres away is not believed); "yes" with verdict
no_org accepts it and records the
organization in ``no_org.tsv``; "yes" with verdict ok sends every photo to the
quality pool, one task per photo, grouped as ``main`` plus one group per bonus
field.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregation.geo import DistanceCheck, check_distance
from engine.actions import AppendRows, CreateTasks, RestrictWorker, operation_uuid
from engine.spec import Outage
from handlers import flow, quality, verification
from handlers.base import Outcome, PedestrianRules, Rules, ValidationRules, decision_row, decisions, set_status
from handlers.state import MAIN, Ballot, Ledger, Work
from toloka_client.records import Assignment

HANDLER = "visit"


def handle(
    ledger: Ledger,
    assignments: Sequence[Assignment],
    rules: Rules,
    skills: Mapping[str, float],
    now: datetime,
    refused: Mapping[str, str] | None = None,
    outages: Sequence[Outage] = (),
) -> Outcome:
    """Aggregate completed visit tasks and move each pedestrian assignment on."""
    outcome = Outcome()
    visit = rules.visit

    def distance(ballot: Ballot) -> float:
        work = ledger.works.get(ballot.pedestrian_assignment_id)
        return distance_of(work, rules.pedestrian).log_odds if work is not None else 0.0

    done, results = verification.aggregate_new_answers(
        ledger, HANDLER, "visit", assignments, visit, skills, now, outcome, refused=refused, evidence=distance,
        outages=outages,
    )
    for task_id, ballots in done.items():
        work = ledger.works.get(ballots[0].pedestrian_assignment_id)
        if work is None or work.stage != "visit":
            continue
        group = work.group_id(MAIN)
        verdict = verification.passed(results[task_id], visit)
        if verdict is None:
            verification.hold(ledger, outcome, work, HANDLER, group, results[task_id], now)
            continue
        if not verdict:
            verification.reject(ledger, outcome, work, HANDLER, group, visit.reject_comment, now)
            _count_rejection(ledger, outcome, work, rules.pedestrian, now)
            continue
        if results[task_id].status == "unsure":
            verification.note_fallback(outcome, work, HANDLER, group, task_id, results[task_id], now)
        if work.verdict == rules.pedestrian.verdict_no_org:
            _accept_no_org(ledger, outcome, work, rules.pedestrian, visit.accept_comment, now)
        else:
            _to_quality(outcome, work, rules.quality, now)
            quality.settle(ledger, outcome, work, rules, now)  # a work with no photos is decided now
    return outcome


def _count_rejection(ledger: Ledger, outcome: Outcome, work: Work, pedestrian: PedestrianRules,
                     now: datetime) -> None:
    """A pedestrian with ``restrict_after_rejections`` confident "Incorrect object" rejections is barred."""
    limit = pedestrian.restrict_after_rejections
    if limit <= 0:
        return
    count = ledger.rejections.get(work.user_id, 0) + 1
    ledger.rejections[work.user_id] = count
    if count != limit:
        return
    reason = f"{count} visits judged not made (last: {work.assignment_id})"
    outcome.add(
        f"worker:{work.user_id}",
        RestrictWorker(pedestrian.pool_id, work.user_id, f"pedestrian: {reason}"),
        verification.restriction_row(now, "pedestrian", work.user_id, pedestrian.pool_id, reason),
    )
    outcome.warning(f"pedestrian {work.user_id} restricted from pool {pedestrian.pool_id}: {reason}")


def distance_of(work: Work, pedestrian: PedestrianRules) -> DistanceCheck:
    """The automatic distance check of a work (evidence for the visit verdict under the dynamic policy)."""
    return check_distance(work.org.get(pedestrian.org_coordinates_field), work.worker_coordinates,
                          pedestrian.max_distance_m)


def no_org_columns(pedestrian: PedestrianRules) -> tuple[str, ...]:
    """Columns of ``no_org.tsv``."""
    return (
        *pedestrian.org_fields, *pedestrian.extra_fields,
        "pedestrian_assignment_id", "worker_id", "worker_coordinates", "comment", "decided",
    )


def no_org_row(work: Work, pedestrian: PedestrianRules, now: datetime) -> AppendRows:
    """The ``no_org.tsv`` row of an accepted work whose organization does not exist."""
    columns = (*pedestrian.org_fields, *pedestrian.extra_fields)
    row: dict[str, object] = {name: work.org.get(name, "") for name in columns}
    row.update(
        pedestrian_assignment_id=work.assignment_id,
        worker_id=work.user_id,
        worker_coordinates=work.worker_coordinates,
        comment=work.comment,
        decided=now.strftime("%Y-%m-%d %H:%M:%S"),
    )
    return AppendRows("no_org", work.assignment_id, (row,))


def _accept_no_org(
    ledger: Ledger, outcome: Outcome, work: Work, pedestrian: PedestrianRules, comment: str, now: datetime
) -> None:
    group = work.group_id(MAIN)
    outcome.add(
        work.assignment_id,
        set_status(now, work, HANDLER, group, "ACCEPTED", comment),
        no_org_row(work, pedestrian, now),
        decisions(f"{work.assignment_id}/final", [decision_row(now, work, HANDLER, group, flow.ACCEPT, "no_org")]),
    )
    outcome.info(f"{work.assignment_id} accepted: the organization does not exist")
    verification.finish(ledger, outcome, work)


def _to_quality(outcome: Outcome, work: Work, quality: ValidationRules, now: datetime) -> None:
    tasks = tuple(
        verification.photo_task(work, group, photo, quality.overlap)
        for group in work.groups.values()
        for photo in group.photos
    )
    work.stage = "quality"
    rows = [
        decision_row(now, work, HANDLER, work.group_id(g), flow.TO_QUALITY, f"{len(work.groups[g].photos)} photos")
        for g in work.groups
    ]
    if tasks:
        operation = operation_uuid("quality", work.assignment_id)
        outcome.add(work.assignment_id, CreateTasks(quality.pool_id, operation, tasks))
    outcome.add(work.assignment_id, decisions(f"{work.assignment_id}/to-quality", rows))
