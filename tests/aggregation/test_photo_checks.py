"""The automatic photo checks (aggregation/photo_checks.py, engine/photo_facts.py): real JPEGs made with Pillow."""

from __future__ import annotations

import hashlib
import io
import pickle
import random

import pytest
from PIL import Image, ImageDraw

from aggregation.photo_checks import (
    EXACT_LOG_ODDS,
    FLAT_STDDEV,
    MILD,
    NEAR_BITS,
    NEAR_LOG_ODDS,
    STRONG,
    Duplicate,
    PhotoFacts,
    PhotoIndex,
    duplicate_log_odds,
    from_text,
    hamming,
    photo_facts,
    quality_log_odds,
    to_text,
    visit_log_odds,
)
from common.tracked import TrackedDict
from engine.photo_facts import measure_photo


def scene(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A photo-like picture: a sky-to-street gradient, a few random blocks, sensor noise."""
    rng = random.Random(seed)
    width, height = size
    image = Image.new("RGB", size)
    draw = ImageDraw.Draw(image)
    for y in range(height):
        level = int(220 - 160 * y / height)
        draw.line([(0, y), (width, y)], fill=(level, level, min(255, level + 20)))
    for _ in range(6):
        x0, y0 = rng.randrange(width * 3 // 4), rng.randrange(height * 3 // 4)
        x1, y1 = x0 + rng.randrange(width // 8, width // 2), y0 + rng.randrange(height // 8, height // 2)
        draw.rectangle([x0, y0, x1, y1], fill=tuple(rng.randrange(256) for _ in range(3)))
    noise = Image.frombytes("L", size, rng.randbytes(width * height)).convert("RGB")
    return Image.blend(image, noise, 0.06)


def jpeg(image: Image.Image, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def grey(size: tuple[int, int], level: int) -> Image.Image:
    return Image.new("RGB", size, (level, level, level))


NORMAL = jpeg(scene(1))


# -- facts ------------------------------------------------------------------------------


def test_a_normal_photo_is_measured_and_passes() -> None:
    facts = photo_facts(NORMAL)
    assert facts.readable and (facts.width, facts.height) == (640, 480)
    assert facts.stddev > 20 and facts.sha256 == hashlib.sha256(NORMAL).hexdigest()
    assert facts.ahash is not None and 0 < facts.ahash < 2**64 and 8 < facts.ahash.bit_count() < 56
    odds, note = quality_log_odds(facts)
    assert odds == 0.0 and "640x480" in note


def test_a_tiny_photo_is_strong_evidence_against() -> None:
    facts = photo_facts(jpeg(scene(2, (40, 30))))
    assert facts.readable and (facts.width, facts.height) == (40, 30)
    assert quality_log_odds(facts) == (STRONG, "tiny: 40x30 px")


def test_a_uniform_grey_photo_is_strong_evidence_against() -> None:
    facts = photo_facts(jpeg(grey((640, 480), 128)))
    assert facts.readable and facts.stddev < 1.0
    odds, note = quality_log_odds(facts)
    assert odds == STRONG and note.startswith("nearly uniform")


@pytest.mark.parametrize("data", [b"\x00\x01garbage" * 100, b"", NORMAL[: len(NORMAL) // 2]],
                         ids=["garbage", "empty", "truncated jpeg"])
def test_bytes_that_do_not_decode_are_unreadable_not_an_error(data: bytes) -> None:
    facts = photo_facts(data)
    assert facts == PhotoFacts(False, 0, 0, 0.0, hashlib.sha256(data).hexdigest(), None)
    assert quality_log_odds(facts) == (STRONG, "unreadable: not a decodable image")


def test_borderline_values_are_mild_evidence_only() -> None:
    small = photo_facts(jpeg(scene(3, (180, 150))))
    assert quality_log_odds(small) == (MILD, "small: 180x150 px")
    flat = photo_facts(jpeg(Image.blend(grey((640, 480), 40), scene(4), 0.08)))  # a dark, foggy frame
    assert 2.0 <= flat.stddev < FLAT_STDDEV
    odds, note = quality_log_odds(flat)
    assert odds == MILD and note.startswith("flat")
    both = photo_facts(jpeg(Image.blend(grey((180, 150), 40), scene(5, (180, 150)), 0.08)))
    assert quality_log_odds(both)[0] == 2 * MILD
    assert quality_log_odds(None) == (0.0, "not measured")


def test_facts_survive_their_text_form_and_nonsense_is_refused() -> None:
    for data in (NORMAL, b"junk"):
        facts = photo_facts(data)
        text = to_text(facts)
        assert from_text(text) == facts and len(text) < 160
        assert measure_photo(data) == text
    for bad in ("", "{}", "[1, 2]", '{"ok": "yes", "w": 1, "h": 1, "sd": 0, "sha": "x", "ah": null}'):
        with pytest.raises(ValueError, match="not photo facts"):
            from_text(bad)


def test_a_big_photo_is_measured_at_a_reduced_scale_but_reports_its_size() -> None:
    facts = photo_facts(jpeg(scene(6, (3000, 2000))))
    assert (facts.width, facts.height) == (3000, 2000) and facts.stddev > 20


# -- duplicates -------------------------------------------------------------------------


def test_hamming_counts_differing_bits() -> None:
    assert hamming(0, 0) == 0 and hamming(0b1011, 0b0001) == 2 and hamming(0, 2**64 - 1) == 64


def test_an_exact_duplicate_from_another_assignment_is_found() -> None:
    index = PhotoIndex()
    facts = photo_facts(NORMAL)
    assert index.match(facts, "a1", "org-a") is None
    index.add(facts, "a1", "org-a")
    assert index.match(facts, "a2", "org-b") == Duplicate("exact", "a1", same_organization=False)
    assert index.match(facts, "a3", "org-a") == Duplicate("exact", "a1", same_organization=True)


def test_the_same_image_re_encoded_is_a_near_duplicate() -> None:
    index = PhotoIndex()
    index.add(photo_facts(jpeg(scene(7), quality=95)), "a1", "org-a")
    again = photo_facts(jpeg(scene(7), quality=60))
    duplicate = index.match(again, "a2", "org-b")
    assert duplicate is not None and duplicate.kind == "near" and duplicate.assignment == "a1"
    assert not duplicate.same_organization and duplicate.bits <= NEAR_BITS
    resized = photo_facts(jpeg(scene(7).resize((320, 240)), quality=70))
    assert index.match(resized, "a3", "org-c") is not None
    assert index.match(photo_facts(jpeg(scene(8))), "a4", "org-d") is None  # another picture


def test_photos_of_the_same_assignment_never_count() -> None:
    index = PhotoIndex()
    index.add(photo_facts(jpeg(scene(9), quality=95)), "a1", "org-a")
    assert index.match(photo_facts(jpeg(scene(9), quality=95)), "a1", "org-a") is None  # exact, same assignment
    assert index.match(photo_facts(jpeg(scene(9), quality=60)), "a1", "org-a") is None  # near, same assignment


def test_near_photos_of_the_same_organization_or_of_several_are_not_evidence() -> None:
    index = PhotoIndex()
    index.add(photo_facts(jpeg(scene(10), quality=95)), "a1", "org-a")
    # Two visits of one place see the same storefront alike: only exact bytes count there.
    assert index.match(photo_facts(jpeg(scene(10), quality=60)), "a2", "org-a") is None
    # A picture near photos of two organizations has nothing particular in it: the hash tells nothing.
    index.add(photo_facts(jpeg(scene(10), quality=80)), "a3", "org-b")
    assert index.match(photo_facts(jpeg(scene(10), quality=70)), "a4", "org-c") is None


def test_blank_photos_are_compared_by_their_bytes_only() -> None:
    index = PhotoIndex()
    black = photo_facts(jpeg(grey((640, 480), 5)))
    index.add(black, "a1", "org-a")
    assert index.match(photo_facts(jpeg(grey((640, 480), 10))), "a2", "org-b") is None
    assert index.match(black, "a2", "org-b") == Duplicate("exact", "a1", False)


def test_the_index_is_bounded_and_forgets_the_oldest_first() -> None:
    index = PhotoIndex(limit=3)
    photos = [photo_facts(jpeg(scene(20 + n))) for n in range(5)]
    for n, facts in enumerate(photos):
        index.add(facts, f"a{n}", f"org-{n}")
    index.add(photos[4], "later", "org-x")  # known bytes: the first sender keeps them
    assert len(index.seen) == 3 and [s.assignment for s in index.seen.values()] == ["a2", "a3", "a4"]
    assert index.match(photos[0], "b", "org-y") is None
    assert index.match(photos[4], "b", "org-y") == Duplicate("exact", "a4", False)
    again = pickle.loads(pickle.dumps(index))
    assert again == index and again.match(photos[3], "b", "org-y") == Duplicate("exact", "a3", False)


def test_an_index_saved_before_the_tracking_loads_tracked_and_a_look_marks_nothing() -> None:
    """Older checkpoints held the index as plain (sha -> tuple) dicts; a look only peeks, so a
    checkpoint saves just the photos added or dropped."""
    photos = [photo_facts(jpeg(scene(40 + n))) for n in range(3)]
    old = PhotoIndex.__new__(PhotoIndex)
    old.__setstate__({"limit": 3, "seen": {f.sha256: (f"a{n}", f"org-{n}", f.ahash) for n, f in enumerate(photos)}})
    assert isinstance(old.seen, TrackedDict) and [s.assignment for s in old.seen.values()] == ["a0", "a1", "a2"]
    old.seen.take_changed()
    assert old.match(photos[1], "b", "org-y") == Duplicate("exact", "a1", False)
    assert old.seen.take_changed() == (set(), set())
    newer = photo_facts(jpeg(scene(60)))
    old.add(newer, "a3", "org-3")  # the oldest goes
    assert old.seen.take_changed() == ({newer.sha256, photos[0].sha256}, {photos[0].sha256})


def test_repeats_are_evidence_against_relevance_and_exact_ones_of_another_organization_against_the_visit() -> None:
    exact_other = Duplicate("exact", "a1", same_organization=False)
    near_same = Duplicate("near", "a1", same_organization=True, bits=2)
    assert duplicate_log_odds(None) == (0.0, "no duplicate")
    assert duplicate_log_odds(exact_other) == (EXACT_LOG_ODDS, exact_other.note())
    assert duplicate_log_odds(near_same)[0] == NEAR_LOG_ODDS
    assert visit_log_odds(exact_other)[0] == EXACT_LOG_ODDS
    assert visit_log_odds(near_same) == (0.0, "no exact duplicate of another organization")
    assert visit_log_odds(Duplicate("near", "a1", same_organization=False, bits=1))[0] == 0.0  # look-alike places
    assert exact_other.note() == "exact duplicate of a photo of assignment a1 (another organization)"
    assert "2 of 64 hash bits" in near_same.note()


def _scan(index: PhotoIndex, facts: PhotoFacts, assignment: str, organization: str) -> Duplicate | None:
    """What match() answered when it compared the photo with every photo of the index, oldest first."""
    exact = index.seen.get(facts.sha256)
    if exact is not None and exact.assignment != assignment:
        return Duplicate("exact", exact.assignment, exact.organization == organization)
    if facts.ahash is None or facts.stddev < FLAT_STDDEV:
        return None
    best, organizations = None, set()
    for seen in index.seen.values():
        if seen.ahash is None or seen.assignment == assignment:
            continue
        bits = (seen.ahash ^ facts.ahash).bit_count()
        if bits <= NEAR_BITS:
            organizations.add(seen.organization)
            if best is None or bits < best[0]:
                best = (bits, seen.assignment)
    if best is None or len(organizations) != 1 or organization in organizations:
        return None
    return Duplicate("near", best[1], False, best[0])


@pytest.mark.parametrize("seed", range(5))
def test_the_banded_look_up_finds_what_a_scan_of_every_photo_finds(seed: int) -> None:
    rng = random.Random(seed)
    index = PhotoIndex(limit=300)
    found: list[str] = []
    bases = [rng.getrandbits(64) for _ in range(40)]
    for n in range(1500):
        ahash = rng.choice(bases)
        for _ in range(rng.randint(0, 6)):  # a few flipped bits: near, or just too far
            ahash ^= 1 << rng.randrange(64)
        facts = PhotoFacts(True, 800, 600, 40.0, f"sha{rng.randrange(2000)}", ahash)
        assignment, organization = f"a{rng.randrange(400)}", f"o{rng.randrange(30)}"
        expected = _scan(index, facts, assignment, organization)
        assert index.match(facts, assignment, organization) == expected
        found += [expected.kind] if expected else []
        index.add(facts, assignment, organization)
        if n == 700:  # a restart: the checkpoint keeps the photos, the bands are rebuilt from them
            assert set(index.__getstate__()) == {"limit", "seen"}
            index = pickle.loads(pickle.dumps(index))
            assert index._bands is None
    assert found.count("near") > 20 and found.count("exact") > 20  # both kinds were really compared


def test_a_look_among_thousands_of_alike_photos_stops_early(monkeypatch: pytest.MonkeyPatch) -> None:
    """Alike photos share every band: a look that compared each of them cost the whole index per photo."""
    rng = random.Random(7)
    base = rng.getrandbits(64)
    index = PhotoIndex()
    for n in range(3000):  # one sign template, photographed for 600 organizations
        index.add(PhotoFacts(True, 800, 600, 40.0, f"sha{n}", base ^ (1 << rng.randrange(64))), f"a{n}", f"o{n % 600}")
    compared = 0

    def counting(a: int, b: int) -> int:
        nonlocal compared
        compared += 1
        return (a ^ b).bit_count()

    monkeypatch.setattr("aggregation.photo_checks.hamming", counting)
    assert index.match(PhotoFacts(True, 800, 600, 40.0, "new", base), "b", "o-new") is None  # near several: nothing
    assert compared <= 3  # the second organization's photo ends the look
    compared = 0
    assert index.match(PhotoFacts(True, 800, 600, 40.0, "new", base), "b", "o5") is None  # its own organization's
    assert compared <= 6
