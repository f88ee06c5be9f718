"""The automatic photo checks in the pedestrian pipeline: stored photos' facts in, decision rows and evidence out.

The executor measures each photo it stores and the engine hands the facts to
the handlers (``Context.facts``, keyed ``store:<photo key>``). :func:`absorb`
files them on their photos, looks each photo up in the ledger's
:class:`~aggregation.photo_checks.PhotoIndex` (a repeat of another
assignment's photo) before adding it, and acknowledges the keys.

The checks never decide on their own. Under the dynamic policy (and only
there, like the distance check) they are evidence (log-odds) in the paid
checks' posteriors: the quality check for the quality pool, a repeated photo
for the relevance pool and, when it repeats another organization's photo,
for the visit; and each group with a photo with an issue gets one ``photo
check`` row in ``decisions.tsv`` naming every such photo (one row per group
and event, as the log keeps them). A photo without facts (stored before a
crash, or facts not in yet) counts as neutral.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from aggregation.photo_checks import (
    PhotoFacts,
    duplicate_log_odds,
    from_text,
    quality_log_odds,
    visit_log_odds,
)
from handlers import flow
from handlers.base import Outcome, decision_row, decisions
from handlers.state import Ballot, Ledger, Photo, Work

HANDLER = "pedestrian"  # the checks judge the pedestrian's photos, like the distance check
STORE_KEY = "store:"  # engine.actions.StorePhoto.key is "store:<dst_key>"

Evidence = Callable[[Ballot], float]


def organization_key(work: Work) -> str:
    """A short, stable name of the organization a work is about (its name and address, case and spaces aside)."""
    text = "\x1f".join(" ".join(part.lower().split()) for part in (work.name, work.address))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def absorb(ledger: Ledger, facts: Mapping[str, str] | None, outcome: Outcome, now: datetime, *,
           record: bool = True) -> None:
    """File the facts of stored photos on the works' photos, find repeats, log the issues, acknowledge the keys.

    ``record``: write the ``photo check`` rows (the dynamic policy, where the
    checks count). Idempotent: a photo that has facts already is left alone, so
    two pools' handlers handed the same facts in one tick file them once. Facts
    of a photo no longer in the ledger (its work decided meanwhile) are
    acknowledged and dropped.
    """
    if not facts:
        return
    photos = _photos_by_key(ledger, [key[len(STORE_KEY):] for key in facts if key.startswith(STORE_KEY)])
    found_issues: dict[tuple[str, str], tuple[Work, list[tuple[str, str]]]] = {}
    for key, text in facts.items():
        if not key.startswith(STORE_KEY):
            continue
        outcome.acknowledged.append(key)
        found = photos.get(key[len(STORE_KEY):])
        if found is None or found[2].facts is not None:
            continue
        work, group, photo = found
        try:
            measured = from_text(text)
        except ValueError as exc:
            outcome.warning(f"{work.assignment_id} photo {photo.photo_id}: facts ignored: {exc}")
            continue
        photo.facts = text
        ledger.works.touch(work.assignment_id)  # the work may have been found by walking them all
        organization = organization_key(work)
        photo.duplicate = ledger.photo_index.match(measured, work.assignment_id, organization)
        ledger.photo_index.add(measured, work.assignment_id, organization)
        issues = issues_of(measured, photo)
        if issues:
            found_issues.setdefault((work.assignment_id, group), (work, []))[1].append((photo.photo_id, issues))
    if not record:
        return
    for (pa, group), (work, listed) in found_issues.items():
        comment = "; ".join(f"{photo_id}: {issues}" for photo_id, issues in listed)
        row = decision_row(now, work, HANDLER, work.group_id(group), flow.PHOTO_CHECK, comment)
        outcome.add(pa, decisions(f"{pa}/photo-check/{group}/{listed[0][0]}", [row]))


def _photos_by_key(ledger: Ledger, keys: list[str]) -> dict[str, tuple[Work, str, Photo]]:
    """The ledger's photos under ``keys``: (work, group name, photo).

    A photo key names its assignment (``tmp/<date>/<assignment>/<field>/<n>.jpg``), so
    each one is looked for in that work alone; a key it is not found under (another layout,
    or a work decided meanwhile) is looked for in every work. A tick's facts cost a look
    each, not a walk over every photo in flight (1,700 works during a 2,000-organization
    backlog).
    """
    wanted = set(keys)
    named = {parts[2] for parts in (key.split("/", 3) for key in keys) if len(parts) > 3}
    found = _photos_in((ledger.works[aid] for aid in named if aid in ledger.works), wanted)
    if rest := wanted - found.keys():
        found.update(_photos_in(ledger.works.values(), rest))
    return found


def _photos_in(works: Iterable[Work], wanted: set[str]) -> dict[str, tuple[Work, str, Photo]]:
    return {photo.key: (work, group.name, photo)
            for work in works for group in work.groups.values() for photo in group.photos if photo.key in wanted}


def issues_of(measured: PhotoFacts, photo: Photo) -> str:
    """The photo's issues with the evidence each gives ("" for a photo without any)."""
    parts = []
    odds, note = quality_log_odds(measured)
    if odds < 0:
        parts.append(f"{note} (quality log-odds {odds:+.1f})")
    if photo.duplicate is not None:
        relevance, note = duplicate_log_odds(photo.duplicate)
        visit = visit_log_odds(photo.duplicate)[0]
        parts.append(f"{note} (relevance log-odds {relevance:+.1f}" + (f", visit {visit:+.1f})" if visit else ")"))
    return "; ".join(parts)


def facts_of(photo: Photo | None) -> PhotoFacts | None:
    """A photo's measurements, or None when it has none (or they do not read)."""
    if photo is None or photo.facts is None:
        return None
    try:
        return from_text(photo.facts)
    except ValueError:
        return None


def photo_of(ledger: Ledger, ballot: Ballot) -> Photo | None:
    """The photo a quality or relevance task shows."""
    work = ledger.works.get(ballot.pedestrian_assignment_id)
    group = work.groups.get(ballot.group.rsplit("/", 1)[-1]) if work is not None else None
    return group.photo(ballot.photo_id) if group is not None else None


def quality_evidence(ledger: Ledger) -> Evidence:
    """The quality pool's automatic evidence: the photo's own measurements."""
    return lambda ballot: quality_log_odds(facts_of(photo_of(ledger, ballot)))[0]


def relevance_evidence(ledger: Ledger) -> Evidence:
    """The relevance pool's automatic evidence: a photo repeated from another assignment."""

    def evidence(ballot: Ballot) -> float:
        photo = photo_of(ledger, ballot)
        return duplicate_log_odds(photo.duplicate)[0] if photo is not None else 0.0

    return evidence


def visit_evidence(ledger: Ledger, other: Evidence | None = None) -> Evidence:
    """The visit's automatic evidence: ``other`` (the distance) plus the strongest repeat of another organization.

    The strongest single photo counts, not their sum: a cheat who reuses four
    photos of one place has told one lie, not four independent ones.
    """

    def evidence(ballot: Ballot) -> float:
        base = other(ballot) if other is not None else 0.0
        work = ledger.works.get(ballot.pedestrian_assignment_id)
        if work is None:
            return base
        repeats = [visit_log_odds(p.duplicate)[0] for g in work.groups.values() for p in g.photos]
        return base + min(repeats, default=0.0)

    return evidence
