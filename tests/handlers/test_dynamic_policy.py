"""The dynamic policy in the handlers: buy answers while unsure, reject on evidence, fall back, learn."""

from __future__ import annotations

import dataclasses
import logging
from datetime import timedelta

from aggregation.evidence import Policy
from engine.actions import CreateTasks, RaiseOverlap, RestrictWorker, SetStatus
from handlers import flow, pedestrian, quality, visit
from handlers.state import Ledger
from tests.handlers.builders import NOW, RULES, Rules, answer, created_tasks, events, pedestrian_assignment, rows

POLICY = Policy(min_overlap=2, max_overlap=4, confidence=0.9, reject_confidence=0.99, fallback="accept")


def rules_with(policy: Policy = POLICY) -> Rules:
    return Rules(
        visit=dataclasses.replace(RULES.visit, policy=policy, overlap=policy.min_overlap, section="ValidationVisit"),
        quality=dataclasses.replace(RULES.quality, policy=policy, overlap=policy.min_overlap,
                                    section="ValidationQuality"),
        relevance=dataclasses.replace(RULES.relevance, policy=policy, overlap=policy.min_overlap,
                                      section="ValidationRelevance"),
    )


DYNAMIC = rules_with()
SKILLS = {f"w{n}": 80.0 for n in range(10)}  # every checker's Toloka skill: a prior accuracy of 0.8


def submit(ledger: Ledger, rules: Rules = DYNAMIC, **kwargs: object) -> list[dict]:
    actions = pedestrian.handle(ledger, [pedestrian_assignment(**kwargs)], rules, NOW).actions  # type: ignore[arg-type]
    return created_tasks(actions, "2")


def answers(handler, ledger: Ledger, rules: Rules, task: dict, labels: dict[str, str], **kwargs):
    pool = task["_id"].split(":")[0]
    batch = [answer(pool, w, [(task, label)]) for w, label in labels.items()]
    return handler.handle(ledger, batch, rules, SKILLS, NOW, **kwargs)


def test_tasks_start_with_min_overlap_and_two_sure_answers_decide() -> None:
    ledger = Ledger()
    (task,) = submit(ledger)
    out = answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "yes"})
    assert not [a for a in out.actions if isinstance(a, RaiseOverlap)]
    assert flow.TO_QUALITY in events(out.actions)
    (row, _) = rows(out.actions, "answers")
    assert 0.9 <= float(row["confidence"]) <= 1.0


def test_a_split_vote_raises_the_overlap_once_and_the_next_answer_decides() -> None:
    ledger = Ledger()
    (task,) = submit(ledger)
    out = answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "no"})
    (raise_,) = [a for a in out.actions if isinstance(a, RaiseOverlap)]
    assert (raise_.pool_id, raise_.task_id, raise_.overlap) == ("2", task["_id"], 3)
    assert raise_.key == f"overlap:{task['_id']}:3"
    assert not rows(out.actions, "answers")  # nothing judged yet
    out = answers(visit, ledger, DYNAMIC, task, {"w3": "yes"})  # 2:1 with equal workers: 80%, not 90%
    assert [a.overlap for a in out.actions if isinstance(a, RaiseOverlap)] == [4]
    out = answers(visit, ledger, DYNAMIC, task, {"w4": "yes"})  # 3:1: 94%
    assert flow.TO_QUALITY in events(out.actions)
    assert len(rows(out.actions, "answers")) == 4


def test_one_noisy_no_does_not_reject_work_more_answers_are_bought() -> None:
    ledger = Ledger()
    (task,) = submit(ledger)
    out = answers(visit, ledger, DYNAMIC, task, {"w1": "no", "w2": "no"})  # 94% bad: not 99%
    assert not [a for a in out.actions if isinstance(a, SetStatus)]
    assert [a.overlap for a in out.actions if isinstance(a, RaiseOverlap)] == [3]
    out = answers(visit, ledger, DYNAMIC, task, {"w3": "no"})  # 98.5%: still not enough
    assert [a.overlap for a in out.actions if isinstance(a, RaiseOverlap)] == [4]
    out = answers(visit, ledger, DYNAMIC, task, {"w4": "no"})  # 99.6%
    (status,) = [a for a in out.actions if isinstance(a, SetStatus)]
    assert status.status == "REJECTED" and status.comment == "Incorrect object"


