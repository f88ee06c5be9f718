"""The automatic photo checks: evidence from a photo's own measurements, before any paid check.

The executor measures every photo it stores (:mod:`engine.photo_facts`,
re-exported here). Two checks read those facts, and each gives evidence,
log-odds added to a task's posterior like the distance check of
:mod:`aggregation.geo`, never a verdict of its own on a borderline value:

- quality: an unreadable photo, one under ``TINY_PX`` on a side or nearly
  uniform (grey-level spread under ``UNIFORM_STDDEV``: a black frame, a lens
  cap, a blank wall) is strong evidence against "usable"; a small or flat one
  (under ``SMALL_PX``, ``FLAT_STDDEV``) a mild one;
- duplicates: a photo whose bytes (``exact``) or 8x8 average hash (``near``:
  re-encoded, resized) repeat a photo of *another* assignment is evidence
  against its relevance (a photo taken somewhere else, or before); the exact
  bytes of another organization's photo are evidence against the visit too.

Pure and deterministic. :class:`PhotoIndex` is the bounded memory of photos
seen (plain data: it is pickled with the handlers' state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from common.tracked import TrackedDict
from engine.photo_facts import PhotoFacts, from_text, photo_facts, to_text

__all__ = [
    "Duplicate", "DuplicateKind", "PhotoFacts", "PhotoIndex", "Seen", "duplicate_log_odds", "from_text", "hamming",
    "photo_facts", "quality_log_odds", "to_text", "visit_log_odds",
]

#: Under this many pixels on the short side a photo shows nothing a checker can judge (a thumbnail, an icon).
TINY_PX = 64
#: Under this many a photo is small for a storefront or a sign: borderline.
SMALL_PX = 200
#: Grey-level spread (0-255) under which a photo is blank: sensor noise alone gives more.
UNIFORM_STDDEV = 2.0
#: Under this a photo is very flat (dark, fogged): borderline.
FLAT_STDDEV = 6.0
#: Log-odds against "usable" of an unreadable, tiny or blank photo: about 55:1, as strong as three fair checkers.
STRONG = -4.0
#: Log-odds of each borderline finding: about one weak checker's answer.
MILD = -1.0

#: Average hashes this many bits apart (of 64) or fewer are the same picture (re-encoding flips 0-3).
NEAR_BITS = 4
#: Log-odds against relevance of a repeated photo (and against the visit: exact bytes of another organization).
EXACT_LOG_ODDS = -3.0
NEAR_LOG_ODDS = -1.5
#: Photos the index remembers; the oldest go first (a bound on the checkpoint: about 150 bytes each).
INDEX_SIZE = 5000

DuplicateKind = Literal["exact", "near"]


def quality_log_odds(facts: PhotoFacts | None) -> tuple[float, str]:
    """Evidence for "the photo is usable" from its measurements, and a note; 0 for a normal photo or no facts."""
    if facts is None:
        return 0.0, "not measured"
    if not facts.readable:
        return STRONG, "unreadable: not a decodable image"
    short = min(facts.width, facts.height)
    size = f"{facts.width}x{facts.height} px"
    if short < TINY_PX:
        return STRONG, f"tiny: {size}"
    if facts.stddev < UNIFORM_STDDEV:
        return STRONG, f"nearly uniform: grey spread {facts.stddev:.1f}"
    odds, notes = 0.0, []
    if short < SMALL_PX:
        odds += MILD
        notes.append(f"small: {size}")
    if facts.stddev < FLAT_STDDEV:
        odds += MILD
        notes.append(f"flat: grey spread {facts.stddev:.1f}")
    return odds, "; ".join(notes) or f"{size}, grey spread {facts.stddev:.1f}"


def hamming(a: int, b: int) -> int:
    """How many bits of two hashes differ."""
    return (a ^ b).bit_count()


class Seen(NamedTuple):
    """A photo in the index: its assignment, its organization's key and its average hash (None: exact only)."""

    assignment: str
    organization: str
    ahash: int | None


@dataclass(frozen=True, slots=True)
class Duplicate:
    """A photo that repeats a photo of another assignment: how (``bits`` of the hash differ), and whose."""

    kind: DuplicateKind
    assignment: str  # the assignment whose photo this one repeats
    same_organization: bool
    bits: int = 0

    def note(self) -> str:
        how = "exact duplicate" if self.kind == "exact" else f"near duplicate ({self.bits} of 64 hash bits differ)"
        whose = "the same organization" if self.same_organization else "another organization"
        return f"{how} of a photo of assignment {self.assignment} ({whose})"


def duplicate_log_odds(duplicate: Duplicate | None) -> tuple[float, str]:
    """Evidence for "the photo is relevant" (taken there, for this task): a repeated photo was not."""
    if duplicate is None:
        return 0.0, "no duplicate"
    return (EXACT_LOG_ODDS if duplicate.kind == "exact" else NEAR_LOG_ODDS), duplicate.note()


def visit_log_odds(duplicate: Duplicate | None) -> tuple[float, str]:
    """Evidence for "the worker was there": only the exact bytes of another organization's photo count.

    A visit verdict decides the whole work, and a near match can be two
    look-alike places (two shops of one chain, one sign template: the
    emulator's photos of one kind are all alike, and counting near matches
    there rejected honest visits); equal bytes never happen by chance.
    """
    if duplicate is None or duplicate.same_organization or duplicate.kind != "exact":
        return 0.0, "no exact duplicate of another organization"
    return duplicate_log_odds(duplicate)


