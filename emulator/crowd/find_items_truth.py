"""Scoring a find_items run against the crowd's ground truth (pure; no store, no I/O).

The truth is the dict :meth:`emulator.crowd.find_items.FindItemsCrowd.truth` returns (also
served at ``/_emulator/truth``; ``truth["kind"] == "find_items"``). A run's results are the
daemon's two tables as lists of dicts (e.g. ``csv.DictReader`` rows or
``DataFrame.to_dict("records")``):

- ``verified_links.tsv``: ``image, link, worker, verdict, confidence`` (one row per find the
  daemon accepted or rejected; ``worker`` is the finder's user id);
- ``rankings.tsv``: ``image, link, score, rank`` (rank 1 is the best link of its image).

Images and links are recognised by their URL *path* (``/_emulator/catalogue/images/<id>.jpg``,
``.../products/<id>.jpg``), so a link minted by an emulator that has since restarted on
another port still counts; a bare image id is accepted in the ``image`` column too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from scipy.stats import spearmanr  # type: ignore[import-untyped]  # scipy ships no stubs (crowd-kit brings it)

from emulator.crowd.catalogue import image_of_url, product_of_url

_ACCEPT = {"accept", "accepted", "yes", "approve", "approved", "true", "1"}
_REJECT = {"reject", "rejected", "no", "false", "0"}


def normalize_verdict(value: object) -> str:
    """``"ACCEPTED"``, ``"Yes"``, ``"accept"`` -> ``"accept"``; ``"REJECTED"``, ``"No"`` ->
    ``"reject"``; ValueError for anything else."""
    key = str(value).strip().lower()
    if key in _ACCEPT:
        return "accept"
    if key in _REJECT:
        return "reject"
    raise ValueError(f"unknown verdict {value!r}; expected accept/accepted/yes or reject/rejected/no")


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _image_id(value: object, images: Mapping[str, Any]) -> str | None:
    found = image_of_url(value)
    if found is None and isinstance(value, str) and value.strip() in images:
        found = value.strip()
    return found if found in images else None


def _number(value: object) -> float | None:
    try:
        number = float(str(value))
    except (TypeError, ValueError):
        return None
    return None if number != number else number  # NaN (an empty cell read by pandas) -> None


@dataclass
class _Verified:
    """The verified rows, counted (see :func:`score_find_items`)."""

    accepted: int = 0
    rejected: int = 0
    accepted_matching: int = 0
    good_rejected: int = 0
    by_finder: dict[tuple[str, str], str] = field(default_factory=dict)  # (image, worker) -> verdict
    by_product: dict[tuple[str, str | None], str] = field(default_factory=dict)  # (image, product) -> first verdict


def _count_verified(rows: Iterable[Mapping[str, Any]], images: Mapping[str, Mapping[str, Any]],
                    unknown: list[dict[str, Any]]) -> _Verified:
    out = _Verified()
    for row in rows:
        image_id = _image_id(row.get("image"), images)
        if image_id is None:
            unknown.append(dict(row))
            continue
        verdict = normalize_verdict(row.get("verdict"))
        product_id = product_of_url(row.get("link"))
        good = product_id is not None and product_id in (images[image_id].get("matching") or ())
        if verdict == "accept":
            out.accepted += 1
            out.accepted_matching += good
        else:
            out.rejected += 1
            out.good_rejected += good
        worker = str(row.get("worker") or "")
        if worker:
            out.by_finder[(image_id, worker)] = verdict
        out.by_product.setdefault((image_id, product_id), verdict)
    return out


def _ranked(rows: Iterable[Mapping[str, Any]], images: Mapping[str, Mapping[str, Any]], worst: int,
            unknown: list[dict[str, Any]]) -> dict[str, list[tuple[float, int]]]:
    """Image -> [(the daemon's rank, the link's true relevance)]; a row without a rank is
    ordered by its score (higher is better)."""
    ranked: dict[str, list[tuple[float, int]]] = {}
    for row in rows:
        image_id = _image_id(row.get("image"), images)
        rank = _number(row.get("rank"))
        if rank is None:
            score = _number(row.get("score"))
            rank = None if score is None else -score
        if image_id is None or rank is None:
            unknown.append(dict(row))
            continue
        candidates = list(images[image_id].get("candidates") or ())
        product_id = product_of_url(row.get("link"))
        relevance = candidates.index(product_id) if product_id in candidates else worst
        ranked.setdefault(image_id, []).append((rank, relevance))
    return ranked


def _spearman(ranked: Mapping[str, list[tuple[float, int]]]) -> tuple[dict[str, float], int, int]:
    """(image -> Spearman's rho, images with fewer than two links, images with a constant side)."""
    by_image: dict[str, float] = {}
    too_few = undefined = 0
    for image_id, pairs in sorted(ranked.items()):
        if len(pairs) < 2:
            too_few += 1
            continue
        ranks = [r for r, _ in pairs]
        truths = [t for _, t in pairs]
        if len(set(ranks)) < 2 or len(set(truths)) < 2:  # a constant side has no correlation
            undefined += 1
            continue
        by_image[image_id] = round(float(spearmanr(ranks, truths).statistic), 4)
    return by_image, too_few, undefined


def score_find_items(
    truth: Mapping[str, Any],
    verified: Iterable[Mapping[str, Any]],
    rankings: Iterable[Mapping[str, Any]],
) -> dict[str, Any]:
    """How good were the daemon's decisions and rankings?

    - ``links_accepted`` / ``links_rejected``: verified rows by verdict;
      ``precision_accepted``: the share of accepted links that truly match their image (one of
      its top-M candidates); ``bad_links_accepted``: accepted links that do not (plausible but
      wrong, junk, or unknown); ``good_links_rejected``: matching links that were rejected.
    - ``junk_submissions``: finds (in the truth) that link a junk product or another image's
      product; ``junk_caught``: those the daemon rejected (matched to verified rows by image
      and finder, else by image and product); ``junk_undecided``: those without a row;
      ``junk_caught_rate`` = caught / junk_submissions.
    - ``spearman_mean``: the mean, over ranked images, of Spearman's correlation between the
      daemon's ``rank`` and the links' true relevance order (0 = the true product, then the
      candidates' order; anything else ranks after all candidates, tied). Images with fewer
      than two ranked links, or whose ranks or true order are all tied, have no correlation
      and are counted in ``images_too_few_links`` / ``images_undefined``.
    - ``unknown_rows``: rows whose image is not one of the catalogue's (or without a rank or
      score).
    """
    catalogue: Mapping[str, Any] = truth.get("catalogue") or {}
    images: Mapping[str, Mapping[str, Any]] = catalogue.get("images") or {}
    submissions: Mapping[str, Mapping[str, Any]] = truth.get("submissions") or {}
    unknown: list[dict[str, Any]] = []
    counted = _count_verified(verified, images, unknown)

    junk = [s for s in submissions.values() if s.get("junk")]
    caught = undecided = 0
    for sub in junk:
        image_id = str(sub.get("image_id"))
        verdict = counted.by_finder.get((image_id, str(sub.get("worker_id")))) or \
            counted.by_product.get((image_id, sub.get("product_id")))
        undecided += verdict is None
        caught += verdict == "reject"

    worst = int(catalogue.get("candidates_per_image") or 0)
    by_image, too_few, undefined = _spearman(_ranked(rankings, images, worst, unknown))
    return {
        "verified": counted.accepted + counted.rejected,
        "links_accepted": counted.accepted,
        "links_rejected": counted.rejected,
        "accepted_matching": counted.accepted_matching,
        "precision_accepted": _ratio(counted.accepted_matching, counted.accepted),
        "bad_links_accepted": counted.accepted - counted.accepted_matching,
        "good_links_rejected": counted.good_rejected,
        "submissions": len(submissions),
        "junk_submissions": len(junk),
        "junk_caught": caught,
        "junk_undecided": undecided,
        "junk_caught_rate": _ratio(caught, len(junk)),
        "images_ranked": len(by_image),
        "images_too_few_links": too_few,
        "images_undefined": undefined,
        "spearman_mean": round(sum(by_image.values()) / len(by_image), 4) if by_image else None,
        "spearman_by_image": by_image,
        "unknown_rows": unknown,
    }
