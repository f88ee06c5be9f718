"""What the executor measures of every photo it stores: the facts the automatic photo checks judge.

The executor downloads each photo once (``StorePhoto``); measuring the bytes
then costs one decode and no second download. The measurements are plain
numbers (readable, size, grey-level spread, hashes), handed to the pipeline as
text through the engine (``ChainResult.facts`` -> ``EngineState.facts`` ->
``Context.facts``); what they mean for a verdict is the pipeline's business
(:mod:`aggregation.photo_checks`). This module lives in the engine because
the engine may import no aggregation module (tests/test_architecture.py).

Pure: no I/O besides decoding the given bytes. Pillow's decoding is CPU work,
so the executor runs :func:`measure_photo` in a worker thread.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass

#: Photos are measured at about this many pixels on the long side (JPEG draft decoding: fast, and the same
#: scale for a 12-megapixel phone photo and a small one).
MEASURE_SIDE = 512
#: The average hash: an 8x8 grey thumbnail, one bit per cell (brighter than the mean or not).
HASH_SIDE = 8


@dataclass(frozen=True, slots=True)
class PhotoFacts:
    """One photo, measured: decodable or not, its size in pixels, grey-level spread, and two hashes.

    ``stddev`` is the standard deviation of the grey pixels (0-255): near 0 for a
    blank, black or lens-cap photo. ``sha256`` names the exact bytes; ``ahash``
    (64 bits, None when unreadable) stays the same through re-encoding and resizing.
    """

    readable: bool
    width: int
    height: int
    stddev: float
    sha256: str
    ahash: int | None


def photo_facts(data: bytes) -> PhotoFacts:
    """Measure a photo's bytes; whatever Pillow cannot decode (to its end) is unreadable, never an error."""
    # Pillow loads on the first measurement: a pipeline whose checks count no photo never pays for it.
    from PIL import Image, ImageStat

    digest = hashlib.sha256(data).hexdigest()
    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            scale = min(1.0, MEASURE_SIDE / max(width, height, 1))
            image.draft("L", (max(1, int(width * scale)), max(1, int(height * scale))))  # JPEG only; else no-op
            grey = image.convert("L")  # decodes the whole file: a truncated one fails here
    except Exception:  # Pillow raises OSError, SyntaxError, ValueError, zlib.error... on bad input
        return PhotoFacts(False, 0, 0, 0.0, digest, None)
    stddev = float(ImageStat.Stat(grey).stddev[0])
    cells = grey.resize((HASH_SIDE, HASH_SIDE), Image.Resampling.BOX).tobytes()
    mean = sum(cells) / len(cells)
    ahash = 0
    for value in cells:
        ahash = (ahash << 1) | (value > mean)
    return PhotoFacts(True, width, height, round(stddev, 2), digest, ahash)


def to_text(facts: PhotoFacts) -> str:
    """A compact JSON form, to pass through the engine and keep on the photo."""
    return json.dumps(
        {"ok": facts.readable, "w": facts.width, "h": facts.height, "sd": facts.stddev, "sha": facts.sha256,
         "ah": None if facts.ahash is None else f"{facts.ahash:016x}"},
        separators=(",", ":"),
    )


def from_text(text: str) -> PhotoFacts:
    """Read :func:`to_text`'s form back; raise ValueError on anything else."""
    try:
        doc = json.loads(text)
        ahash = doc["ah"]
        facts = PhotoFacts(
            readable=doc["ok"], width=doc["w"], height=doc["h"], stddev=float(doc["sd"]), sha256=doc["sha"],
            ahash=None if ahash is None else int(ahash, 16),
        )
    except (ValueError, TypeError, KeyError) as exc:
        raise ValueError(f"not photo facts: {text[:80]!r} ({exc})") from None
    if not (isinstance(facts.readable, bool) and isinstance(facts.width, int) and isinstance(facts.height, int)
            and isinstance(facts.sha256, str)):
        raise ValueError(f"not photo facts: {text[:80]!r}")
    return facts


def measure_photo(data: bytes) -> str:
    """The executor's one call: the facts of a stored photo, as text."""
    return to_text(photo_facts(data))
