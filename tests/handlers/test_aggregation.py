"""Aggregation: each method on small tables with known answers, ties, and skills."""

from __future__ import annotations

import pytest

from aggregation.classification import Aggregate, Vote, aggregate


def votes(table: dict[str, dict[str, str]]) -> list[Vote]:
    return [Vote(task, worker, label) for task, answers in table.items() for worker, label in answers.items()]


@pytest.mark.parametrize("method", ["MajorityVote", "DawidSkene", "Wawa"])
def test_clear_majority_wins_with_every_method(method: str) -> None:
    table = {
        "t1": {"a": "yes", "b": "yes", "c": "no"},
        "t2": {"a": "no", "b": "no", "c": "no"},
        "t3": {"a": "yes", "b": "yes", "c": "yes"},
    }
    result = aggregate(votes(table), method)  # type: ignore[arg-type]
    assert {t: r.label for t, r in result.items()} == {"t1": "yes", "t2": "no", "t3": "yes"}


def test_skill_weights_let_one_expert_outvote_two_novices() -> None:
    table = {"t1": {"expert": "no", "n1": "yes", "n2": "yes"}}
    weighted = aggregate(votes(table), "MajorityVote", skills={"expert": 90, "n1": 10, "n2": 10})
    unweighted = aggregate(votes(table), "MajorityVote")
    assert weighted["t1"].label == "no"
    assert weighted["t1"].confidence == pytest.approx(90 / 110, abs=1e-6)
    assert unweighted["t1"].label == "yes"


def test_unknown_workers_get_the_default_skill() -> None:
    table = {"t1": {"known": "no", "u1": "yes"}}
    assert aggregate(votes(table), "MajorityVote", skills={"known": 40}, default_skill=60)["t1"].label == "yes"
    assert aggregate(votes(table), "MajorityVote", skills={"known": 80}, default_skill=60)["t1"].label == "no"


@pytest.mark.parametrize("tie_label, expected", [("no", "no"), ("yes", "yes"), (None, "no"), ("maybe", "no")])
def test_exact_ties_are_broken_deterministically(tie_label: str | None, expected: str) -> None:
    table = {"t1": {"a": "yes", "b": "no"}}
    assert aggregate(votes(table), "MajorityVote", tie_label=tie_label)["t1"].label == expected


def test_all_zero_skills_fall_back_to_counting() -> None:
    table = {"t1": {"a": "yes", "b": "yes", "c": "no"}}
    assert aggregate(votes(table), "MajorityVote", skills={"a": 0, "b": 0, "c": 0})["t1"] == Aggregate("t1", "yes", pytest.approx(2 / 3, abs=1e-6))


def test_no_votes_no_results_and_bad_method_is_refused() -> None:
    assert aggregate([], "DawidSkene") == {}
    with pytest.raises(ValueError, match="GLAD"):
        aggregate(votes({"t": {"a": "x"}}), "GLAD")  # type: ignore[arg-type]
