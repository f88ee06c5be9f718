"""Every decision of every handler, driven with assignments shaped as the API serves them."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest

from engine.actions import CopyPhoto, CreateTasks, LinkTo, PayBonus, SetStatus, StorePhoto, operation_uuid
from handlers import pedestrian, quality, relevance, visit
from handlers.state import Ledger
from tests.handlers.builders import NOW, RULES, answer, created_tasks, events, pedestrian_assignment, rows

PA = "0000000001--pa1"


def submit(ledger: Ledger, **kwargs: object) -> list:
    return pedestrian.handle(ledger, [pedestrian_assignment(**kwargs)], RULES, NOW).actions  # type: ignore[arg-type]


def vote(handler, ledger: Ledger, tasks: list[dict], labels_by_worker: dict[str, list[str]]):
    """Each worker answers ``tasks`` (in order) with the given labels, one assignment per worker."""
    pool = tasks[0]["_id"].split(":")[0]
    batch = [answer(pool, w, list(zip(tasks, labels))) for w, labels in labels_by_worker.items()]
    return handler.handle(ledger, batch, RULES, {}, NOW)


def through_visit(ledger: Ledger, **kwargs: object) -> list[dict]:
    visit_tasks = created_tasks(submit(ledger, **kwargs), "2")
    out = vote(visit, ledger, visit_tasks, {"w1": ["yes"], "w2": ["yes"], "w3": ["no"]})
    return created_tasks(out.actions, "3")


def through_quality(ledger: Ledger, bad: set[str] = frozenset(), **kwargs: object) -> list[dict]:
    tasks = through_visit(ledger, **kwargs)
    labels = ["bad" if t["photo_id"] in bad else "ok" for t in tasks]
    out = vote(quality, ledger, tasks, {"q1": labels, "q2": labels, "q3": labels})
    return created_tasks(out.actions, "4")


# -- pedestrian -------------------------------------------------------------


def test_submitted_assignment_stores_counted_photos_and_creates_one_visit_task() -> None:
    ledger = Ledger()
    actions = submit(ledger)
    stored = [a for a in actions if isinstance(a, StorePhoto)]
    assert [(a.attachment_id, a.dst_key) for a in stored] == [
        ("f0", f"tmp/2026-11-22/{PA}/imgs_facade/0.jpg"),
        ("f1", f"tmp/2026-11-22/{PA}/imgs_facade/1.jpg"),
        ("n0", f"tmp/2026-11-22/{PA}/name_business/0.jpg"),
        ("a0", f"tmp/2026-11-22/{PA}/imgs_name_address/0.jpg"),
        ("i0", f"tmp/2026-11-22/{PA}/imgs_interior/0.jpg"),  # menu's flag is "no": not taken
    ]
    (create,) = [a for a in actions if isinstance(a, CreateTasks)]
    assert create.pool_id == "2" and create.operation_id == operation_uuid("visit", PA)
    (task,) = create.tasks
    assert task.unavailable_for == ("walker",) and task.overlap == 3
    assert task.input_values["pedestrian_assignment_id"] == PA
    assert task.input_values["name"] == "Cafe Tab\tName" and task.input_values["segment"] == "cafe"
    assert task.input_values["verdict"] == "ok" and task.input_values["worker_coordinates"] == "55.1,37.2"
    assert task.input_values["imgs_facade"] == [LinkTo(stored[0].dst_key), LinkTo(stored[1].dst_key)]
    assert "imgs_menu" not in task.input_values
    # photos are stored before the task that links to them is created
    assert actions.index(create) > max(actions.index(a) for a in stored)
    assert events(actions) == ["submit", "to visit validation"]


def test_a_redelivered_assignment_changes_nothing() -> None:
    ledger = Ledger()
    submit(ledger)
    assert submit(ledger) == []
    assert list(ledger.works) == [PA]


@pytest.mark.parametrize("status", ["REJECTED", "ACCEPTED"])
def test_work_decided_before_it_reached_the_handler_is_left_alone(status: str) -> None:
    """After a start with --fresh (or a person's decision in Toloka's interface) the event still
    arrives; deciding it again could accept rejected work and pay for it."""
    import dataclasses

    ledger = Ledger()
    decided = dataclasses.replace(pedestrian_assignment(), status=status)
    outcome = pedestrian.handle(ledger, [decided], RULES, NOW)
    assert outcome.actions == [] and ledger.works == {} and outcome.reviewing == []
    assert any(f"already {status} on Toloka" in note.message for note in outcome.notes)


@pytest.mark.parametrize(
    "kwargs, reason",
    [
        ({"verdict": "maybe"}, "'verdict' is 'maybe'"),
        ({"photos": {"imgs_facade": [1, 2]}}, "photo field 'imgs_facade'"),
        ({"org": {"address": "x", "coordinates": "1,2"}}, "task input lacks name"),
    ],
)
def test_a_malformed_assignment_is_held_and_the_others_go_on(kwargs: dict, reason: str) -> None:
    ledger = Ledger()
    bad = pedestrian_assignment("0000000001--bad", **kwargs)
    good = pedestrian_assignment(PA)
    outcome = pedestrian.handle(ledger, [bad, good], RULES, NOW)
    assert reason in ledger.held["0000000001--bad"]
    assert any(reason in n.message for n in outcome.notes)
    assert list(ledger.works) == [PA]
    assert {c for c in outcome.chains} == {PA}


def test_submitted_work_is_reported_for_review_with_its_reward() -> None:
    """The engine learns which assignments are under review (rewards owed, auto-accept warnings) from the handler."""
    ledger = Ledger()
    assignment = pedestrian_assignment(PA, submitted=NOW - timedelta(days=1))
    outcome = pedestrian.handle(ledger, [assignment], RULES, NOW)
    [review] = outcome.reviewing
    assert (review.assignment_id, review.pool, review.submitted) == (PA, "pedestrian", assignment.submitted)
    assert review.reward == (assignment.reward or Decimal(0)) and ledger.works[PA].name in review.label
    assert pedestrian.handle(ledger, [assignment], RULES, NOW).reviewing == []  # a re-delivery is not new work


# -- visit --------------------------------------------------------------------


@pytest.mark.parametrize(
    "verdict, labels, expected_events, status",
    [
        ("ok", ["yes", "yes", "no"], ["to quality validation"] * 2, None),
        ("ok", ["no", "no", "yes"], ["REJECT assignment"], ("REJECTED", "Incorrect object")),
        ("no_org", ["yes", "no", "yes"], ["ACCEPT assignment"], ("ACCEPTED", "Good job")),
        ("no_org", ["no", "no", "no"], ["REJECT assignment"], ("REJECTED", "Incorrect object")),
    ],
)
def test_visit_decisions(verdict: str, labels: list[str], expected_events: list[str], status: tuple | None) -> None:
    ledger = Ledger()
    tasks = created_tasks(submit(ledger, verdict=verdict), "2")
    out = vote(visit, ledger, tasks, {f"w{i}": [label] for i, label in enumerate(labels)})
    assert events(out.actions) == expected_events
    statuses = [(a.status, a.comment) for a in out.actions if isinstance(a, SetStatus)]
    assert statuses == ([status] if status else [])
    assert len(rows(out.actions, "answers")) == 3
    assert rows(out.actions, "no_org") == ([] if verdict == "ok" or status[0] == "REJECTED" else [
        {"name": "Cafe Tab\tName", "address": "Main st. 1", "coordinates": "55.1,37.2", "segment": "cafe",
         "pedestrian_assignment_id": PA, "worker_id": "walker", "worker_coordinates": "55.1,37.2",
         "comment": "all fine", "decided": "2026-11-22 12:00:00"}])
    assert (PA in ledger.works) == (status is None)
    assert out.decided == (0 if status is None else 1)


def test_visit_yes_creates_one_quality_task_per_photo_grouped() -> None:
    ledger = Ledger()
    tasks = through_visit(ledger)
    assert [(t["group"], t["photo_id"]) for t in tasks] == [
        (f"{PA}/main", "imgs_facade/0"), (f"{PA}/main", "imgs_facade/1"), (f"{PA}/main", "name_business/0"),
        (f"{PA}/main", "imgs_name_address/0"), (f"{PA}/imgs_interior", "imgs_interior/0"),
    ]
    assert tasks[0]["image"] == LinkTo(f"tmp/2026-11-22/{PA}/imgs_facade/0.jpg")
    assert ledger.works[PA].stage == "quality"


def test_answers_complete_across_ticks_and_late_answers_are_dropped() -> None:
    ledger = Ledger()
    tasks = created_tasks(submit(ledger), "2")
    assert vote(visit, ledger, tasks, {"w1": ["no"], "w2": ["no"]}).actions == []
    assert len(ledger.ballots["visit"][tasks[0]["_id"]]) == 2
    out = vote(visit, ledger, tasks, {"w3": ["yes"]})
    assert events(out.actions) == ["REJECT assignment"]
    late = vote(visit, ledger, tasks, {"w4": ["yes"]})
    assert late.actions == [] and ledger.ballots["visit"] == {}


def test_the_same_answer_delivered_twice_counts_once() -> None:
    ledger = Ledger()
    tasks = created_tasks(submit(ledger), "2")
    twice = answer("2", "w1", [(tasks[0], "no")], assignment_id="2--dup")
    visit.handle(ledger, [twice, twice], RULES, {}, NOW)
    visit.handle(ledger, [twice], RULES, {}, NOW)
    assert len(ledger.ballots["visit"][tasks[0]["_id"]]) == 1


def test_golden_foreign_and_unreadable_answers_are_skipped() -> None:
    ledger = Ledger()
    tasks = created_tasks(submit(ledger), "2")
    golden = answer("2", "g", [(tasks[0], "yes")], golden=True)
    foreign = answer("2", "f", [({"_id": "other", "pedestrian_assignment_id": "someone-else"}, "yes")])
    garbage = answer("2", "x", [(tasks[0], "perhaps")])
    out = visit.handle(ledger, [golden, foreign, garbage], RULES, {}, NOW)
    assert ledger.ballots.get("visit", {}) == {}
    assert any("'perhaps'" in n.message for n in out.notes)


def test_skill_weighted_majority_uses_the_given_skills() -> None:
    ledger = Ledger()
    tasks = created_tasks(submit(ledger), "2")
    batch = [answer("2", w, [(tasks[0], label)]) for w, label in [("expert", "no"), ("n1", "yes"), ("n2", "yes")]]
    out = visit.handle(ledger, batch, RULES, {"expert": 95, "n1": 10, "n2": 10}, NOW)
    assert events(out.actions) == ["REJECT assignment"]
    assert {r["worker"]: r["skill"] for r in rows(out.actions, "answers")} == {"expert": 95, "n1": 10, "n2": 10}


# -- quality -------------------------------------------------------------------


def test_a_multi_task_assignment_answers_each_task() -> None:
    ledger = Ledger()
    tasks = through_visit(ledger)
    out = vote(quality, ledger, tasks, {w: ["ok"] * len(tasks) for w in ("q1", "q2", "q3")})
    rel = created_tasks(out.actions, "4")
    assert len(rel) == 5 and ledger.works[PA].stage == "relevance"
    assert events(out.actions).count("GOOD image") == 5


def test_main_without_a_good_required_photo_is_rejected_for_quality() -> None:
    ledger = Ledger()
    tasks = through_visit(ledger)
    labels = ["ok" if t["photo_id"] != "name_business/0" else "bad" for t in tasks]
    out = vote(quality, ledger, tasks, dict.fromkeys(("q1", "q2", "q3"), labels))
    assert [(a.status, a.comment) for a in out.actions if isinstance(a, SetStatus)] == [("REJECTED", "Low quality photos")]
    assert created_tasks(out.actions, "4") == []
    assert PA not in ledger.works and all(not box for box in ledger.ballots.values())


def test_one_good_photo_of_a_required_field_is_enough() -> None:
    ledger = Ledger()
    rel = through_quality(ledger, bad={"imgs_facade/1"})
    assert [t["photo_id"] for t in rel] == ["imgs_facade/0", "name_business/0", "imgs_name_address/0", "imgs_interior/0"]


def test_a_bonus_group_without_a_good_photo_is_dropped() -> None:
    ledger = Ledger()
    rel = through_quality(ledger, bad={"imgs_interior/0"})
    assert "imgs_interior/0" not in [t["photo_id"] for t in rel]
    assert ledger.works[PA].groups["imgs_interior"].status == "dropped"


def test_groups_decided_across_ticks_send_relevance_tasks_once_all_are_decided() -> None:
    ledger = Ledger()
    tasks = through_visit(ledger)
    main, bonus = tasks[:4], tasks[4:]
    first = vote(quality, ledger, main, {w: ["ok"] * 4 for w in ("q1", "q2", "q3")})
    assert created_tasks(first.actions, "4") == [] and events(first.actions) == ["GOOD image"] * 4
    second = vote(quality, ledger, bonus, {w: ["ok"] for w in ("q1", "q2", "q3")})
    assert len(created_tasks(second.actions, "4")) == 5


def test_a_work_without_photos_is_rejected_right_after_the_visit_check() -> None:
    ledger = Ledger()
    visit_tasks = created_tasks(submit(ledger, photos={}), "2")
    out = vote(visit, ledger, visit_tasks, {"w1": ["yes"], "w2": ["yes"], "w3": ["yes"]})
    assert [(a.status, a.comment) for a in out.actions if isinstance(a, SetStatus)] == [("REJECTED", "Low quality photos")]


# -- relevance -----------------------------------------------------------------


def test_all_relevant_accepts_copies_writes_results_and_pays_one_bonus() -> None:
    ledger = Ledger()
    rel = through_quality(ledger, flags={"can_take_interior": "yes", "can_take_menu": "yes"})
    out = vote(relevance, ledger, rel, {w: ["relevant"] * len(rel) for w in ("r1", "r2", "r3")})
    actions = out.actions
    copies = [(a.src_key, a.dst_key) for a in actions if isinstance(a, CopyPhoto)]
    assert (f"tmp/2026-11-22/{PA}/imgs_facade/0.jpg", f"main/{PA}/imgs_facade/0.jpg") in copies
    assert (f"tmp/2026-11-22/{PA}/imgs_menu/0.jpg", f"main_bonus/{PA}/imgs_menu/0.jpg") in copies
    assert len(copies) == 6
    assert [(a.status, a.comment) for a in actions if isinstance(a, SetStatus)] == [("ACCEPTED", "Good job")]
    (bonus,) = [a for a in actions if isinstance(a, PayBonus)]
    assert bonus.amount == Decimal("0.10") and bonus.assignment_id == PA and bonus.user_id == "walker"
    assert "imgs_interior" in bonus.message and "imgs_menu" in bonus.message
    assert bonus.operation_id == operation_uuid("bonus", PA)
    (main_row,) = rows(actions, "main_tasks")
    assert main_row["imgs_facade"] == [LinkTo(f"main/{PA}/imgs_facade/0.jpg"), LinkTo(f"main/{PA}/imgs_facade/1.jpg")]
    assert main_row["hoo_business"] == []
    assert [r["bonus_field"] for r in rows(actions, "bonus_tasks")] == ["imgs_interior", "imgs_menu"]
    # copies happen before the assignment is accepted and the bonus paid
    first_status = next(i for i, a in enumerate(actions) if isinstance(a, SetStatus))
    assert all(i < first_status for i, a in enumerate(actions) if isinstance(a, CopyPhoto))
    assert events(actions)[-2:] == ["ACCEPT assignment", "PAY bonus"]
    assert PA not in ledger.works and out.decided == 1


def test_main_without_a_relevant_required_photo_is_rejected() -> None:
    ledger = Ledger()
    rel = through_quality(ledger)
    labels = ["not_relevant" if t["photo_id"] == "imgs_name_address/0" else "relevant" for t in rel]
    out = vote(relevance, ledger, rel, dict.fromkeys(("r1", "r2", "r3"), labels))
    assert [(a.status, a.comment) for a in out.actions if isinstance(a, SetStatus)] == [("REJECTED", "Not relevant photos")]
    assert not [a for a in out.actions if isinstance(a, (PayBonus, CopyPhoto))]


def test_no_relevant_bonus_photo_means_no_bonus() -> None:
    ledger = Ledger()
    rel = through_quality(ledger)
    labels = ["not_relevant" if t["photo_id"].startswith("imgs_interior") else "relevant" for t in rel]
    out = vote(relevance, ledger, rel, dict.fromkeys(("r1", "r2", "r3"), labels))
    assert [a.status for a in out.actions if isinstance(a, SetStatus)] == ["ACCEPTED"]
    assert not [a for a in out.actions if isinstance(a, PayBonus)] and rows(out.actions, "bonus_tasks") == []


def test_relevance_waits_for_every_group() -> None:
    ledger = Ledger()
    rel = through_quality(ledger)
    main = [t for t in rel if t["group"].endswith("/main")]
    out = vote(relevance, ledger, main, {w: ["relevant"] * len(main) for w in ("r1", "r2", "r3")})
    assert not [a for a in out.actions if isinstance(a, SetStatus)]
    assert PA in ledger.works


def test_handlers_replayed_from_the_same_state_decide_the_same() -> None:
    import copy

    ledger = Ledger()
    rel = through_quality(ledger)
    snapshot = copy.deepcopy(ledger)
    batch = {w: ["relevant"] * len(rel) for w in ("r1", "r2", "r3")}
    first = vote(relevance, ledger, rel, batch).actions
    again = vote(relevance, snapshot, rel, batch).actions
    assert [a.key for a in first] == [a.key for a in again]


def test_waiting_ballots_of_a_decided_work_are_dropped_at_the_next_call() -> None:
    ledger = Ledger()
    tasks = through_visit(ledger)
    main, bonus = tasks[:4], tasks[4:]
    vote(quality, ledger, bonus, {"q1": ["ok"]})  # one of three answers: waits
    assert len(ledger.ballots["quality"]) == 1
    labels = ["bad" if t["photo_id"] == "name_business/0" else "ok" for t in main]
    out = vote(quality, ledger, main, dict.fromkeys(("q1", "q2", "q3"), labels))
    assert [a.status for a in out.actions if isinstance(a, SetStatus)] == ["REJECTED"]
    vote(quality, ledger, bonus, {"q2": ["ok"]})  # a late answer for the decided work
    assert ledger.ballots["quality"] == {}
