"""Verdicts from noisy binary checks: learned worker quality, a posterior, and when to stop buying answers.

Every verification pool asks a yes/no question (the pool's accept label is
"positive"). Each checker is described per pool by two rates, as in
Dawid and Skene's model with a 2x2 confusion matrix: how often they say
positive when the truth is positive (sensitivity) and negative when it is
negative (specificity). Two rates, not one accuracy, because a spammer who
always answers "yes" is right on most tasks of a mostly-good pool, yet their
"yes" says nothing: with sensitivity 1 and specificity 0 it weighs zero.

The rates are Beta posteriors kept as four counts per worker (bounded state,
never the answers themselves): a prior centred on the worker's Toloka skill
(or the pool's default), control tasks with known answers, and agreement with
aggregates that were confident. The class prior (how often the pool's answer
is positive) is learned the same way. A task's posterior is then the exact
Dawid-Skene E-step for fixed matrices: prior log-odds plus one
log-likelihood ratio per answer (plus any automatic evidence, see
:mod:`aggregation.geo`). Counts decay past ``MEMORY`` so old behaviour fades.

Pure and deterministic: the same answers in the same order give the same
numbers, with no library fit whose result depends on which tasks happened to
finish in one tick.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

Fallback = Literal["accept", "hold"]
FALLBACKS: tuple[Fallback, ...] = ("accept", "hold")
Verdict = Literal["positive", "negative", "unsure", "more"]

#: A worker's counts are scaled down once they have seen this many tasks of one class.
MEMORY = 200.0
#: Pseudo-answers the prior is worth: a few real answers outweigh it.
PRIOR_STRENGTH = 4.0
#: A verdict this sure teaches the workers who answered it (and the class prior).
LEARN_FROM = 0.97
#: Rates never reach 0 or 1: one answer can never be infinitely strong.
_RATE_BOUNDS = (0.02, 0.98)
#: The learned share of positive tasks is kept in here, so the prior cannot outvote the checkers.
_CLASS_BOUNDS = (0.1, 0.95)


@dataclass
class WorkerRecord:
    """What one checker's answers in one pool taught us (a few numbers, never the answers)."""

    positive_seen: float = 0.0  # tasks whose truth (or confident verdict) was positive
    said_positive: float = 0.0  # ... of which this worker called positive
    negative_seen: float = 0.0
    said_negative: float = 0.0
    controls: int = 0  # control tasks answered (known solutions)
    controls_right: int = 0
    ignored: bool = False  # restricted from the pool: their answers weigh nothing


@dataclass
class PoolBook:
    """Every checker's record in one pool, and the pool's share of positive verdicts."""

    workers: dict[str, WorkerRecord] = field(default_factory=dict)
    positives: float = 0.0
    verdicts: float = 0.0

    def record(self, worker: str) -> WorkerRecord:
        return self.workers.setdefault(worker, WorkerRecord())


@dataclass(frozen=True, slots=True)
class Answer:
    """One checker's answer to one task: ``positive`` is True for the pool's accept label."""

    worker_id: str
    positive: bool


@dataclass(frozen=True, slots=True)
class Policy:
    """When to stop buying answers and how sure a negative verdict must be to count against a worker.

    ``min_overlap`` answers are bought first; while the verdict is neither
    positive with ``confidence`` nor negative with ``reject_confidence`` one
    more is bought, up to ``max_overlap``. Then an unsure task gets
    ``fallback``: ``accept`` counts it as positive, ``hold`` keeps the work for
    a person.
    """

    min_overlap: int
    max_overlap: int
    confidence: float
    reject_confidence: float
    fallback: Fallback


@dataclass(frozen=True, slots=True)
class Rates:
    """A worker's estimated sensitivity and specificity in one pool."""

    sensitivity: float
    specificity: float

    @property
    def accuracy(self) -> float:
        """The mean of the two rates: the worker's accuracy on a balanced pool."""
        return (self.sensitivity + self.specificity) / 2


def prior_accuracy(skill: float | None, default_skill: float) -> float:
    """A worker's accuracy before any answer is scored: their skill (0-100) or the pool's default."""
    value = default_skill if skill is None else skill
    return _clip(value / 100.0, _RATE_BOUNDS)


