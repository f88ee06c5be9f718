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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

Fallback = Literal["accept", "hold", "lean"]
FALLBACKS: tuple[Fallback, ...] = ("accept", "hold", "lean")
Verdict = Literal["positive", "negative", "unsure", "more"]

#: A worker's counts are scaled down once they have seen this many tasks of one class.
MEMORY = 200.0
#: Pseudo-answers the prior is worth: a dozen real answers outweigh it (a few answers are mostly noise).
PRIOR_STRENGTH = 10.0
#: A verdict this sure teaches the workers who answered it (and the class prior).
LEARN_FROM = 0.97
#: Rates never reach 0 or 1: one answer can never be infinitely strong.
_RATE_BOUNDS = (0.05, 0.95)
#: The learned share of positive tasks is kept in here, so the prior cannot outvote the checkers.
_CLASS_BOUNDS = (0.1, 0.9)


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
    restricted_at: datetime | None = None  # when the daemon restricted them (an answer taken later: lifted)


@dataclass
class PoolBook:
    """Every checker's record in one pool, and the pool's share of positive verdicts."""

    workers: dict[str, WorkerRecord] = field(default_factory=dict)
    positives: float = 0.0
    verdicts: float = 0.0
    # whose work the tasks judge (e.g. the pedestrian) -> [positive verdicts, verdicts]: a sloppy
    # author's next photo is more likely bad than the pool's average one
    authors: dict[str, list[float]] = field(default_factory=dict)
    recent: list[bool] = field(default_factory=list)  # the last RECENT verdicts: True = negative
    usual_negative: float = 0.0  # the slow average share of negative verdicts (the pool's own level)
    judged: int = 0  # verdicts behind usual_negative

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
    a person, ``lean`` accepts it if it leans positive and holds it otherwise
    (a person sees only the unsure tasks that would otherwise let bad work in).
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


def worker_rows(kind: str, book: PoolBook, prior: float) -> list[dict[str, object]]:
    """One row per checker of the pool: the learned rates (for the status page, the report, workers.tsv).

    ``prior`` stands for a checker's skill, which the book does not keep; the rows
    show what the answers taught, around that prior. In the book's order: the
    caller sorts the rows of all its pools together.
    """
    rows: list[dict[str, object]] = []
    for worker, rec in book.workers.items():
        r = rates(book, worker, prior)
        rows.append({
            "pool": kind, "worker": worker, "accuracy": round(r.accuracy, 3),
            "sensitivity": round(r.sensitivity, 3), "specificity": round(r.specificity, 3),
            "scored": int(rec.positive_seen + rec.negative_seen), "controls": rec.controls,
            "controls_right": rec.controls_right, "restricted": "yes" if rec.ignored else "",
        })
    return rows


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


#: Verdicts the pool's share is worth in an author's own share.
AUTHOR_PRIOR_STRENGTH = 5.0


def class_prior(book: PoolBook, author: str | None = None, *, floor: float = 0.0) -> float:
    """The prior share of positive tasks: the pool's learned one, refined by the author's record.

    0.5 before any confident verdict. An author (the worker whose work is being
    judged) with a record of bad work starts each new check more likely bad.
    ``floor`` bounds the pool's share from below before the author's record
    refines it (see :func:`fair_log_odds`).
    """
    pool = max(_clip((1.0 + book.positives) / (2.0 + book.verdicts), _CLASS_BOUNDS), floor)
    record = book.authors.get(author) if author is not None else None
    if record is None:
        return pool
    positives, verdicts = record
    return _clip((AUTHOR_PRIOR_STRENGTH * pool + positives) / (AUTHOR_PRIOR_STRENGTH + verdicts), _CLASS_BOUNDS)


def log_odds(
    answers: Sequence[Answer],
    book: PoolBook,
    priors: Mapping[str, float],
    *,
    extra: float = 0.0,
    author: str | None = None,
    floor: float = 0.0,
) -> float:
    """log P(positive | answers) / P(negative | answers); ``priors`` holds each worker's prior accuracy."""
    pi = class_prior(book, author, floor=floor)
    total = math.log(pi / (1.0 - pi)) + extra
    for answer in answers:
        r = rates(book, answer.worker_id, priors[answer.worker_id])
        if answer.positive:
            total += math.log(r.sensitivity / (1.0 - r.specificity))
        else:
            total += math.log((1.0 - r.sensitivity) / r.specificity)
    return total


