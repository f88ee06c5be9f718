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


@pytest.mark.parametrize("seed", range(20))
def test_the_weighted_majority_vote_is_crowd_kits(seed: int) -> None:
    """aggregate()'s MajorityVote is computed without pandas; it must give crowd-kit's labels and probabilities."""
    import random

    import pandas as pd
    from crowdkit.aggregation import MajorityVote

    rng = random.Random(seed)
    workers = [f"w{i}" for i in range(rng.randint(2, 12))]
    labels = ["yes", "no", "maybe"][: rng.randint(2, 3)]
    table = {f"t{t}": {w: rng.choice(labels) for w in rng.sample(workers, rng.randint(1, len(workers)))}
             for t in range(rng.randint(1, 30))}
    skills = {w: float(rng.choice([0, 10, 50, 50, 73.5, 90])) for w in workers if rng.random() < 0.8}
    ours = aggregate(votes(table), "MajorityVote", skills=skills, default_skill=60)

    frame = pd.DataFrame([(v.task_id, v.worker_id, v.label) for v in votes(table)], columns=["task", "worker", "label"])
    weights = pd.Series({w: max(skills.get(w, 60.0), 0.0) for w in frame["worker"].unique()}, dtype=float)
    if weights.sum() == 0:
        weights[:] = 1.0
    # A task whose voters all weigh 0 (others weighing more) makes crowd-kit fail ("all NA"); ours counts
    # its votes. Leave such tasks out of the comparison.
    weightless = {t for t, answers in table.items() if all(weights[w] == 0 for w in answers)}
    frame = frame[~frame["task"].isin(weightless)]
    if frame.empty:
        return
    probas = MajorityVote().fit(frame, weights).probas_
    assert probas is not None
    for task, row in probas.iterrows():
        scores = {str(label): p for label, p in row.items() if not pd.isna(p)}
        best = max(scores.values())
        tied = sorted(label for label, p in scores.items() if best - p <= 1e-9)
        assert ours[str(task)].label == tied[0], (task, scores)
        assert ours[str(task)].confidence == pytest.approx(scores[tied[0]], abs=1e-6)
