"""Real JPEG photos for the simulated crowd, each carrying a machine-readable marker.

A photo is drawn with Pillow (a facade with the organization's name, a signboard, an
opening-hours plate, ...), optionally spoiled (blurred or dark), and saved as a small JPEG.
What the picture *shows* is also written as JSON in a JPEG comment (COM segment), so a
simulated verification worker who downloads the file from whatever URL the pipeline gave
it can "look" at it with :func:`read_marker`, without any image recognition, and the test
suite can check what a served file really is.

Rendering is CPU work (~20-40 ms); callers on the event loop run :func:`render_photo`
through ``asyncio.to_thread``.
"""

from __future__ import annotations

import functools
import io
import json
import random
import struct
from dataclasses import asdict, dataclass
from typing import Any

from PIL import Image, ImageDraw, ImageEnhance, ImageFilter, ImageFont

WIDTH, HEIGHT = 480, 360
QUALITIES = ("good", "blurred", "dark")
MARKER_VERSION = 1

_SOI = b"\xff\xd8"
_COM = 0xFE
_SOS = 0xDA
# Markers that stand alone (no length field): TEM, RST0-7, SOI, EOI.
_STANDALONE = {0x01, *range(0xD0, 0xD8), 0xD8, 0xD9}


@dataclass(frozen=True)
class PhotoMarker:
    """What a photo shows. ``visited`` is false when the pedestrian never went to the place."""

    photo_id: str
    org_id: str  # the place the photo shows (not necessarily the task's)
    org_name: str
    address: str
    kind: str  # one of scenario.PHOTO_KINDS, or "empty_place" for an organization that is gone
    quality: str  # good | blurred | dark
    visited: bool
    v: int = MARKER_VERSION

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> PhotoMarker:
        return cls(
            photo_id=str(doc["photo_id"]),
            org_id=str(doc["org_id"]),
            org_name=str(doc["org_name"]),
            address=str(doc["address"]),
            kind=str(doc["kind"]),
            quality=str(doc["quality"]),
            visited=bool(doc["visited"]),
            v=int(doc.get("v", MARKER_VERSION)),
        )


# ---------------------------------------------------------------- markers (COM segment)


def write_marker(jpeg: bytes, marker: PhotoMarker) -> bytes:
    """Return ``jpeg`` with the marker inserted as a COM segment after the APPn headers.

    Any marker COM segment already present is dropped, so re-marking is idempotent.
    """
    if not jpeg.startswith(_SOI):
        raise ValueError("not a JPEG (no SOI marker)")
    payload = json.dumps(marker.to_dict(), ensure_ascii=False, sort_keys=True).encode("utf-8")
    if len(payload) > 65533:
        raise ValueError("marker too large for one COM segment")
    segment = b"\xff\xfe" + struct.pack(">H", len(payload) + 2) + payload

    out = bytearray(_SOI)
    pos = 2
    inserted = False
    while pos + 4 <= len(jpeg) and jpeg[pos] == 0xFF:
        code = jpeg[pos + 1]
        if code == _SOS or code in _STANDALONE:
            break
        length = struct.unpack(">H", jpeg[pos + 2 : pos + 4])[0]
        end = pos + 2 + length
        if not inserted and not 0xE0 <= code <= 0xEF:
            out += segment
            inserted = True
        if not (code == _COM and _parse_marker_payload(jpeg[pos + 4 : end]) is not None):
            out += jpeg[pos:end]
        pos = end
    if not inserted:
        out += segment
    out += jpeg[pos:]
    return bytes(out)


def _parse_marker_payload(payload: bytes) -> PhotoMarker | None:
    try:
        doc = json.loads(payload.decode("utf-8"))
        return PhotoMarker.from_dict(doc) if isinstance(doc, dict) else None
    except (ValueError, KeyError, TypeError):
        return None


