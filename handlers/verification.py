"""What the three verification pools share: collecting answers, aggregating, finishing work.

Answers are collected per task until the task has ``overlap`` of them; only
those tasks are aggregated. Answers that cannot matter any more (golden tasks,
another pipeline's tasks, a photo or work already decided) are ignored, so the
ledger never keeps a ballot that will not be counted.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from aggregation.classification import Aggregate, Vote, aggregate
from engine.actions import AppendRows, LinkTo, TaskSpec
from handlers import flow
from handlers.base import Outcome, ValidationRules, decision_row, decisions, set_status, stamp
from handlers.state import Ballot, Group, Ledger, Photo, Stage, Work
from toloka_client.records import Assignment

PEDESTRIAN_ID = "pedestrian_assignment_id"


def collect(
    ledger: Ledger,
    kind: str,
    stage: Stage,
    assignments: Sequence[Assignment],
    rules: ValidationRules,
    outcome: Outcome,
) -> None:
    """File every relevant answer of ``assignments`` as a ballot of its task."""
    box = ledger.ballots_of(kind)
    for assignment in assignments:
        if not assignment.id or not assignment.user_id:
            outcome.warning(f"{kind} assignment {assignment.id!r} without id or user ignored")
            continue
        for task, solution in assignment.pairs():
            if task.is_golden or not task.id or solution is None:
                continue
            values = task.input_values
            work = ledger.works.get(str(values.get(PEDESTRIAN_ID, "")))
            photo_id = str(values.get("photo_id", ""))
            photo_group = str(values.get("group", ""))
            if work is None or work.stage != stage or _photo_decided(work, stage, photo_group, photo_id):
                continue  # golden, foreign or late: the decision it could change is made
            label = solution.output_values.get(rules.answer_field)
            if label not in (rules.accept_label, rules.reject_label):
                outcome.warning(
                    f"{kind} assignment {assignment.id} task {task.id}: answer {rules.answer_field}={label!r} "
                    f"is neither {rules.accept_label!r} nor {rules.reject_label!r}; ignored"
                )
                continue
            ballots = box.setdefault(task.id, [])
            if any(b.assignment_id == assignment.id for b in ballots):
                continue
            ballots.append(
                Ballot(
                    task_id=task.id,
                    assignment_id=assignment.id,
                    worker_id=assignment.user_id,
                    label=str(label),
                    pedestrian_assignment_id=work.assignment_id,
                    group=str(values.get("group", work.group_id("main"))),
                    photo_id=photo_id,
                    image_field=str(values.get("image_field", "")),
                    url=str(values.get("image", "")),
                )
            )


def complete(
    ledger: Ledger, kind: str, rules: ValidationRules, skills: Mapping[str, float]
) -> tuple[dict[str, list[Ballot]], dict[str, Aggregate]]:
    """Take the tasks that reached their overlap out of the ledger and aggregate them.

    Ballots of work decided meanwhile (by another group or pool) are dropped
    here, in one pass, rather than searched for whenever a work finishes.
    """
    box = ledger.ballots_of(kind)
    for task in [t for t, ballots in box.items() if ballots[0].pedestrian_assignment_id not in ledger.works]:
        del box[task]
    done = {task: ballots for task, ballots in box.items() if len(ballots) >= rules.overlap}
    for task in done:
        del box[task]
    votes = [Vote(b.task_id, b.worker_id, b.label) for ballots in done.values() for b in ballots]
    results = aggregate(
        votes,
        rules.aggregation,
        skills=skills,
        default_skill=rules.default_skill,
        tie_label=rules.reject_label,  # an undecided check does not pass
    )
    return done, results


def answer_rows(
    kind: str,
    rules: ValidationRules,
    done: Mapping[str, list[Ballot]],
    results: Mapping[str, Aggregate],
    skills: Mapping[str, float],
    works: Mapping[str, Work],
    now: datetime,
) -> dict[str, AppendRows]:
    """``logs/answers.tsv`` rows of the aggregated tasks, one append per pedestrian assignment."""
    rows: dict[str, list[dict[str, object]]] = {}
    for task, ballots in done.items():
        for b in ballots:
            work = works.get(b.pedestrian_assignment_id)
            rows.setdefault(b.pedestrian_assignment_id, []).append(
                {
                    "date_time": stamp(now),
                    "handler": kind,
                    "pool_id": rules.pool_id,
                    "task": task,
                    "assignment_id": b.assignment_id,
                    "worker": b.worker_id,
                    "label": b.label,
                    "skill": skills.get(b.worker_id, rules.default_skill),
                    "result": results[task].label,
                    "pedestrian_assignment_id": b.pedestrian_assignment_id,
                    "address": work.address if work else "",
                    "group": b.group,
                    "image_field": b.image_field,
                    "url": b.url,
                }
            )
    return {
        pa: AppendRows("answers", f"{pa}/{kind}/{min(str(r['task']) for r in batch)}", tuple(batch))
        for pa, batch in rows.items()
    }


def aggregate_new_answers(
    ledger: Ledger,
    kind: str,
    stage: Stage,
    assignments: Sequence[Assignment],
    rules: ValidationRules,
    skills: Mapping[str, float],
    now: datetime,
    outcome: Outcome,
) -> tuple[dict[str, list[Ballot]], dict[str, Aggregate]]:
    """Collect, aggregate the tasks that completed, and log their answers: every pool's first step."""
    collect(ledger, kind, stage, assignments, rules, outcome)
    done, results = complete(ledger, kind, rules, skills)
    for pa, rows in answer_rows(kind, rules, done, results, skills, ledger.works, now).items():
        outcome.add(pa, rows)
    return done, results