def test_unsure_at_max_overlap_falls_back_to_accept_and_says_so() -> None:
    ledger = Ledger()
    (task,) = submit(ledger)
    answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "no"})
    answers(visit, ledger, DYNAMIC, task, {"w3": "yes"})
    out = answers(visit, ledger, DYNAMIC, task, {"w4": "no"})  # 2:2 at max_overlap 4
    assert flow.FALLBACK_ACCEPT in events(out.actions)
    assert flow.TO_QUALITY in events(out.actions)
    assert not [a for a in out.actions if isinstance(a, (SetStatus, RaiseOverlap))]


def test_unsure_with_fallback_hold_keeps_the_work_for_a_person() -> None:
    rules = rules_with(dataclasses.replace(POLICY, fallback="hold"))
    ledger = Ledger()
    (task,) = submit(ledger, rules)
    answers(visit, ledger, rules, task, {"w1": "yes", "w2": "no"})
    answers(visit, ledger, rules, task, {"w3": "yes"})
    out = answers(visit, ledger, rules, task, {"w4": "no"})
    assert flow.HOLD in events(out.actions)
    (held,) = rows(out.actions, "held")
    assert held["pedestrian_assignment_id"] == "0000000001--pa1" and "unsure" in str(held["reason"])
    assert not [a for a in out.actions if isinstance(a, (SetStatus, CreateTasks))]
    assert "0000000001--pa1" in ledger.held and not ledger.works


def test_a_no_org_claim_from_kilometres_away_is_not_believed() -> None:
    ledger = Ledger()
    far_org = {"name": "Cafe", "address": "Main st. 1", "coordinates": "55.28,37.2"}  # the worker: 55.1,37.2
    (task,) = submit(ledger, verdict="no_org", photos={}, flags={}, org=far_org)
    out = answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "yes"})
    assert [a.status for a in out.actions if isinstance(a, SetStatus)] == ["REJECTED"]
    assert not rows(out.actions, "no_org")


def test_the_distance_check_is_recorded_at_submission() -> None:
    ledger = Ledger()
    far_org = {"name": "Cafe", "address": "Main st. 1", "coordinates": "55.28,37.2"}
    actions = pedestrian.handle(ledger, [pedestrian_assignment(org=far_org)], DYNAMIC, NOW).actions
    (row,) = [r for r in rows(actions, "decisions") if r["event"] == flow.DISTANCE]
    assert "20015 m" in str(row["comment"]) and "beyond 500 m" in str(row["comment"])


def test_a_nearby_no_org_claim_confirmed_by_the_checkers_is_accepted() -> None:
    ledger = Ledger()
    (task,) = submit(ledger, verdict="no_org", photos={}, flags={})
    out = answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "yes"})
    assert [a.status for a in out.actions if isinstance(a, SetStatus)] == ["ACCEPTED"]


def test_control_answers_score_the_checkers_and_are_not_ballots() -> None:
    ledger = Ledger()
    submit(ledger)
    control = {"_id": "2:control:1", "name": "x"}
    batch = [answer("2", "w1", [(control, "yes")], golden=True)]
    visit.handle(ledger, batch, DYNAMIC, SKILLS, NOW)
    record = ledger.books["visit"].workers["w1"]
    assert (record.controls, record.controls_right) == (1, 1)
    assert "2:control:1" not in ledger.ballots_of("visit")


def test_a_control_with_foreign_labels_is_ignored_with_one_warning() -> None:
    ledger = Ledger()
    submit(ledger)
    control = {"_id": "2:control:odd", "name": "x"}
    out1 = visit.handle(ledger, [answer("2", "w1", [(control, "maybe")], golden=True)], DYNAMIC, SKILLS, NOW)
    out2 = visit.handle(ledger, [answer("2", "w2", [(control, "maybe")], golden=True)], DYNAMIC, SKILLS, NOW)
    warnings = [n.message for n in out1.notes + out2.notes if n.level == logging.WARNING]
    assert len(warnings) == 1 and "2:control:odd" in warnings[0]
    assert "w1" not in ledger.books.get("visit", ledger.book("visit")).workers