def rates(book: PoolBook, worker: str, prior: float) -> Rates:
    """The worker's Beta-posterior rates; a worker with no history gets the prior and nothing else."""
    prior = _clip(prior, _RATE_BOUNDS)
    rec = book.workers.get(worker)
    if rec is None:
        return Rates(prior, prior)
    if rec.ignored:
        return Rates(0.5, 0.5)  # a coin: every answer's likelihood ratio is exactly 1
    sens = (prior * PRIOR_STRENGTH + rec.said_positive) / (PRIOR_STRENGTH + rec.positive_seen)
    spec = (prior * PRIOR_STRENGTH + rec.said_negative) / (PRIOR_STRENGTH + rec.negative_seen)
    return Rates(_clip(sens, _RATE_BOUNDS), _clip(spec, _RATE_BOUNDS))


def class_prior(book: PoolBook) -> float:
    """The pool's learned share of positive tasks (0.5 before any confident verdict)."""
    return _clip((1.0 + book.positives) / (2.0 + book.verdicts), _CLASS_BOUNDS)


def log_odds(
    answers: Sequence[Answer],
    book: PoolBook,
    priors: Mapping[str, float],
    *,
    extra: float = 0.0,
) -> float:
    """log P(positive | answers) / P(negative | answers); ``priors`` holds each worker's prior accuracy."""
    pi = class_prior(book)
    total = math.log(pi / (1.0 - pi)) + extra
    for answer in answers:
        r = rates(book, answer.worker_id, priors[answer.worker_id])
        if answer.positive:
            total += math.log(r.sensitivity / (1.0 - r.specificity))
        else:
            total += math.log((1.0 - r.sensitivity) / r.specificity)
    return total


def probability(odds: float) -> float:
    """Log-odds to a probability, without overflow at either end."""
    if odds >= 0:
        return 1.0 / (1.0 + math.exp(-odds))
    e = math.exp(odds)
    return e / (1.0 + e)


def judge(p_positive: float, answers: int, policy: Policy, *, exhausted: bool = False) -> Verdict:
    """What to do with a task that has ``answers`` answers and this posterior.

    ``more``: buy another answer. ``exhausted`` says no more can be had (the
    overlap could not be raised), so the task is decided with what it has.
    """
    if answers >= policy.min_overlap or exhausted:
        if 1.0 - p_positive >= policy.reject_confidence:
            return "negative"
        if p_positive >= policy.confidence:
            return "positive"
    if answers < policy.max_overlap and not exhausted:
        return "more"
    return "unsure"


def learn_control(book: PoolBook, worker: str, said_positive: bool, truth_positive: bool) -> None:
    """A control task's known answer scores the worker."""
    rec = book.record(worker)
    rec.controls += 1
    rec.controls_right += said_positive == truth_positive
    _count(rec, said_positive, truth_positive)


def learn_verdict(book: PoolBook, answers: Iterable[Answer], p_positive: float) -> bool:
    """A confident verdict scores the workers who gave it and counts towards the class prior.

    Returns whether it was confident enough to learn from.
    """
    if max(p_positive, 1.0 - p_positive) < LEARN_FROM:
        return False
    truth = p_positive >= 0.5
    for answer in answers:
        _count(book.record(answer.worker_id), answer.positive, truth)
    book.verdicts += 1.0
    book.positives += truth
    if book.verdicts > MEMORY:
        book.positives *= MEMORY / book.verdicts
        book.verdicts = MEMORY
    return True


def forget_worker(book: PoolBook, worker: str, *, ignored: bool = True) -> None:
    """Make a worker's answers weigh nothing from now on (restricted from the pool), or count again (undone)."""
    book.record(worker).ignored = ignored


def _count(rec: WorkerRecord, said_positive: bool, truth_positive: bool) -> None:
    if truth_positive:
        rec.positive_seen += 1.0
        rec.said_positive += said_positive
        if rec.positive_seen > MEMORY:
            rec.said_positive *= MEMORY / rec.positive_seen
            rec.positive_seen = MEMORY
    else:
        rec.negative_seen += 1.0
        rec.said_negative += not said_positive
        if rec.negative_seen > MEMORY:
            rec.said_negative *= MEMORY / rec.negative_seen
            rec.negative_seen = MEMORY


def _clip(value: float, bounds: tuple[float, float]) -> float:
    low, high = bounds
    return min(max(value, low), high)