def read_marker(data: bytes) -> PhotoMarker | None:
    """The marker of a JPEG made by this module, or None for any other bytes.

    Walks the segment headers only (no decoding), so it is cheap and copes with truncated or
    non-JPEG input by returning None.
    """
    if not data.startswith(_SOI):
        return None
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return None
        code = data[pos + 1]
        if code == 0xFF:  # fill byte
            pos += 1
            continue
        if code in _STANDALONE:
            pos += 2
            continue
        if code == _SOS:
            return None
        length = struct.unpack(">H", data[pos + 2 : pos + 4])[0]
        if length < 2 or pos + 2 + length > len(data):
            return None
        if code == _COM:
            marker = _parse_marker_payload(data[pos + 4 : pos + 2 + length])
            if marker is not None:
                return marker
        pos += 2 + length
    return None


# ---------------------------------------------------------------- drawing


@functools.lru_cache(maxsize=32)
def _font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    # DejaVu draws Cyrillic names when the system has it; Pillow's built-in font is the
    # fallback (Latin only: other scripts become boxes, which the marker does not care about).
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _fit(text: str, limit: int = 26) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _centered(draw: ImageDraw.ImageDraw, box: tuple[int, int, int, int], text: str, size: int, fill: str) -> None:
    font = _font(size)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    x = box[0] + (box[2] - box[0] - (right - left)) // 2
    y = box[1] + (box[3] - box[1] - (bottom - top)) // 2 - top
    draw.text((x, y), text, font=font, fill=fill)