def test_a_refused_raise_decides_the_task_with_the_answers_it_has() -> None:
    ledger = Ledger()
    (task,) = submit(ledger)
    out = answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "no"})
    (raise_,) = [a for a in out.actions if isinstance(a, RaiseOverlap)]
    assert raise_.if_refused is not None and raise_.if_refused.rows[0]["event"] == flow.OVERLAP_REFUSED
    out = visit.handle(ledger, [], DYNAMIC, SKILLS, NOW, {raise_.key: "the pool is closed"})
    assert out.acknowledged == [raise_.key]
    assert flow.TO_QUALITY in events(out.actions) or flow.FALLBACK_ACCEPT in events(out.actions)
    assert task["_id"] not in ledger.ballots_of("visit") and not ledger.exhausted


def test_quality_rejects_only_when_a_required_field_is_bad_with_evidence() -> None:
    ledger = Ledger()
    (task,) = submit(ledger)
    photo_tasks = created_tasks(answers(visit, ledger, DYNAMIC, task, {"w1": "yes", "w2": "yes"}).actions, "3")
    sign = next(t for t in photo_tasks if t["image_field"] == "name_business")  # its only photo
    for t in photo_tasks:
        label = "bad" if t is sign else "ok"
        out = answers(quality, ledger, DYNAMIC, t, {"w1": label, "w2": label})
        assert not [a for a in out.actions if isinstance(a, SetStatus)]  # two "bad" are not proof
    out = answers(quality, ledger, DYNAMIC, sign, {"w3": "bad"})
    assert not [a for a in out.actions if isinstance(a, SetStatus)]
    out = answers(quality, ledger, DYNAMIC, sign, {"w4": "bad"})
    assert [(a.status, a.comment) for a in out.actions if isinstance(a, SetStatus)] == [
        ("REJECTED", "Low quality photos")]


def test_an_old_file_without_the_policy_keeps_the_fixed_overlap() -> None:
    assert RULES.visit.policy is None
    ledger = Ledger()
    (task,) = submit(ledger, RULES)
    out = answers(visit, ledger, RULES, task, {"w1": "yes", "w2": "no"})
    assert not out.actions  # waits for the third answer; never raises
    out = answers(visit, ledger, RULES, task, {"w3": "no"})
    assert [a.status for a in out.actions if isinstance(a, SetStatus)] == ["REJECTED"]


def test_a_checker_failing_control_tasks_is_restricted_once_and_weighs_nothing_after() -> None:
    rules = Rules(visit=dataclasses.replace(DYNAMIC.visit, restrict_below=0.55, restrict_after_controls=6),
                  quality=DYNAMIC.quality, relevance=DYNAMIC.relevance)
    ledger = Ledger()
    submit(ledger, rules)
    restricted = []
    for n in range(8):  # a spammer: "yes" to every control, half of which are "no"
        control = {"_id": f"2:control:{n}", "name": "x"}
        truth = "yes" if n % 2 else "no"
        batch = [answer("2", "spam", [(control, truth)], golden=True)]
        batch[0] = dataclasses.replace(batch[0], solutions=tuple(
            dataclasses.replace(s, output_values={"result": "yes"}) for s in batch[0].solutions))
        out = visit.handle(ledger, batch, rules, SKILLS, NOW)
        restricted += [a for a in out.actions if isinstance(a, RestrictWorker)]
        if restricted:
            assert flow.RESTRICT in events(out.actions)
            break
    (action,) = restricted
    assert (action.pool_id, action.user_id) == ("2", "spam") and "learned accuracy" in action.private_comment
    record = ledger.books["visit"].workers["spam"]
    assert record.ignored and record.controls >= 6
    # A task taken after the restriction means a person lifted it: the worker starts afresh.
    later = dataclasses.replace(answer("2", "spam", [({"_id": "2:control:x", "name": "x"}, "yes")], golden=True),
                                created=NOW + timedelta(hours=1))
    visit.handle(ledger, [later], rules, SKILLS, NOW + timedelta(hours=1))
    assert not ledger.books["visit"].workers["spam"].ignored