def fair_log_odds(
    answers: Sequence[Answer],
    book: PoolBook,
    priors: Mapping[str, float],
    *,
    extra: float = 0.0,
    author: str | None = None,
) -> float:
    """:func:`log_odds`, except that a verdict leaning negative is reached without the pool's bad share.

    A rejection hurts the author, so it must rest on evidence about their work: the
    answers, the automatic checks and the author's own record. Other people's bad work
    is not such evidence, yet a pool whose first confident verdicts were mostly
    negative (cheats are caught fast, by the distance check) learns a low positive
    share and would then reject honest work on two wrong answers. Leaning negative,
    the pool's share counts for no less than even (0.5); leaning positive, it counts
    as learned, so acceptance is unchanged.
    """
    odds = log_odds(answers, book, priors, extra=extra, author=author)
    if odds >= 0.0:
        return odds
    return log_odds(answers, book, priors, extra=extra, author=author, floor=0.5)


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


def learn_verdict(
    book: PoolBook,
    answers: Sequence[Answer],
    priors: Mapping[str, float],
    *,
    extra: float = 0.0,
    author: str | None = None,
) -> int:
    """Score each checker of a finished task against the verdict of the *other* answers.

    Leave-one-out: a checker's own answer never counts as the truth they are
    scored against, or every error that swung a verdict would be booked as a
    right answer and the rates would inflate themselves. Only a verdict of the
    others at least ``LEARN_FROM`` sure teaches; a task sure as a whole also
    counts towards the class prior. Returns how many checkers were scored.
    """
    scored = 0
    for n, answer in enumerate(answers):
        others = [a for k, a in enumerate(answers) if k != n]
        p = probability(log_odds(others, book, priors, extra=extra))
        if max(p, 1.0 - p) >= LEARN_FROM:
            _count(book.record(answer.worker_id), answer.positive, p >= 0.5)
            scored += 1
    # The pool's and the author's shares learn from the answers alone (not from the shares themselves).
    p_all = probability(log_odds(answers, PoolBook(workers=book.workers, positives=1.0, verdicts=2.0), priors,
                                 extra=extra))
    if max(p_all, 1.0 - p_all) >= LEARN_FROM:
        positive = float(p_all >= 0.5)
        book.verdicts += 1.0
        book.positives += positive
        if book.verdicts > MEMORY:
            book.positives *= MEMORY / book.verdicts
            book.verdicts = MEMORY
        if author is not None:
            record = book.authors.setdefault(author, [0.0, 0.0])
            record[0] += positive
            record[1] += 1.0
            if record[1] > MEMORY:
                record[0] *= MEMORY / record[1]
                record[1] = MEMORY
    return scored


#: How many of the latest verdicts the surge check looks at, and how many it needs.
RECENT = 30
_SURGE_MIN_RECENT = 15
_SURGE_MIN_HISTORY = 30  # verdicts behind the usual level (older than the recent window)
_USUAL_WEIGHT = 0.005  # each verdict moves the usual level by 0.5%: it follows a change over ~200 verdicts


def note_verdict(book: PoolBook, negative: bool) -> None:
    """Keep the pool's recent verdicts and its usual share of negative ones (bounded: RECENT flags).

    A verdict joins the usual level only when it leaves the recent window, and not
    during a surge: what is being compared never leaks into what it is compared with.
    """
    book.recent.append(negative)
    if len(book.recent) <= RECENT:
        return
    leaving = book.recent.pop(0)
    if book.judged >= _SURGE_MIN_HISTORY and surge(book) is not None:
        return
    book.judged += 1
    weight = max(_USUAL_WEIGHT, 1.0 / book.judged)
    book.usual_negative += weight * (float(leaving) - book.usual_negative)


def surge(book: PoolBook) -> str | None:
    """Why the pool's negative verdicts are far above its own usual level, or None.

    Far above: at least 80% of the last RECENT verdicts, and 40 points more than
    the usual share (a run of sloppy work from a few authors stays under it). A
    photo store that stops serving makes every checker answer "bad"; so does a
    broken task interface. Rejections wait then.
    """
    if book.judged < _SURGE_MIN_HISTORY or len(book.recent) < _SURGE_MIN_RECENT:
        return None
    share = sum(book.recent) / len(book.recent)
    usual = book.usual_negative
    if share >= 0.8 and share >= usual + 0.4:
        return (f"{share:.0%} of the last {len(book.recent)} verdicts negative, against a usual {usual:.0%}: "
                "rejections wait until the level returns or a person looks")
    return None


def forget_worker(book: PoolBook, worker: str, now: datetime) -> None:
    """Make a worker's answers weigh nothing from now on: they were restricted from the pool."""
    rec = book.record(worker)
    rec.ignored, rec.restricted_at = True, now


def lifted(book: PoolBook, worker: str, taken: datetime | None) -> bool:
    """A restricted worker took a task after the restriction: a person lifted it. Start them afresh.

    Their old record is dropped (the prior comes back), so they are judged on new answers only.
    """
    rec = book.workers.get(worker)
    if rec is None or not rec.ignored or rec.restricted_at is None or taken is None or taken <= rec.restricted_at:
        return False
    book.workers[worker] = WorkerRecord()
    return True


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
