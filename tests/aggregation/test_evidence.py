"""The dynamic policy's arithmetic: learned rates, posteriors, when to buy more, and what is learned."""

from __future__ import annotations

import math
from datetime import datetime

import pandas as pd
import pytest
from crowdkit.aggregation import DawidSkene

from aggregation.evidence import (
    MEMORY,
    Answer,
    Policy,
    PoolBook,
    class_prior,
    fair_log_odds,
    forget_worker,
    judge,
    learn_control,
    learn_verdict,
    lifted,
    log_odds,
    note_verdict,
    prior_accuracy,
    probability,
    rates,
    surge,
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
    for n in range(100):  # control tasks: half positive, half negative; the spammer says yes to all
        learn_control(book, "spammer", True, n % 2 == 0)
        learn_control(book, "good", n % 2 == 0, n % 2 == 0)
    spam = log_odds([Answer("spammer", True)], book, {"spammer": 0.9}) - log_odds([], book, {})
    good = log_odds([Answer("good", True)], book, {"good": 0.9}) - log_odds([], book, {})
    assert abs(spam) < 0.15 < 2.0 < good
    assert book.workers["spammer"].controls == 100 and book.workers["spammer"].controls_right == 50


def test_more_answers_are_bought_only_while_the_verdict_is_unsure() -> None:
    assert judge(0.95, 2, POLICY) == "positive"
    assert judge(0.95, 1, POLICY) == "more"  # below min_overlap: never decided
    assert judge(0.02, 2, POLICY) == "negative"
    assert judge(0.05, 2, POLICY) == "more"  # 95% bad is not enough to reject (97% is)
    assert judge(0.05, 5, POLICY) == "unsure"  # answers exhausted: the fallback decides
    assert judge(0.5, 3, POLICY, exhausted=True) == "unsure"  # the overlap could not be raised
    assert judge(0.99, 1, POLICY, exhausted=True) == "positive"


def test_a_checker_is_scored_against_the_others_never_against_their_own_answer() -> None:
    book = PoolBook()
    priors = dict.fromkeys("abcde", 0.9)
    # Four "yes" and one "no": the "no" is scored wrong, each "yes" right (the other four still agree).
    answers = [Answer("a", True), Answer("b", True), Answer("c", True), Answer("e", True), Answer("d", False)]
    assert learn_verdict(book, answers, priors) == 5
    # Two "yes" and one "no": a "yes" is not scored (the other two disagree); the "no" is.
    assert learn_verdict(PoolBook(), answers[:2] + answers[-1:], priors) == 1
    assert book.workers["d"].positive_seen == 1 and book.workers["d"].said_positive == 0
    assert book.workers["a"].said_positive == 1 and class_prior(book) > 0.5
    # Two answers that disagree: neither is judged by the other alone.
    book2 = PoolBook()
    assert learn_verdict(book2, [Answer("a", True), Answer("b", False)], priors) == 0
    assert book2.workers == {} and book2.verdicts == 0


def test_counts_stay_bounded_however_long_the_run() -> None:
    book = PoolBook()
    for _ in range(5000):
        learn_control(book, "w", True, True)
        learn_verdict(book, [Answer(x, True) for x in "wxyz"], dict.fromkeys("wxyz", 0.95))
    rec = book.workers["w"]
    assert rec.positive_seen <= MEMORY and book.verdicts <= MEMORY


def test_a_forgotten_worker_weighs_nothing() -> None:
    book = PoolBook()
    for _ in range(30):
        learn_control(book, "w", True, True)
        learn_control(book, "w", False, False)
    forget_worker(book, "w", datetime(2026, 11, 30, 12))
    assert log_odds([Answer("w", False)], book, {"w": 0.9}) == pytest.approx(log_odds([], book, {}))
    assert not lifted(book, "w", datetime(2026, 11, 30, 11))  # taken before the restriction: still ignored
    assert lifted(book, "w", datetime(2026, 11, 30, 13))  # taken after: a person lifted it
    assert not book.workers["w"].ignored and book.workers["w"].controls == 0


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


def test_a_surge_of_negative_verdicts_is_told_from_the_pools_usual_level() -> None:
    book = PoolBook()
    for n in range(70):  # a pool where one verdict in five is negative
        note_verdict(book, n % 5 == 0)
    assert surge(book) is None and 0.15 < book.usual_negative < 0.25
    for _ in range(10):  # a run of sloppy work: half the verdicts negative for a while
        note_verdict(book, True)
        note_verdict(book, False)
    assert surge(book) is None
    for _ in range(30):  # the photo store stops serving: every checker says "bad"
        note_verdict(book, True)
    why = surge(book)
    assert why is not None and "usual 2" in why
    assert book.usual_negative < 0.25  # a surge does not become the usual level
    for _ in range(30):
        note_verdict(book, False)
    assert surge(book) is None
    assert len(book.recent) == 30  # bounded


def test_a_young_pool_never_reports_a_surge() -> None:
    book = PoolBook()
    for _ in range(20):
        note_verdict(book, True)
    assert surge(book) is None


def test_an_authors_record_of_bad_work_makes_their_next_photo_more_likely_bad() -> None:
    book = PoolBook()
    priors = dict.fromkeys("abcd", 0.9)
    sure_yes = [Answer(w, True) for w in "abcd"]
    sure_no = [Answer(w, False) for w in "abcd"]
    for n in range(10):
        learn_verdict(book, sure_yes, priors, author="careful")
        learn_verdict(book, sure_no if n % 3 else sure_yes, priors, author="sloppy")
    assert class_prior(book, "careful") > class_prior(book) > class_prior(book, "sloppy")
    assert class_prior(book, "stranger") == class_prior(book)  # no record: the pool's share
    split = [Answer("a", True), Answer("b", False)]
    assert probability(log_odds(split, book, priors, author="sloppy")) < 0.5 < probability(
        log_odds(split, book, priors, author="careful"))


def test_others_bad_work_never_tips_a_rejection_but_an_authors_own_record_does() -> None:
    """A pool whose confident verdicts so far were all negative (cheats caught early) has a low
    positive share; two wrong "no" answers must not be enough to reject a newcomer's work there."""
    book = PoolBook()
    priors = dict.fromkeys("abcdef", 0.8)
    for _ in range(20):
        learn_verdict(book, [Answer(w, False) for w in "abcd"], priors, author="cheat")
    assert class_prior(book) < 0.2
    two_no = [Answer("e", False), Answer("f", False)]
    policy = Policy(min_overlap=2, max_overlap=17, confidence=0.99, reject_confidence=0.99, fallback="accept")
    learned = probability(log_odds(two_no, book, priors, author="newcomer"))
    fair = probability(fair_log_odds(two_no, book, priors, author="newcomer"))
    assert judge(learned, 2, policy) == "negative"  # what the learned share alone would do
    assert judge(fair, 2, policy) == "more" and fair > learned
    # The author's own record still counts: the cheat's next work is rejected on the same two answers.
    assert judge(probability(fair_log_odds(two_no, book, priors, author="cheat")), 2, policy) == "negative"
    # Leaning positive, nothing changes: acceptance uses the learned share as before.
    two_yes = [Answer("e", True), Answer("f", True)]
    assert fair_log_odds(two_yes, book, priors) == log_odds(two_yes, book, priors)
