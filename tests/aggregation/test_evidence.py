"""The dynamic policy's arithmetic: learned rates, posteriors, when to buy more, and what is learned."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from aggregation.evidence import (
    MEMORY,
    Answer,
    PoolBook,
    Policy,
    class_prior,
    forget_worker,
    judge,
    learn_control,
    learn_verdict,
    log_odds,
    prior_accuracy,
    probability,
    rates,
)
from aggregation.geo import check_distance, distance_m, parse_point

POLICY = Policy(min_overlap=2, max_overlap=5, confidence=0.9, reject_confidence=0.97, fallback="accept")


def test_a_worker_with_no_history_gets_the_prior_and_nothing_else() -> None:
    book = PoolBook()
    r = rates(book, "new", prior_accuracy(None, 70))
    assert (r.sensitivity, r.specificity) == (0.7, 0.7)
    assert class_prior(book) == 0.5
    odds = log_odds([Answer("new", True)], book, {"new": 0.7})
    assert odds == pytest.approx(math.log(0.7 / 0.3))
    assert all(math.isfinite(x) for x in (odds, probability(odds)))


def test_skill_zero_or_hundred_never_gives_an_infinite_weight() -> None:
    book = PoolBook()
    for skill in (0.0, 100.0):
        odds = log_odds([Answer("w", True), Answer("w2", False)], book, {"w": skill / 100, "w2": skill / 100})
        assert math.isfinite(odds)
    assert prior_accuracy(100.0, 50) < 1.0 and prior_accuracy(0.0, 50) > 0.0


def test_a_spammer_who_always_says_yes_ends_up_weighing_nothing() -> None:
    book = PoolBook()
    for n in range(40):  # control tasks: half positive, half negative; the spammer says yes to all
        learn_control(book, "spammer", True, n % 2 == 0)
        learn_control(book, "good", n % 2 == 0, n % 2 == 0)
    spam = log_odds([Answer("spammer", True)], book, {"spammer": 0.9}) - log_odds([], book, {})
    good = log_odds([Answer("good", True)], book, {"good": 0.9}) - log_odds([], book, {})
    assert abs(spam) < 0.15 < 2.0 < good
    assert book.workers["spammer"].controls == 40 and book.workers["spammer"].controls_right == 20


def test_more_answers_are_bought_only_while_the_verdict_is_unsure() -> None:
    assert judge(0.95, 2, POLICY) == "positive"
    assert judge(0.95, 1, POLICY) == "more"  # below min_overlap: never decided
    assert judge(0.02, 2, POLICY) == "negative"
    assert judge(0.05, 2, POLICY) == "more"  # 95% bad is not enough to reject (97% is)
    assert judge(0.05, 5, POLICY) == "unsure"  # answers exhausted: the fallback decides
    assert judge(0.5, 3, POLICY, exhausted=True) == "unsure"  # the overlap could not be raised
    assert judge(0.99, 1, POLICY, exhausted=True) == "positive"


def test_confident_verdicts_teach_the_workers_and_the_class_prior_weak_ones_do_not() -> None:
    book = PoolBook()
    answers = [Answer("a", True), Answer("b", True), Answer("c", False)]
    assert not learn_verdict(book, answers, 0.9)
    assert book.workers == {}
    assert learn_verdict(book, answers, 0.99)
    assert book.workers["c"].positive_seen == 1 and book.workers["c"].said_positive == 0
    assert class_prior(book) > 0.5


def test_counts_stay_bounded_however_long_the_run() -> None:
    book = PoolBook()
    for _ in range(5000):
        learn_control(book, "w", True, True)
        learn_verdict(book, [Answer("w", True)], 0.999)
    rec = book.workers["w"]
    assert rec.positive_seen <= MEMORY and book.verdicts <= MEMORY


def test_a_forgotten_worker_weighs_nothing() -> None:
    book = PoolBook()
    for _ in range(30):
        learn_control(book, "w", True, True)
        learn_control(book, "w", False, False)
    forget_worker(book, "w")
    assert log_odds([Answer("w", False)], book, {"w": 0.9}) == pytest.approx(log_odds([], book, {}))


def test_the_posterior_is_dawid_skene_for_fixed_confusion_matrices() -> None:
    """One E-step of crowd-kit's DawidSkene with our matrices and class prior gives our probability."""
    book = PoolBook()
    for n in range(20):
        learn_control(book, "a", n % 4 != 0, True)  # sensitivity ~0.75
        learn_control(book, "a", n % 5 == 0, False)  # specificity ~0.8
        learn_control(book, "b", True, True)
        learn_control(book, "b", n % 2 == 0, False)
    priors = {"a": 0.7, "b": 0.7}
    answers = [Answer("a", False), Answer("b", True)]
    ours = probability(log_odds(answers, book, priors))
    ra, rb = rates(book, "a", 0.7), rates(book, "b", 0.7)
    errors = pd.DataFrame(
        # P(observed label | true label): one row per (worker, observed), one column per true label
        {("a", "yes"): [ra.sensitivity, 1 - ra.specificity], ("a", "no"): [1 - ra.sensitivity, ra.specificity],
         ("b", "yes"): [rb.sensitivity, 1 - rb.specificity], ("b", "no"): [1 - rb.sensitivity, rb.specificity]},
        index=["yes", "no"],
    ).T
    errors.index.names = ["worker", "label"]
    data = pd.DataFrame({"task": ["t", "t"], "worker": ["a", "b"], "label": ["no", "yes"]})
    priors_series = pd.Series({"yes": class_prior(book), "no": 1 - class_prior(book)})
    theirs = DawidSkene._e_step(data, priors_series, errors)
    assert ours == pytest.approx(float(theirs.loc["t", "yes"]), abs=1e-9)


def test_distance_is_silent_nearby_weak_when_borderline_strong_from_kilometres() -> None:
    org = "55.75580,37.61730"
    assert check_distance(org, "55.75590,37.61740", 500).log_odds == 0.0
    borderline = check_distance(org, "55.7610,37.6173", 500)  # ~580 m
    far = check_distance(org, "55.9358,37.6173", 500)  # ~20 km
    assert -0.5 < borderline.log_odds < 0 and far.log_odds <= -7
    assert far.distance_m == pytest.approx(20000, rel=0.01)
    assert check_distance(org, "nowhere", 500).log_odds == 0.0
    assert "do not parse" in check_distance(org, "nowhere", 500).note
    assert check_distance(org, "0,0", 0).log_odds == 0.0  # the check switched off


def test_points_parse_strictly() -> None:
    assert parse_point("55.1, 37.2") == (55.1, 37.2)
    for bad in ("", "1", "91,0", "0,181", "nan,1", "a,b", None, 5):
        assert parse_point(bad) is None
    assert distance_m((0.0, 0.0), (0.0, 1.0)) == pytest.approx(111195, rel=1e-3)
