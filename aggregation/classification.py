"""Aggregation of overlapping answers: crowd-kit's models, and its weighted majority vote in plain Python.

Only the tasks that just reached their overlap are aggregated, never the whole
history, so a tick's cost grows with its new answers, not with the run's age.
The result is deterministic: crowd-kit's probabilities are reduced to a label
here, and exact ties go to the caller's ``tie_label`` (or the smallest label),
instead of whatever order pandas happens to produce.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # pandas is imported lazily: crowd-kit's import costs about a second.
    import pandas as pd

Method = Literal["MajorityVote", "DawidSkene", "Wawa"]
METHODS: tuple[Method, ...] = ("MajorityVote", "DawidSkene", "Wawa")
_TIE_EPSILON = 1e-9


@dataclass(frozen=True)
class Vote:
    """One worker's answer to one task."""

    task_id: str
    worker_id: str
    label: str


@dataclass(frozen=True)
class Aggregate:
    """The aggregated label of one task and the probability the method gave it."""

    task_id: str
    label: str
    confidence: float


def aggregate(
    votes: Sequence[Vote],
    method: Method,
    *,
    skills: Mapping[str, float] | None = None,
    default_skill: float = 50.0,
    tie_label: str | None = None,
) -> dict[str, Aggregate]:
    """Aggregate ``votes`` per task with ``method``.

    ``skills`` (worker id -> Toloka skill value) weight MajorityVote; workers
    without a known skill get ``default_skill``. DawidSkene and Wawa estimate
    worker quality themselves and ignore ``skills``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown aggregation method {method!r}; expected one of {', '.join(METHODS)}")
    if not votes:
        return {}
    if method == "MajorityVote":
        weighted = weighted_majority(votes, skills or {}, default_skill)
        return {task_id: _pick(task_id, scores, tie_label) for task_id, scores in weighted.items()}
    import pandas as pd

    frame = pd.DataFrame(
        {
            "task": [v.task_id for v in votes],
            "worker": [v.worker_id for v in votes],
            "label": [v.label for v in votes],
        }
    )
    probas = _probabilities(frame, method, skills or {}, default_skill)
    labels = [str(label) for label in probas.columns]
    result: dict[str, Aggregate] = {}
    # Plain lists, not DataFrame.iterrows: that is ~100x slower on large batches.
    for task_id, row in zip(probas.index, probas.to_numpy(dtype=float).tolist(), strict=True):
        scores = {label: p for label, p in zip(labels, row, strict=True) if not math.isnan(p)}
        result[str(task_id)] = _pick(str(task_id), scores, tie_label)
    return result


def weighted_majority(
    votes: Sequence[Vote], skills: Mapping[str, float], default_skill: float
) -> dict[str, dict[str, float]]:
    """Per task, each voted label's share of the voters' skill: crowd-kit's ``MajorityVote.fit(data, skills)``.

    Computed in plain Python: with the weights known there is nothing to fit,
    and building DataFrames for it cost about 70 ms per call, most of the
    daemon's aggregation time (tests/aggregation/test_classification.py checks
    it against crowd-kit). A skill below zero counts as zero; if every skill is
    zero, each vote counts one, as before.
    """
    weights = {v.worker_id: max(float(skills.get(v.worker_id, default_skill)), 0.0) for v in votes}
    if not any(weights.values()):
        weights = dict.fromkeys(weights, 1.0)
    sums: dict[str, dict[str, float]] = {}
    for vote in votes:
        per_label = sums.setdefault(vote.task_id, {})
        per_label[vote.label] = per_label.get(vote.label, 0.0) + weights[vote.worker_id]
    shares: dict[str, dict[str, float]] = {}
    for task_id, per_label in sums.items():
        total = sum(per_label.values())
        shares[task_id] = ({label: w / total for label, w in per_label.items()} if total > 0
                           else {label: 1.0 / len(per_label) for label in per_label})
    return shares


def preload() -> None:
    """Import crowd-kit (and pandas) now: the daemon calls it at start-up, off the event loop.

    Cold, the import takes seconds; done lazily it stalled the first tick that aggregated.
    """
    import crowdkit.aggregation  # noqa: F401


def _probabilities(
    frame: pd.DataFrame, method: Method, skills: Mapping[str, float], default_skill: float
) -> pd.DataFrame:
    from crowdkit.aggregation import DawidSkene, Wawa

    if method == "DawidSkene":
        return _fitted(DawidSkene(n_iter=100).fit(frame).probas_)
    return Wawa().fit_predict_proba(frame)


def _fitted(probas: pd.DataFrame | None) -> pd.DataFrame:
    """crowd-kit types ``probas_`` as optional (unset before ``fit``); after ``fit`` it is set."""
    if probas is None:
        raise RuntimeError("crowd-kit's fit() left probas_ unset")
    return probas


def _pick(task_id: str, scores: Mapping[str, float], tie_label: str | None) -> Aggregate:
    best = max(scores.values())
    tied = sorted(label for label, p in scores.items() if best - p <= _TIE_EPSILON)
    label = tie_label if tie_label in tied else tied[0]
    return Aggregate(task_id=task_id, label=label, confidence=round(scores[label], 6))
