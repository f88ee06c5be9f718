"""What the find_items crowd does, as pure functions (no I/O, no clock): table tests.

- :func:`plan_find`: the product a finder of a kind links for a query image;
- :func:`verification_truth`: the right answer to "does this link show the image's product?";
- :func:`comparison_truth`: the right answer to "which link is more relevant to the image?";
- :func:`give_answer`: what a worker of some accuracy answers, from its draw.
"""

from __future__ import annotations

import random
from collections.abc import Sequence

from emulator.crowd.catalogue import Catalogue, QueryImage
from emulator.crowd.find_items_scenario import LEFT, NO, RIGHT, YES, FindItemsBehaviour


def _top_weighted(ids: Sequence[str], rng: random.Random) -> str:
    """One of ``ids``, the first ones more likely (weights 1, 0.7, 0.49, ...)."""
    weights = [0.7**i for i in range(len(ids))]
    return rng.choices(list(ids), weights=weights, k=1)[0]


def plan_find(kind: str, image: QueryImage, catalogue: Catalogue, behaviour: FindItemsBehaviour,
              rng: random.Random) -> str:
    """The product id a finder of ``kind`` submits for ``image``.

    - good: a matching candidate, usually high in the order; with ``good_wrong_rate`` a
      plausible but wrong one;
    - sloppy: a plausible but wrong candidate with ``sloppy_wrong_rate``, else any matching one;
    - junk: with ``junk_unrelated_rate`` a candidate of another image, else a junk product.
    """
    wrong = image.wrong_ids
    if kind == "good":
        if wrong and rng.random() < behaviour.good_wrong_rate:
            return rng.choice(wrong)
        return _top_weighted(image.matching_ids, rng)
    if kind == "sloppy":
        if wrong and rng.random() < behaviour.sloppy_wrong_rate:
            return rng.choice(wrong)
        return rng.choice(image.matching_ids)
    if kind == "junk":
        others = [i for i in catalogue.images.values() if i.id != image.id]
        if others and (not catalogue.junk or rng.random() < behaviour.junk_unrelated_rate):
            return rng.choice(rng.choice(others).candidates)
        return rng.choice(catalogue.junk)
    raise ValueError(f"unknown finder kind {kind!r}")


def verification_truth(catalogue: Catalogue, image_id: str | None, product_id: str | None) -> str:
    """``Yes`` when the linked product is a right find for the image, else ``No`` (also for a
    link or image the catalogue does not know)."""
    return YES if catalogue.matches(image_id, product_id) else NO


def comparison_truth(catalogue: Catalogue, image_id: str | None, left: str | None, right: str | None,
                     tie_draw: float) -> tuple[str, bool]:
    """(``left`` or ``right``, tie?): the link truly more relevant to the image. Equally
    relevant links (the same product, or two unrelated ones) are a tie, settled by
    ``tie_draw`` (a uniform [0, 1) draw) so that the answer is still fixed by the seed."""
    a, b = catalogue.relevance(image_id, left), catalogue.relevance(image_id, right)
    if a == b:
        return (LEFT if tie_draw < 0.5 else RIGHT), True
    return (LEFT if a < b else RIGHT), False


def give_answer(correct: str, other: str, accuracy: float, draw: float) -> str:
    """The label a worker gives: the correct one when its draw is below its accuracy."""
    return correct if draw < accuracy else other
