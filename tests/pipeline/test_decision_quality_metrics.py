"""bench/decision_quality.py's pure parts: policies applied to toloka.ini, decisions scored against a
hand-made truth, answers and money counted from store documents. Nothing is run."""

from __future__ import annotations

import configparser
from typing import Any

import pytest

from bench.decision_quality import (
    FALLBACK_EVENT,
    HOLD_EVENT,
    POLICIES,
    apply_policy,
    figures,
    final_decisions,
    mean,
    score_decisions,
    spend_of,
)
from handlers import flow

COMMENTS = {"visit": "Incorrect object", "quality": "Low quality photos", "relevance": "Not relevant photos"}

TRUTH = {
    # honest work that deserved acceptance: one accepted, three rejected at three stages, one undecided
    "h1": {"kind": "honest", "expected": "accept", "bonus_fields": ["imgs_menu", "imgs_interior"]},
    "h2": {"kind": "honest", "expected": "accept", "bonus_fields": ["imgs_menu"]},
    "h3": {"kind": "honest", "expected": "accept", "bonus_fields": []},
    "h4": {"kind": "honest", "expected": "no_org", "bonus_fields": []},
    "h5": {"kind": "honest", "expected": "accept", "bonus_fields": []},
    # honest but bad (a spoiled photo): rejected, as expected
    "h6": {"kind": "honest", "expected": "reject", "bonus_fields": []},
    # bad work: a cheat's fake no_org and a sloppy photographed one accepted, a cheat caught, one held
    "c1": {"kind": "cheat", "expected": "reject", "bonus_fields": []},
    "c2": {"kind": "cheat", "expected": "reject", "bonus_fields": []},
    "s1": {"kind": "sloppy", "expected": "reject", "bonus_fields": []},
    "s2": {"kind": "sloppy", "expected": "reject", "bonus_fields": []},
}


def row(aid: str, handler: str, event: str, comment: str = "") -> dict[str, str]:
    return {"pedestrian_assignment_id": aid, "handler": handler, "event": event, "comment": comment}


DECISIONS = [
    row("h1", "pedestrian", flow.SUBMIT, "ok"),
    row("h1", "relevance", flow.PAY_BONUS, "0.10 for imgs_menu, imgs_interior"),
    row("h1", "relevance", flow.ACCEPT, "Good job"),
    row("h2", "visit", flow.REJECT, "Incorrect object"),
    row("h3", "quality", flow.REJECT, "Low quality photos"),
    row("h4", "relevance", flow.REJECT, "Not relevant photos"),
    row("h6", "quality", flow.REJECT, "Low quality photos"),
    row("c1", "visit", flow.ACCEPT, "no_org"),
    row("c2", "pedestrian", flow.REJECT, "Too far from the organization"),  # a reason no pool configures
    row("s1", "relevance", flow.ACCEPT, "Good job"),
    row("x9", "visit", flow.REJECT, "Incorrect object"),  # not in the truth
]
BONUS_ROWS = [
    {"pedestrian_assignment_id": "h1", "bonus_field": "imgs_menu"},
    {"pedestrian_assignment_id": "s1", "bonus_field": "imgs_menu"},
]


def test_final_decisions_read_accept_no_org_and_reject() -> None:
    made = final_decisions(DECISIONS)
    assert {aid: f.decision for aid, f in made.items()} == {
        "h1": "accept", "h2": "reject", "h3": "reject", "h4": "reject", "h6": "reject", "c1": "no_org",
        "c2": "reject", "s1": "accept", "x9": "reject"}
    assert (made["h3"].stage, made["h3"].comment) == ("quality", "Low quality photos")


def test_score_counts_right_good_rejected_by_reason_and_bad_accepted_by_kind_and_how() -> None:
    m = score_decisions(TRUTH, DECISIONS, BONUS_ROWS, reject_comments=COMMENTS, held={"s2"})
    assert (m.submitted, m.decided, m.held, m.undecided, m.unknown_ids) == (10, 8, 1, 1, 1)
    assert m.right == 3  # h1 accept, h6 reject, c2 reject
    assert m.confusion == {"accept->accept": 1, "accept->reject": 2, "no_org->reject": 1, "reject->reject": 2,
                           "reject->no_org": 1, "reject->accept": 1}
    assert m.honest_deserving == 5  # h1-h5; h6 deserved rejection
    assert m.good_rejected == 3
    assert m.good_rejected_by_reason == {"visit": 1, "quality": 1, "relevance": 1}
    assert m.accepted == 3  # h1, c1 (no_org), s1
    assert m.bad_accepted == 2
    assert m.bad_accepted_by_kind == {"cheat": 1, "sloppy": 1}
    assert m.bad_accepted_by_how == {"no_org": 1, "photographed": 1}
    assert m.correct_accepts == 1