def judge_photos(
    ledger: Ledger,
    stage: Stage,
    assignments: Sequence[Assignment],
    rules: ValidationRules,
    skills: Mapping[str, float],
    now: datetime,
    outcome: Outcome,
) -> list[Work]:
    """The photo pools' step: aggregate, record each verdict on its photo, return the works touched.

    The verdict goes to ``photo.quality`` or ``photo.relevant`` (``stage`` says which); only
    works still at ``stage`` are touched, so a late answer changes nothing.
    """
    done, results = aggregate_new_answers(ledger, stage, stage, assignments, rules, skills, now, outcome)
    touched: dict[str, Work] = {}
    for task_id, ballots in done.items():
        first = ballots[0]
        work = ledger.works.get(first.pedestrian_assignment_id)
        group = work.groups.get(first.group.rsplit("/", 1)[-1]) if work else None
        photo = group.photo(first.photo_id) if group else None
        if work is None or photo is None or work.stage != stage:
            continue
        passed = results[task_id].label == rules.accept_label
        if stage == "quality":
            photo.quality = passed
        else:
            photo.relevant = passed
        touched[work.assignment_id] = work
    return list(touched.values())


def photo_task(work: Work, group: Group, photo: Photo, overlap: int) -> TaskSpec:
    """One quality or relevance task: a photo, what it should show, and where it belongs."""
    return TaskSpec(
        input_values={
            "image": LinkTo(photo.key),
            "image_field": photo.field,
            "photo_id": photo.photo_id,
            "group": work.group_id(group.name),
            PEDESTRIAN_ID: work.assignment_id,
            "name": work.name,
            "address": work.address,
        },
        overlap=overlap,
        unavailable_for=(work.user_id,),
    )


def reject(ledger: Ledger, outcome: Outcome, work: Work, handler: str, group: str, comment: str, now: datetime) -> None:
    """Reject the pedestrian assignment and drop its work from the ledger."""
    outcome.add(
        work.assignment_id,
        set_status(now, work, handler, group, "REJECTED", comment),
        decisions(f"{work.assignment_id}/final", [decision_row(now, work, handler, group, flow.REJECT, comment)]),
    )
    outcome.info(f"{work.assignment_id} rejected: {comment}")
    finish(ledger, outcome, work)


def finish(ledger: Ledger, outcome: Outcome, work: Work) -> None:
    """Forget a decided work; its waiting ballots go at the next :func:`complete` of their pool."""
    ledger.works.pop(work.assignment_id, None)
    outcome.decided += 1


def _photo_decided(work: Work, stage: Stage, group_id: str, photo_id: str) -> bool:
    if stage == "visit":
        return False
    group = work.groups.get(group_id.rsplit("/", 1)[-1])
    photo = group.photo(photo_id) if group else None
    if photo is None:
        return True  # not a photo of this work: nothing to count it for
    return (photo.quality if stage == "quality" else photo.relevant) is not None
