"""What the three verification pools share: collecting answers, judging tasks, finishing work.

Two policies, per ``[Validation*]`` section:

- fixed overlap (a file with ``overlap`` only, as before): a task is judged
  once it has ``overlap`` answers, by the configured crowd-kit method, and its
  label decides;
- the dynamic policy (``min_overlap`` ...): every answer updates a posterior
  built from learned worker quality (:mod:`aggregation.evidence`); a task gets
  more answers (its overlap is raised) while it is unsure, a negative verdict
  counts only with ``reject_confidence``, and a task still unsure at
  ``max_overlap`` gets the configured fallback (accept, or hold the work for a
  person). Control tasks (``known_solutions``) score the checkers.

Answers that cannot matter any more (another pipeline's tasks, a photo or work
already decided) are ignored, so the ledger never keeps a ballot that will not
be counted.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from aggregation.classification import Vote, aggregate
from aggregation.evidence import (
    Answer,
    fair_log_odds,
    forget_worker,
    learn_control,
    learn_verdict,
    lifted,
    note_verdict,
    prior_accuracy,
    probability,
    rates,
    surge,
)
from aggregation.evidence import judge as judge_task
from engine.actions import AppendRows, LinkTo, RaiseOverlap, RestrictWorker, TaskSpec
from engine.spec import Outage
from handlers import flow, photo_checks
from handlers.base import Outcome, ValidationRules, decision_row, decisions, set_status, stamp
from handlers.state import Ballot, DeferredReject, Group, Ledger, Photo, Stage, Work
from toloka_client.records import Assignment, Task

PEDESTRIAN_ID = "pedestrian_assignment_id"
OVERLAP_KEY = "overlap:"

Status = Literal["positive", "negative", "unsure"]


@dataclass(frozen=True, slots=True)
class Finding:
    """A judged task: its label, the probability of that label, and how sure the policy is.

    ``unsure``: the answers ran out below both thresholds; the pool's fallback
    applies (``label`` is the way they lean). Under a fixed overlap a finding is never unsure.
    """

    task_id: str
    label: str
    confidence: float
    status: Status


def passed(finding: Finding, rules: ValidationRules) -> bool | None:
    """True if the check passed, False if it failed on evidence, None if the work must wait for a person."""
    if finding.status == "unsure":
        fallback = rules.policy.fallback if rules.policy is not None else "accept"
        if fallback == "lean":
            return True if finding.label == rules.accept_label else None
        return None if fallback == "hold" else True
    return finding.status == "positive"


def collect(
    ledger: Ledger,
    kind: str,
    stage: Stage,
    assignments: Sequence[Assignment],
    rules: ValidationRules,
    outcome: Outcome,
    now: datetime,
    skills: Mapping[str, float],
) -> None:
    """File every relevant answer of ``assignments`` as a ballot of its task; control answers score the checker."""
    box = ledger.ballots_of(kind)
    for assignment in assignments:
        if not assignment.id or not assignment.user_id:
            outcome.warning(f"{kind} assignment {assignment.id!r} without id or user ignored")
            continue
        if rules.policy is not None and lifted(ledger.book(kind), assignment.user_id, assignment.created):
            outcome.info(f"{kind}: checker {assignment.user_id} works again (their restriction was lifted)")
        for task, solution in assignment.pairs():
            if not task.id or solution is None:
                continue
            if task.is_golden:
                if rules.policy is not None:
                    _score_control(ledger, kind, task, assignment.user_id, solution.output_values, rules, outcome)
                    _restrict_if_poor(ledger, kind, assignment.user_id, rules, skills, outcome, now, assignment.id)
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
                    url=without_query(str(values.get("image", ""))),
                    submitted=assignment.submitted,
                )
            )


def without_query(link: str) -> str:
    """The photo's address without its query string: a presigned link's signature and credential
    (the S3 key id) stay out of the checkpoint, where a ballot may wait for days, and out of answers.tsv."""
    return link.split("?", 1)[0]


def complete(
    ledger: Ledger,
    kind: str,
    rules: ValidationRules,
    skills: Mapping[str, float],
    outcome: Outcome,
    now: datetime,
    evidence: Callable[[Ballot], float] | None = None,
    outages: Sequence[Outage] = (),
) -> tuple[dict[str, list[Ballot]], dict[str, Finding]]:
    """Take the tasks that are ready out of the ledger and judge them.

    Under a fixed overlap a task is ready at ``overlap`` answers. Under the
    dynamic policy it is ready when the posterior is sure enough, or the answers
    ran out; an unsure task with answers still to buy gets its overlap raised
    (an action of its pedestrian assignment's chain). ``evidence`` gives the
    automatic checks' log-odds for a task (e.g. the distance of the visit).
    Ballots of work decided meanwhile (by another group or pool) are dropped
    here, in one pass, rather than searched for whenever a work finishes. A
    negative answer sent while photo links did not serve (``outages``) is void:
    the checker may not have seen the photo; the task asks for another answer.
    """
    box = ledger.ballots_of(kind)
    for task in [t for t, ballots in box.items() if ballots[0].pedestrian_assignment_id not in ledger.works]:
        del box[task]
        _forget_task(ledger, task)
    if outages:
        _void_outage_answers(ledger, kind, box, rules, outages, outcome, now)
    if rules.policy is None:
        return _complete_fixed(box, rules, skills)
    policy = rules.policy
    book = ledger.book(kind)
    done: dict[str, list[Ballot]] = {}
    results: dict[str, Finding] = {}
    for task, ballots in box.items():
        asked = ledger.requested.get(task, rules.overlap) - ledger.voided.get(task, 0)
        exhausted = task in ledger.exhausted
        if len(ballots) < asked and not exhausted:
            continue  # the answers asked for are still coming
        answers = [Answer(b.worker_id, b.label == rules.accept_label) for b in ballots]
        priors = {a.worker_id: prior_accuracy(skills.get(a.worker_id), rules.default_skill) for a in answers}
        extra = evidence(ballots[0]) if evidence is not None else 0.0
        work = ledger.works.get(ballots[0].pedestrian_assignment_id)
        author = work.user_id if work is not None else None
        p = probability(fair_log_odds(answers, book, priors, extra=extra, author=author))
        verdict = judge_task(p, len(answers), policy, exhausted=exhausted)
        if verdict == "more":
            total = len(answers) + ledger.voided.get(task, 0) + 1  # Toloka counts the voided answers too
            _raise_overlap(ledger, outcome, kind, rules, task, ballots[0], total, now)
            continue
        learn_verdict(book, answers, priors, extra=extra, author=author)
        note_verdict(book, verdict == "negative")
        done[task] = ballots
        label = rules.accept_label if p >= 0.5 else rules.reject_label
        results[task] = Finding(task, label, round(max(p, 1.0 - p), 6), verdict)
    for task in done:
        del box[task]
        _forget_task(ledger, task)
    return done, results


def _forget_task(ledger: Ledger, task: str) -> None:
    ledger.requested.pop(task, None)
    ledger.exhausted.discard(task)
    ledger.voided.pop(task, None)


def _void_outage_answers(
    ledger: Ledger,
    kind: str,
    box: dict[str, list[Ballot]],
    rules: ValidationRules,
    outages: Sequence[Outage],
    outcome: Outcome,
    now: datetime,
) -> None:
    """Drop negative answers sent during a photo-store outage and ask Toloka for as many new ones."""
    for task, ballots in list(box.items()):
        void = [b for b in ballots if b.label == rules.reject_label and b.submitted is not None
                and any(o.covers(b.submitted) for o in outages)]
        if not void:
            continue
        kept = [b for b in ballots if b not in void]
        if kept:
            box[task] = kept
        else:
            del box[task]
        ledger.voided[task] = ledger.voided.get(task, 0) + len(void)
        asked = ledger.requested.get(task, rules.overlap) + len(void)
        first = void[0]
        outcome.warning(f"task {task}: {len(void)} negative answer(s) sent while photo links did not serve are "
                        f"void; asking for {len(void)} more")
        if kept:
            _raise_overlap(ledger, outcome, kind, rules, task, first, asked, now)
        else:
            ledger.requested[task] = asked  # the task leaves the box; keep what was asked for its next ballots
            outcome.add(first.pedestrian_assignment_id, RaiseOverlap(rules.pool_id, task, asked))


def _complete_fixed(
    box: dict[str, list[Ballot]], rules: ValidationRules, skills: Mapping[str, float]
) -> tuple[dict[str, list[Ballot]], dict[str, Finding]]:
    """The fixed-overlap policy: tasks with ``overlap`` answers, judged by the crowd-kit method."""
    done = {task: ballots for task, ballots in box.items() if len(ballots) >= rules.overlap}
    for task in done:
        del box[task]
    votes = [Vote(b.task_id, b.worker_id, b.label) for ballots in done.values() for b in ballots]
    aggregates = aggregate(
        votes,
        rules.aggregation,
        skills=skills,
        default_skill=rules.default_skill,
        tie_label=rules.reject_label,  # an undecided check does not pass
    )
    results = {
        task: Finding(task, a.label, a.confidence, "positive" if a.label == rules.accept_label else "negative")
        for task, a in aggregates.items()
    }
    return done, results


def _raise_overlap(
    ledger: Ledger,
    outcome: Outcome,
    kind: str,
    rules: ValidationRules,
    task: str,
    first: Ballot,
    overlap: int,
    now: datetime,
) -> None:
    """Ask Toloka for one more answer; if it refuses, the task is decided with what it has (see ``note_refusals``)."""
    ledger.requested[task] = overlap
    work = ledger.works.get(first.pedestrian_assignment_id)
    refused = None
    if work is not None:
        refused = decisions(
            f"{work.assignment_id}/overlap/{task}/{overlap}",
            [decision_row(now, work, kind, first.group, flow.OVERLAP_REFUSED, f"task {task} to {overlap}")],
        )
    outcome.add(first.pedestrian_assignment_id, RaiseOverlap(rules.pool_id, task, overlap, if_refused=refused))


def note_refusals(ledger: Ledger, kind: str, refused: Mapping[str, str], outcome: Outcome) -> None:
    """This pool's tasks whose overlap Toloka would not raise are decided with the answers they have."""
    for key, reason in refused.items():
        if not key.startswith(OVERLAP_KEY):
            continue
        task = key[len(OVERLAP_KEY):].rsplit(":", 1)[0]
        if task in ledger.ballots_of(kind):
            ledger.exhausted.add(task)
            outcome.warning(f"task {task}: overlap not raised ({reason}); deciding with the answers it has")
        outcome.acknowledged.append(key)


def _restrict_if_poor(
    ledger: Ledger,
    kind: str,
    worker: str,
    rules: ValidationRules,
    skills: Mapping[str, float],
    outcome: Outcome,
    now: datetime,
    assignment_id: str,
) -> None:
    """Bar a checker whose learned accuracy stays under ``restrict_below`` after enough control answers.

    From then on their answers weigh nothing, also those to tasks still open; the
    restriction is logged in ``decisions.tsv`` and undone with ``pipeline.py unrestrict``.
    The reason names the assignment whose control answer tipped it: the same evidence
    read again after a fresh start gives the same row (kept once), a restriction after
    an unrestrict another one.
    """
    floor = rules.restrict_below
    book = ledger.book(kind)
    rec = book.workers.get(worker)
    if floor is None or rec is None or rec.ignored or rec.controls < rules.restrict_after_controls:
        return
    accuracy = rates(book, worker, prior_accuracy(skills.get(worker), rules.default_skill)).accuracy
    if accuracy >= floor:
        return
    forget_worker(book, worker, now)
    reason = (f"learned accuracy {accuracy:.2f} < restrict_below {floor:g} after {rec.controls} control answers "
              f"({rec.controls_right} right; last in {assignment_id})")
    outcome.add(
        f"worker:{worker}",
        RestrictWorker(rules.pool_id, worker, f"{kind}: {reason}"),
        restriction_row(now, kind, worker, rules.pool_id, reason),
    )
    outcome.warning(f"{kind}: checker {worker} restricted from pool {rules.pool_id}: {reason}")


def restriction_row(now: datetime, handler: str, worker: str, pool_id: str, reason: str) -> AppendRows:
    """The ``decisions.tsv`` row of a restriction (its group names the worker, there is no assignment)."""
    return decisions(f"restrict/{pool_id}/{worker}", [{
        "date_time": stamp(now), "name": "", "address": "", "pedestrian_assignment_id": "",
        "handler": handler, "group": f"worker {worker}", "event": flow.RESTRICT, "comment": f"pool {pool_id}: {reason}",
    }])


def _score_control(
    ledger: Ledger,
    kind: str,
    task: Task,
    worker: str,
    output: Mapping[str, object],
    rules: ValidationRules,
    outcome: Outcome,
) -> None:
    """A control task's answer scores the checker; a control that does not use the pool's labels is skipped."""
    known = {
        str(s.get("output_values", {}).get(rules.answer_field))
        for s in task.known_solutions
        if isinstance(s, Mapping) and isinstance(s.get("output_values"), Mapping)
    }
    labels = {rules.accept_label, rules.reject_label}
    if len(known) != 1 or not known <= labels:
        if task.id and task.id not in ledger.odd_controls:
            ledger.odd_controls.add(task.id)
            outcome.warning(
                f"{kind} control task {task.id}: known solution {rules.answer_field}={sorted(known)} is not one of "
                f"{rules.accept_label!r}, {rules.reject_label!r}; its answers are ignored"
            )
        return
    given = output.get(rules.answer_field)
    if given not in labels:
        return
    learn_control(ledger.book(kind), worker, given == rules.accept_label, known == {rules.accept_label})


def answer_rows(
    kind: str,
    rules: ValidationRules,
    done: Mapping[str, list[Ballot]],
    results: Mapping[str, Finding],
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
                    "confidence": results[task].confidence,
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
    *,
    refused: Mapping[str, str] | None = None,
    evidence: Callable[[Ballot], float] | None = None,
    outages: Sequence[Outage] = (),
    facts: Mapping[str, str] | None = None,
) -> tuple[dict[str, list[Ballot]], dict[str, Finding]]:
    """Collect, judge the tasks that are ready, and log their answers: every pool's first step.

    Stored photos' ``facts`` are filed first (:func:`handlers.photo_checks.absorb`), so
    their evidence counts in this very call. Under the dynamic policy the visit's
    evidence also counts a photo whose exact bytes another organization's work sent.
    """
    photo_checks.absorb(ledger, facts, outcome, now, record=rules.policy is not None)
    if stage == "visit" and rules.policy is not None:
        evidence = photo_checks.visit_evidence(ledger, evidence)
    note_refusals(ledger, kind, refused or {}, outcome)
    release_deferred(ledger, kind, outcome, now)
    collect(ledger, kind, stage, assignments, rules, outcome, now, skills)
    done, results = complete(ledger, kind, rules, skills, outcome, now, evidence, outages)
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
    refused: Mapping[str, str] | None = None,
    outages: Sequence[Outage] = (),
    *,
    evidence: Callable[[Ballot], float] | None = None,
    facts: Mapping[str, str] | None = None,
) -> list[Work]:
    """The photo pools' step: judge, record each verdict on its photo, return the works touched.

    The verdict goes to ``photo.quality`` or ``photo.relevant`` (``stage`` says which); only
    works still at ``stage`` are touched, so a late answer changes nothing. A verdict too
    unsure to act on under ``fallback = hold`` holds the whole work for a person.
    ``evidence`` is the automatic photo checks' log-odds for a task (dynamic policy only).
    """
    done, results = aggregate_new_answers(
        ledger, stage, stage, assignments, rules, skills, now, outcome, refused=refused, evidence=evidence,
        outages=outages, facts=facts,
    )
    touched: dict[str, Work] = {}
    for task_id, ballots in done.items():
        first = ballots[0]
        work = ledger.works.get(first.pedestrian_assignment_id)
        group = work.groups.get(first.group.rsplit("/", 1)[-1]) if work else None
        photo = group.photo(first.photo_id) if group else None
        if work is None or photo is None or work.stage != stage:
            continue
        verdict = passed(results[task_id], rules)
        if verdict is None:
            hold(ledger, outcome, work, stage, first.group, results[task_id], now)
            touched.pop(work.assignment_id, None)
            continue
        if stage == "quality":
            photo.quality = verdict
        else:
            photo.relevant = verdict
        if results[task_id].status == "unsure":
            note_fallback(outcome, work, stage, first.group, photo.photo_id, results[task_id], now)
        touched[work.assignment_id] = work
    return list(touched.values())