def test_hold_rows_count_as_held_and_fallback_accepts_are_counted() -> None:
    truth = {
        "a": {"kind": "honest", "expected": "accept"},
        "b": {"kind": "sloppy", "expected": "reject"},
        "c": {"kind": "cheat", "expected": "reject"},
    }
    rows = [
        row("a", "quality", FALLBACK_EVENT, "imgs_facade/0: unsure"),
        row("a", "quality", FALLBACK_EVENT, "imgs_facade/1: unsure"),
        row("a", "relevance", flow.ACCEPT, "Good job"),
        row("b", "relevance", FALLBACK_EVENT, "unsure"),
        row("b", "relevance", flow.ACCEPT, "Good job"),
        row("c", "visit", HOLD_EVENT, "visit: task 7 unsure after all answers"),
    ]
    m = score_decisions(truth, rows, [], reject_comments=COMMENTS)
    assert (m.decided, m.held, m.undecided) == (2, 1, 0)
    assert (m.fallback_accepted, m.fallback_bad, m.bad_accepted) == (2, 1, 1)


def test_a_reject_comment_no_pool_configures_is_its_own_reason() -> None:
    truth = {"h": {"kind": "honest", "expected": "accept"}}
    m = score_decisions(truth, [row("h", "pedestrian", flow.REJECT, "Too far")], [], reject_comments=COMMENTS)
    assert m.good_rejected_by_reason == {"pedestrian: Too far": 1}


def test_bonus_fields_paid_right_and_deserved_but_unpaid() -> None:
    m = score_decisions(TRUTH, DECISIONS, BONUS_ROWS, reject_comments=COMMENTS)
    assert (m.bonus_paid, m.bonus_right, m.bonus_deserved, m.bonus_unpaid) == (2, 1, 3, 2)


def test_spend_counts_answers_without_control_tasks_and_money_of_accepted_work() -> None:
    pools = {"pedestrian": "1", "visit": "2", "quality": "3", "relevance": "4"}
    tasks: list[dict[str, Any]] = [
        {"id": "t1", "pool_id": "2", "overlap": 5, "infinite_overlap": False},
        {"id": "t2", "pool_id": "2", "overlap": 5, "infinite_overlap": False},
        {"id": "g1", "pool_id": "2", "overlap": None, "infinite_overlap": True, "known_solutions": [{}]},
        {"id": "t3", "pool_id": "3", "overlap": 3, "infinite_overlap": False},
        {"id": "p1", "pool_id": "1", "overlap": 1, "infinite_overlap": False},
    ]
    assignments: list[dict[str, Any]] = [
        {"pool_id": "1", "status": "ACCEPTED", "reward": "0.50", "tasks": [{"id": "p1"}]},
        {"pool_id": "1", "status": "REJECTED", "reward": "0.50", "tasks": [{"id": "p1"}]},
        {"pool_id": "2", "status": "ACCEPTED", "reward": "0.02", "tasks": [{"id": "t1"}]},
        {"pool_id": "2", "status": "ACCEPTED", "reward": "0.02",
         "tasks": [{"id": "t2"}, {"id": "g1", "known_solutions": [{}]}]},
        {"pool_id": "2", "status": "ACTIVE", "reward": "0.02", "tasks": [{"id": "t1"}]},  # not answered yet
        {"pool_id": "3", "status": "SUBMITTED", "reward": "0.01", "tasks": [{"id": "t3"}]},  # answered, unpaid
    ]
    s = spend_of(pools, tasks, assignments, [{"amount": "0.10"}, {"amount": 0.05}])
    assert (s.pools["visit"].tasks, s.pools["visit"].answers, s.pools["visit"].control_answers) == (2, 2, 1)
    assert s.pools["visit"].overlaps == {"5": 2}
    assert s.pools["visit"].assignments == 2
    assert s.pools["visit"].money == pytest.approx(0.04)
    assert (s.pools["quality"].answers, s.pools["quality"].money) == (1, 0.0)
    assert s.pools["relevance"].tasks == 0
    assert s.pedestrian_rewards == pytest.approx(0.5)
    assert s.bonuses == pytest.approx(0.15)
    assert s.total == pytest.approx(0.69)
    f = figures(score_decisions(TRUTH, DECISIONS, BONUS_ROWS, reject_comments=COMMENTS), s,
                wall_s=10.0, timed_out=False)
    assert (f["good_rejected.visit"], f["bad_kind.cheat"], f["bad_how.no_org"], f["answers.visit"]) == (1, 1, 1, 2)
    avg = mean([f, {"right": 1.0}])
    assert avg["right"] == 2.0 and avg["answers.visit"] == 1.0 and avg["runs"] == 2.0


def test_policies_override_every_validation_section() -> None:
    ini = ("[PedestrianProject]\npool_id = 1\n\n[ValidationVisit]\noverlap = 3\naggregation = DawidSkene\n\n"
           "[ValidationQuality]\noverlap = 3\n")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(apply_policy(ini, POLICIES["fixed5"]))
    assert [cfg.get(s, "overlap") for s in ("ValidationVisit", "ValidationQuality")] == ["5", "5"]
    assert cfg.get("ValidationVisit", "aggregation") == "MajorityVote"
    dynamic = configparser.ConfigParser(interpolation=None)
    dynamic.read_string(apply_policy(ini, {"Validation*": {"overlap": None, "min_overlap": "2"}}))
    assert not dynamic.has_option("ValidationQuality", "overlap")
    assert dynamic.get("ValidationVisit", "min_overlap") == "2"
    with pytest.raises(ValueError, match="matches no section"):
        apply_policy(ini, {"Nowhere": {"x": "1"}})
