"""Photo markers: written into a real JPEG's COM segment, read back, survive decoding."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from emulator.crowd.photos import PhotoMarker, read_marker, render_photo, write_marker
from emulator.crowd.scenario import PHOTO_KINDS


def _marker(**over: object) -> PhotoMarker:
    base = dict(photo_id="a1/1", org_id="org-03", org_name="Кофейня «Зерно»", address="Сходненская ул., 56",
                kind="facade", quality="good", visited=True)
    base.update(over)
    return PhotoMarker(**base)  # type: ignore[arg-type]


@pytest.mark.parametrize("kind", [*PHOTO_KINDS, "empty_place"])
def test_every_kind_renders_a_real_small_jpeg_whose_marker_round_trips(kind: str) -> None:
    marker = _marker(kind=kind)
    data = render_photo(marker, seed=3)
    assert read_marker(data) == marker
    image = Image.open(io.BytesIO(data))
    image.load()  # the whole file decodes: the COM segment did not break it
    assert image.format == "JPEG" and image.size == (480, 360)
    assert 10_000 <= len(data) <= 60_000


def _stats(data: bytes) -> tuple[float, float]:
    """Mean brightness and edge energy; edges are measured on a 4x smaller picture so the
    sensor noise averages out and only the drawn shapes count."""
    image = Image.open(io.BytesIO(data)).convert("L").resize((120, 90), Image.Resampling.BOX)
    px = image.load()
    mean = sum(image.getdata()) / (120 * 90)
    edges = sum(abs(px[x, y] - px[x + 1, y]) for y in range(90) for x in range(119))
    return mean, edges


@pytest.mark.parametrize("kind", ["facade", "signboard", "menu"])
def test_spoiled_photos_really_look_spoiled(kind: str) -> None:
    good_mean, good_edges = _stats(render_photo(_marker(kind=kind), seed=1))
    dark_mean, _ = _stats(render_photo(_marker(kind=kind, quality="dark"), seed=1))
    _, blurred_edges = _stats(render_photo(_marker(kind=kind, quality="blurred"), seed=1))
    assert good_mean > 80 and dark_mean < 40
    assert blurred_edges < good_edges * 0.7


def test_rendering_is_deterministic_for_a_seed() -> None:
    assert render_photo(_marker(), seed=5) == render_photo(_marker(), seed=5)


def test_write_marker_on_a_foreign_jpeg_and_remarking_replaces_the_old_marker() -> None:
    buf = io.BytesIO()
    Image.new("RGB", (16, 16), "red").save(buf, "JPEG", comment=b"someone else's comment")
    plain = buf.getvalue()
    assert read_marker(plain) is None
    first = write_marker(plain, _marker(photo_id="x/1"))
    second = write_marker(first, _marker(photo_id="x/2", quality="dark"))
    assert read_marker(first) == _marker(photo_id="x/1")
    assert read_marker(second) == _marker(photo_id="x/2", quality="dark")
    assert second.count(b'"photo_id"') == 1
    Image.open(io.BytesIO(second)).load()
    assert Image.open(io.BytesIO(second)).info.get("comment") is not None


@pytest.mark.parametrize("data", [b"", b"not a jpeg", b"\xff\xd8", b"\xff\xd8\xff\xfe\x00", b"\xff\xd8\xff\xfe\x00\x10{}",
                                  b"\x89PNG\r\n\x1a\n" + b"0" * 40])
def test_read_marker_returns_none_for_anything_without_a_marker(data: bytes) -> None:
    assert read_marker(data) is None


def test_truncated_photo_still_yields_its_marker_or_none_never_an_error() -> None:
    data = render_photo(_marker(), seed=2)
    for cut in (3, 10, 25, 200, 400, len(data) // 2):
        got = read_marker(data[:cut])
        assert got is None or got == _marker()
    assert read_marker(data[: len(data) // 2]) == _marker()  # the COM segment sits near the start
