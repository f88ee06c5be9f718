"""Pedestrian pool: a submitted assignment becomes stored photos and one visit task.

For each new submitted assignment the handler stores every counted photo under
``tmp/<submitted date>/<assignment>/<field>/<n>.jpg`` and creates one visit
task (unavailable to the pedestrian) carrying the organization, the verdict,
the worker's coordinates and the photo links per field. Bonus fields count only
when their ``can_take_<x>`` flag says yes.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal

from engine.actions import CreateTasks, LinkTo, StorePhoto, TaskSpec, operation_uuid
from engine.spec import Review
from file_store.keys import make_key
from handlers import flow, visit
from handlers.base import Outcome, PedestrianRules, Rules, ValidationRules, decision_row, decisions
from handlers.state import MAIN, Group, Ledger, Photo, Work
from toloka_client.records import Assignment

HANDLER = "pedestrian"


class Malformed(ValueError):
    """The assignment cannot be read; the reason says which field is wrong."""


def handle(ledger: Ledger, assignments: Sequence[Assignment], rules: Rules, now: datetime) -> Outcome:
    """Turn newly submitted pedestrian assignments into stored photos and visit tasks."""
    outcome = Outcome()
    for assignment in assignments:
        if assignment.id is None or assignment.id in ledger.works or assignment.id in ledger.held:
            continue  # already in progress (a re-delivered event)
        if assignment.status not in (None, "SUBMITTED"):
            # Decided before it reached us: by an earlier run (a start with --fresh), a person in
            # Toloka's interface, or Toloka's auto-accept. Deciding it again could accept work that
            # was rejected (Toloka allows REJECTED -> ACCEPTED) and pay for it: left alone.
            outcome.info(f"{assignment.id}: already {assignment.status} on Toloka; left alone")
            continue
        try:
            work = read_work(assignment, rules.pedestrian)
        except Malformed as exc:
            ledger.held[assignment.id] = str(exc)
            outcome.warning(f"pedestrian assignment {assignment.id} held for a person: {exc}")
            continue
        ledger.works[work.assignment_id] = work
        outcome.reviewing.append(review_of(work, assignment.reward or Decimal(0)))
        outcome.add(work.assignment_id, *_photo_actions(work, rules), _visit_task(work, rules.pedestrian, rules.visit))
        rows = [decision_row(now, work, HANDLER, work.group_id(MAIN), flow.SUBMIT, work.verdict)]
        if rules.visit.policy is not None:  # the automatic check is evidence for the visit verdict
            check = visit.distance_of(work, rules.pedestrian)
            rows.append(decision_row(now, work, HANDLER, work.group_id(MAIN), flow.DISTANCE, check.note))
        rows.append(decision_row(now, work, HANDLER, work.group_id(MAIN), flow.TO_VISIT))
        outcome.add(work.assignment_id, decisions(f"{work.assignment_id}/submit", rows))
        outcome.info(f"{work.assignment_id}: {sum(len(g.photos) for g in work.groups.values())} photos, visit task")
    return outcome


def review_of(work: Work, reward: Decimal) -> Review:
    """The engine's record of a pedestrian assignment under review (its reward is owed once accepted)."""
    return Review(work.assignment_id, HANDLER, reward, work.submitted, label=f"{work.name}, {work.address}",
                  warned=work.warned)


def read_work(assignment: Assignment, rules: PedestrianRules) -> Work:
    """Read a pedestrian assignment into a :class:`Work`, or raise :class:`Malformed`."""
    if not assignment.user_id:
        raise Malformed("no user_id")
    if assignment.submitted is None:
        raise Malformed("no submitted time")
    if len(assignment.tasks) != 1 or len(assignment.solutions) != 1:
        raise Malformed(
            f"expected 1 task and 1 solution, found {len(assignment.tasks)} and {len(assignment.solutions)}"
        )
    task_input = assignment.tasks[0].input_values
    output = assignment.solutions[0].output_values
    org = {name: _text(task_input.get(name)) for name in (*rules.org_fields, *rules.extra_fields) if name in task_input}
    missing = [name for name in rules.org_fields if not org.get(name)]
    if missing:
        raise Malformed(f"task input lacks {', '.join(missing)}")
    verdict = output.get(rules.verdict_field)
    if verdict not in (rules.verdict_ok, rules.verdict_no_org):
        raise Malformed(
            f"output {rules.verdict_field!r} is {verdict!r}, expected {rules.verdict_ok!r} or {rules.verdict_no_org!r}"
        )
    date = assignment.submitted.strftime("%Y-%m-%d")

    def photos(field: str) -> list[Photo]:
        ids = _attachment_ids(output.get(field), field)
        return [
            Photo(f"{field}/{n}", field, aid, make_key("tmp", date, assignment.id or "", field, f"{n}.jpg"))
            for n, aid in enumerate(ids)
        ]

    groups = {MAIN: Group(MAIN, [p for field in rules.main_fields for p in photos(field)])}
    for field, flag in zip(rules.bonus_fields, rules.bonus_flags, strict=True):
        if output.get(flag) == rules.bonus_flag_yes:
            bonus = photos(field)
            if bonus:
                groups[field] = Group(field, bonus)
    return Work(
        assignment_id=assignment.id or "",
        user_id=assignment.user_id,
        submitted=assignment.submitted,
        org=org,
        verdict=str(verdict),
        worker_coordinates=_text(output.get(rules.worker_coordinates_field)),
        comment=_text(output.get(rules.comment_field)),
        groups=groups,
    )


def _photo_actions(work: Work, rules: Rules) -> list[StorePhoto]:
    """Store every photo; measure them only where the automatic checks count (the dynamic policy)."""
    measure = any(pool.policy is not None for pool in (rules.visit, rules.quality, rules.relevance))
    return [StorePhoto(p.attachment_id, p.key, measure=measure) for g in work.groups.values() for p in g.photos]


def _visit_task(work: Work, rules: PedestrianRules, visit: ValidationRules) -> CreateTasks:
    input_values: dict[str, object] = {"pedestrian_assignment_id": work.assignment_id, **work.org}
    input_values[rules.verdict_field] = work.verdict
    input_values[rules.worker_coordinates_field] = work.worker_coordinates
    for group in work.groups.values():
        for photo in group.photos:
            links = input_values.setdefault(photo.field, [])
            assert isinstance(links, list)
            links.append(LinkTo(photo.key))
    task = TaskSpec(input_values=input_values, overlap=visit.overlap, unavailable_for=(work.user_id,))
    return CreateTasks(visit.pool_id, operation_uuid("visit", work.assignment_id), (task,))


def _attachment_ids(value: object, field: str) -> list[str]:
    """A photo field holds one attachment id or a list of them (or nothing)."""
    if value is None or value == "" or value == []:
        return []
    items: list[object] = value if isinstance(value, list) else [value]
    ids = [item.strip() for item in items if isinstance(item, str)]
    if len(ids) != len(items) or not all(ids):
        raise Malformed(f"photo field {field!r} holds {value!r}, expected attachment ids")
    return ids


def _text(value: object) -> str:
    return "" if value is None else str(value)