def _sky_and_street(draw: ImageDraw.ImageDraw, rng: random.Random) -> None:
    base = rng.randint(150, 200)
    for y in range(HEIGHT):
        shade = base + y * 40 // HEIGHT
        draw.line([(0, y), (WIDTH, y)], fill=(shade // 2, shade * 3 // 4, min(255, shade + 30)))
    draw.rectangle([0, 300, WIDTH, HEIGHT], fill=(90, 90, 95))


def _building(draw: ImageDraw.ImageDraw, rng: random.Random, boarded: bool = False) -> None:
    wall = (rng.randint(150, 210), rng.randint(120, 180), rng.randint(100, 160))
    draw.rectangle([30, 40, 450, 300], fill=wall, outline=(60, 50, 40), width=3)
    for col in range(5):
        for row in range(2):
            x, y = 50 + col * 80, 60 + row * 55
            color = (110, 90, 70) if boarded else (170, 200, 230)
            draw.rectangle([x, y, x + 50, y + 38], fill=color, outline=(40, 40, 40), width=2)
            if boarded:
                draw.line([(x, y), (x + 50, y + 38)], fill=(60, 40, 20), width=3)
    draw.rectangle([205, 220, 275, 300], fill=(70, 45, 30))


def _paper(draw: ImageDraw.ImageDraw, title: str, lines: list[str], header: str) -> None:
    draw.rectangle([0, 0, WIDTH, HEIGHT], fill=(120, 110, 100))
    draw.rectangle([70, 20, 410, 340], fill=(245, 240, 225), outline=(30, 30, 30), width=2)
    _centered(draw, (70, 28, 410, 58), _fit(header, 30), 18, "black")
    _centered(draw, (70, 60, 410, 100), title, 30, "darkred")
    for i, line in enumerate(lines):
        draw.text((95, 112 + i * 30), line, font=_font(20), fill=(20, 20, 20))


def _draw(kind: str, name: str, address: str, rng: random.Random) -> Image.Image:
    img = Image.new("RGB", (WIDTH, HEIGHT), (128, 128, 128))
    draw = ImageDraw.Draw(img)
    if kind in ("facade", "empty_place"):
        _sky_and_street(draw, rng)
        _building(draw, rng, boarded=kind == "empty_place")
        draw.rectangle([60, 170, 420, 212], fill=(30, 30, 60) if kind == "facade" else (200, 200, 200))
        _centered(draw, (60, 170, 420, 212), _fit(name) if kind == "facade" else "FOR RENT", 26,
                  "gold" if kind == "facade" else "red")
    elif kind == "signboard":
        _sky_and_street(draw, rng)
        draw.rectangle([25, 90, 455, 250], fill=(20, 60, 110), outline="white", width=6)
        _centered(draw, (25, 90, 455, 250), _fit(name, 22), 36, "white")
    elif kind == "opening_hours":
        _paper(draw, "Opening hours", ["Mon-Fri  09:00 - 21:00", "Sat      10:00 - 20:00",
                                        "Sun      11:00 - 18:00", "", "Lunch    14:00 - 14:30"], name)
    elif kind == "address_plate":
        draw.rectangle([0, 0, WIDTH, HEIGHT], fill=(170, 150, 130))
        draw.rectangle([40, 110, 440, 250], fill=(20, 60, 150), outline="white", width=5)
        _centered(draw, (40, 110, 440, 250), _fit(address, 28), 24, "white")
    elif kind == "interior":
        draw.rectangle([0, 0, WIDTH, 220], fill=(200, 180, 150))
        draw.rectangle([0, 220, WIDTH, HEIGHT], fill=(120, 80, 50))
        for i in range(4):
            x = 30 + i * 110
            draw.ellipse([x, 250, x + 80, 290], fill=(230, 230, 230), outline=(60, 60, 60))
        draw.rectangle([120, 40, 360, 90], fill=(40, 40, 40))
        _centered(draw, (120, 40, 360, 90), _fit(name, 20), 20, "white")
    elif kind == "menu":
        _paper(draw, "MENU", ["Espresso ........ 2.50", "Soup of the day . 4.90", "Pie ............. 3.20",
                               "Salad ........... 5.40", "Tea ............. 1.80"], name)
    elif kind == "covid_policy":
        _paper(draw, "Please wear a mask", ["Keep 1.5 m distance", "Sanitizer at the door",
                                             "Max 10 guests inside"], name)
    elif kind == "outdoor_seating":
        _sky_and_street(draw, rng)
        draw.rectangle([30, 60, 450, 110], fill=(30, 90, 40))
        _centered(draw, (30, 60, 450, 110), _fit(name), 24, "white")
        for i in range(3):
            x = 60 + i * 140
            draw.polygon([(x, 170), (x + 90, 170), (x + 45, 130)], fill=(200, 40, 40))
            draw.line([(x + 45, 170), (x + 45, 270)], fill=(50, 50, 50), width=4)
            draw.rectangle([x + 5, 260, x + 85, 275], fill=(140, 100, 60))
    else:
        raise ValueError(f"unknown photo kind {kind!r}")
    return img


def _texture(img: Image.Image, rng: random.Random, amount: float) -> Image.Image:
    # Camera-like noise: it makes the JPEG a realistic 20-60 KB instead of 5 KB of flat colour.
    # Drawn from the seeded rng (Image.effect_noise is not seedable), so a photo is reproducible.
    noise = Image.frombytes("L", (WIDTH, HEIGHT), rng.randbytes(WIDTH * HEIGHT)).convert("RGB")
    return Image.blend(img, noise, amount)


def render_photo(marker: PhotoMarker, *, seed: int | str = 0) -> bytes:
    """Draw the photo the marker describes, spoil it per ``marker.quality``, return JPEG bytes."""
    if marker.quality not in QUALITIES:
        raise ValueError(f"unknown photo quality {marker.quality!r}")
    rng = random.Random(f"{seed}:{marker.photo_id}")
    img = _draw(marker.kind, marker.org_name, marker.address, rng)
    # Spoil the scene first, then add sensor noise: a blurred or dark photo is still noisy.
    if marker.quality == "blurred":
        img = img.filter(ImageFilter.GaussianBlur(radius=7))
    elif marker.quality == "dark":
        img = ImageEnhance.Brightness(img).enhance(0.15)
    img = _texture(img, rng, 0.04 if marker.quality == "dark" else 0.08)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=80)
    return write_marker(buf.getvalue(), marker)
