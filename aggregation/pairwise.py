"""Ranking items from side-by-side comparisons with crowd-kit's BradleyTerry.

Deterministic: comparisons are sorted before fitting, and ties in score are
ranked by the item's text, so the same answers always give the same ranking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Comparison:
    """One worker's answer to "which of left and right is better?": ``winner`` is left or right."""

    worker: str
    left: str
    right: str
    winner: str


@dataclass(frozen=True, slots=True)
class Ranked:
    """An item's score and rank (1 = best)."""

    item: str
    score: float
    rank: int


def rank(comparisons: Sequence[Comparison], items: Sequence[str] = ()) -> list[Ranked]:
    """Items ranked by BradleyTerry scores, best first.

    ``items`` lists items that must appear even if no comparison names them
    (they get score 0 and rank after the compared ones); an item alone ranks 1.
    """
    everything = sorted({*items, *(c.left for c in comparisons), *(c.right for c in comparisons)})
    scores: dict[str, float] = dict.fromkeys(everything, 0.0)
    if comparisons:
        import pandas as pd
        from crowdkit.aggregation import BradleyTerry

        ordered = sorted(comparisons, key=lambda c: (c.left, c.right, c.worker, c.winner))
        frame = pd.DataFrame(
            {
                "worker": [c.worker for c in ordered],
                "left": [c.left for c in ordered],
                "right": [c.right for c in ordered],
                "label": [c.winner for c in ordered],
            }
        )
        fitted = BradleyTerry(n_iter=100).fit_predict(frame)
        for item, score in fitted.items():
            scores[str(item)] = round(float(score), 6)
    order = sorted(everything, key=lambda item: (-scores[item], item))
    return [Ranked(item, scores[item], position) for position, item in enumerate(order, start=1)]