def note_fallback(outcome: Outcome, work: Work, handler: str, group: str, subject: str, finding: Finding,
                  now: datetime) -> None:
    """Record that a check passed only by the ``fallback = accept`` rule (the answers never became sure)."""
    outcome.add(work.assignment_id, decisions(
        f"{work.assignment_id}/{handler}/unsure/{finding.task_id}",
        [decision_row(now, work, handler, group, flow.FALLBACK_ACCEPT, f"{subject}: {_unsure_text(finding)}")]))


def _unsure_text(finding: Finding) -> str:
    return f"unsure after all answers ({finding.label} {finding.confidence:.3f})"


def hold(ledger: Ledger, outcome: Outcome, work: Work, handler: str, group: str, finding: Finding,
         now: datetime) -> None:
    """Keep a work for a person: nothing accepted or rejected; listed in ``held.tsv`` and on the status page."""
    reason = f"{handler}: task {finding.task_id} {_unsure_text(finding)}"
    ledger.held[work.assignment_id] = reason
    outcome.add(
        work.assignment_id,
        AppendRows("held", work.assignment_id, ({
            "date_time": stamp(now), "pedestrian_assignment_id": work.assignment_id, "worker_id": work.user_id,
            "name": work.name, "address": work.address, "stage": handler, "reason": reason,
        },)),
        decisions(f"{work.assignment_id}/final", [decision_row(now, work, handler, group, flow.HOLD, reason)]),
    )
    outcome.warning(f"{work.assignment_id} held for a person: {reason}")
    finish(ledger, outcome, work)


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
    """Reject the pedestrian assignment and drop its work from the ledger.

    While the pool's negative verdicts surge far above their usual level (see
    :func:`aggregation.evidence.surge`) the rejection waits instead, with its
    reason in the decision log; :func:`release_deferred` carries it out later.
    """
    book = ledger.books.get(handler)
    why = surge(book) if book is not None else None
    if why is not None:
        if work.assignment_id not in ledger.deferred:
            ledger.deferred[work.assignment_id] = DeferredReject(handler, group, comment, why)
            outcome.add(work.assignment_id, decisions(
                f"{work.assignment_id}/deferred/{handler}",
                [decision_row(now, work, handler, group, flow.REJECT_WAITS, f"{comment}: {why}")]))
            outcome.warning(f"{work.assignment_id}: rejection ({comment}) waits: {handler} pool: {why}")
        return
    ledger.deferred.pop(work.assignment_id, None)
    outcome.add(
        work.assignment_id,
        set_status(now, work, handler, group, "REJECTED", comment),
        decisions(f"{work.assignment_id}/final", [decision_row(now, work, handler, group, flow.REJECT, comment)]),
    )
    outcome.info(f"{work.assignment_id} rejected: {comment}")
    finish(ledger, outcome, work)