def _near_eligible(facts: PhotoFacts) -> bool:
    """Blank and flat photos all hash alike: only their exact bytes are compared."""
    return facts.ahash is not None and facts.stddev >= FLAT_STDDEV


#: The average hash cut into NEAR_BITS + 1 bands: two hashes at most NEAR_BITS bits apart agree
#: on a whole band at least (pigeonhole), so a near match is found among the photos that share one.
_BANDS = tuple((start, min(start + 13, 64)) for start in range(0, 64, 13))
assert len(_BANDS) == NEAR_BITS + 1


def _band_values(ahash: int) -> list[tuple[int, int]]:
    return [(i, (ahash >> start) & ((1 << (end - start)) - 1)) for i, (start, end) in enumerate(_BANDS)]


@dataclass
class PhotoIndex:
    """The photos seen lately (sha256 -> :class:`Seen`), at most ``limit``, oldest dropped first.

    Exact duplicates are found by the sha256, near ones through the bands of the
    average hashes: only photos sharing a band are compared, so a look-up does
    not grow with the index. The bands are a cache, rebuilt after a restart
    (not in the checkpoint).
    """

    limit: int = INDEX_SIZE
    # A TrackedDict: a checkpoint saves the photos added or dropped since the last one, not all 5,000.
    seen: TrackedDict[str, Seen] = field(default_factory=TrackedDict)
    _bands: dict[tuple[int, int], dict[str, None]] | None = field(default=None, repr=False, compare=False)
    _order: dict[str, int] | None = field(default=None, repr=False, compare=False)
    _next: int = field(default=0, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.seen = TrackedDict.of(self.seen)  # a plain dict when built by hand

    def __getstate__(self) -> dict[str, object]:
        return {"limit": self.limit, "seen": self.seen}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.limit = state["limit"]
        seen = state["seen"]
        # Checkpoints before the tracking held plain (sha -> tuple) dicts.
        self.seen = seen if isinstance(seen, TrackedDict) else TrackedDict(
            {sha: Seen(*entry) for sha, entry in seen.items()})
        self._bands = self._order = None
        self._next = 0

    def _cache(self) -> tuple[dict[tuple[int, int], dict[str, None]], dict[str, int]]:
        if self._bands is None or self._order is None:
            self._bands, self._order, self._next = {}, {}, 0
            for sha, seen in self.seen.items():
                self._file(sha, seen)
        return self._bands, self._order

    def _file(self, sha: str, seen: Seen) -> None:
        assert self._bands is not None and self._order is not None
        self._order[sha] = self._next
        self._next += 1
        if seen.ahash is not None:
            for band in _band_values(seen.ahash):
                self._bands.setdefault(band, {})[sha] = None

    def match(self, facts: PhotoFacts, assignment: str, organization: str) -> Duplicate | None:
        """The photo of another assignment this one repeats, or None; photos of the same assignment never count.

        An exact duplicate always counts. A near one counts only when every near
        photo belongs to one *other* organization: near photos of the same
        organization are two visits seeing the same storefront alike, and near
        photos of several organizations mean a picture with nothing particular
        in it (a template sign, a dark street), where the hash tells nothing.
        """
        exact = self.seen.peek(facts.sha256)  # a Seen never changes: a read needs no saving
        if exact is not None and exact.assignment != assignment:
            return Duplicate("exact", exact.assignment, exact.organization == organization)
        if facts.ahash is None or not _near_eligible(facts):
            return None
        bands, order = self._cache()
        # The answer is None as soon as a near photo of its own organization, or of a second other
        # one, turns up: the look stops there. Photos that all look alike (one sign template, the
        # emulator's pictures of one kind) share bands by the thousand, and a look that read every
        # one of them made each look cost the whole index.
        looked: set[str] = set()
        best: tuple[int, int, str] | None = None  # bits, then the older photo first: as a scan in order found it
        other: str | None = None  # the one other organization whose photos are near, so far
        for band in _band_values(facts.ahash):
            for sha in bands.get(band, ()):
                if sha in looked:
                    continue
                looked.add(sha)
                seen = self.seen.peek(sha)
                if seen is None or seen.ahash is None or seen.assignment == assignment:
                    continue
                bits = hamming(seen.ahash, facts.ahash)
                if bits > NEAR_BITS:
                    continue
                if seen.organization == organization or (other is not None and seen.organization != other):
                    return None
                other = seen.organization
                if best is None or (bits, order[sha]) < best[:2]:
                    best = (bits, order[sha], seen.assignment)
        if best is None:
            return None
        return Duplicate("near", best[2], False, best[0])

    def add(self, facts: PhotoFacts, assignment: str, organization: str) -> None:
        """Remember a photo (the first assignment that sent these bytes keeps them); drop the oldest past ``limit``."""
        if facts.sha256 in self.seen:
            return
        ahash = facts.ahash if _near_eligible(facts) else None
        seen = Seen(assignment, organization, ahash)
        self.seen[facts.sha256] = seen
        if self._bands is not None:
            self._file(facts.sha256, seen)
        while len(self.seen) > self.limit:
            oldest = next(iter(self.seen))
            dropped = self.seen.pop(oldest)
            if self._bands is not None and self._order is not None:
                self._order.pop(oldest, None)
                if dropped.ahash is not None:
                    for band in _band_values(dropped.ahash):
                        bucket = self._bands.get(band)
                        if bucket is not None:
                            bucket.pop(oldest, None)
                            if not bucket:
                                del self._bands[band]