def test_a_pedestrian_with_repeated_incorrect_object_rejections_is_restricted() -> None:
    rules = Rules(pedestrian=dataclasses.replace(RULES.pedestrian, restrict_after_rejections=2),
                  visit=DYNAMIC.visit, quality=DYNAMIC.quality, relevance=DYNAMIC.relevance)
    ledger = Ledger()
    found = []
    for n in range(3):
        (task,) = submit(ledger, rules, assignment_id=f"000000000{n}--pa{n}")
        out = answers(visit, ledger, rules, task, {f"w{k}": "no" for k in range(4)})
        found += [a for a in out.actions if isinstance(a, RestrictWorker)]
    (action,) = found  # once, at the second rejection
    assert (action.pool_id, action.user_id) == ("1", "walker")


def test_negative_answers_sent_during_a_photo_store_outage_are_void_and_asked_again() -> None:
    from engine.spec import Outage

    outage = (Outage(NOW - timedelta(minutes=10), NOW - timedelta(minutes=2), "links time out"),)
    for rules in (DYNAMIC, RULES):  # the dynamic policy and an old fixed-overlap file alike
        ledger = Ledger()
        (task,) = submit(ledger, rules)
        during, after = NOW - timedelta(minutes=5), NOW - timedelta(minutes=1)
        batch = [dataclasses.replace(answer("2", w, [(task, label)]), submitted=at)
                 for w, label, at in (("w1", "no", during), ("w2", "yes", during), ("w3", "no", during))]
        out = visit.handle(ledger, batch, rules, SKILLS, NOW, None, outage)
        assert not [a for a in out.actions if isinstance(a, SetStatus)]  # nobody is rejected on blind answers
        (raise_,) = [a for a in out.actions if isinstance(a, RaiseOverlap)]
        assert raise_.overlap == rules.visit.overlap + 2  # two answers voided: two more asked for
        assert [b.worker_id for b in ledger.ballots_of("visit")[task["_id"]]] == ["w2"]
        later = [dataclasses.replace(answer("2", w, [(task, "yes")]), submitted=after) for w in ("w4", "w5")]
        out = visit.handle(ledger, later, rules, SKILLS, NOW, None, outage)
        assert flow.TO_QUALITY in events(out.actions), rules


def test_unsure_with_fallback_lean_accepts_a_task_leaning_fine_and_holds_one_leaning_bad() -> None:
    rules = rules_with(dataclasses.replace(POLICY, fallback="lean"))
    weak = {f"w{n}": 60.0 for n in range(10)}  # checkers this weak leave 3:1 unsure at max_overlap 4

    def answered(ledger: Ledger, task: dict, labels: dict[str, str]):
        batch = [answer(task["_id"].split(":")[0], w, [(task, label)]) for w, label in labels.items()]
        return visit.handle(ledger, batch, rules, weak, NOW)

    leaning_fine = Ledger()
    (task,) = submit(leaning_fine, rules)
    answered(leaning_fine, task, {"w1": "yes", "w2": "no"})
    answered(leaning_fine, task, {"w3": "yes"})
    out = answered(leaning_fine, task, {"w4": "yes"})
    assert flow.FALLBACK_ACCEPT in events(out.actions) and flow.TO_QUALITY in events(out.actions)
    assert flow.HOLD not in events(out.actions)

    leaning_bad = Ledger()
    (task,) = submit(leaning_bad, rules)
    answered(leaning_bad, task, {"w1": "yes", "w2": "no"})
    answered(leaning_bad, task, {"w3": "no"})
    out = answered(leaning_bad, task, {"w4": "no"})
    assert flow.HOLD in events(out.actions)
    assert not [a for a in out.actions if isinstance(a, SetStatus)]  # nobody is rejected on it


def test_photos_are_measured_only_where_the_automatic_checks_count() -> None:
    from engine.actions import StorePhoto

    def stored(rules: Rules) -> list[StorePhoto]:
        actions = pedestrian.handle(Ledger(), [pedestrian_assignment()], rules, NOW).actions  # type: ignore[arg-type]
        return [a for a in actions if isinstance(a, StorePhoto)]

    assert stored(DYNAMIC) and all(a.measure for a in stored(DYNAMIC))
    assert stored(RULES) and not any(a.measure for a in stored(RULES))  # fixed overlap everywhere: no decode