def release_deferred(ledger: Ledger, kind: str, outcome: Outcome, now: datetime) -> None:
    """Carry out the rejections of ``kind``'s pool that waited, once its verdicts are back to their usual level."""
    book = ledger.books.get(kind)
    if not ledger.deferred or book is None or surge(book) is not None:
        return
    for pa, wait in list(ledger.deferred.items()):
        work = ledger.works.get(pa)
        if wait.handler != kind:
            continue
        if work is None:
            del ledger.deferred[pa]
            continue
        reject(ledger, outcome, work, wait.handler, wait.group, wait.comment, now)


def finish(ledger: Ledger, outcome: Outcome, work: Work) -> None:
    """Forget a decided work; its waiting ballots go at the next :func:`complete` of their pool."""
    ledger.works.pop(work.assignment_id, None)
    ledger.deferred.pop(work.assignment_id, None)
    outcome.decided += 1


def _photo_decided(work: Work, stage: Stage, group_id: str, photo_id: str) -> bool:
    if stage == "visit":
        return False
    group = work.groups.get(group_id.rsplit("/", 1)[-1])
    photo = group.photo(photo_id) if group else None
    if photo is None:
        return True  # not a photo of this work: nothing to count it for
    return (photo.quality if stage == "quality" else photo.relevant) is not None
