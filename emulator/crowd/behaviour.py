"""What simulated workers do, as pure functions of a seeded ``random.Random``.

Pedestrians: :func:`plan_pedestrian_work` decides what a worker of a kind (honest, sloppy,
cheat) submits for an organization (verdict, coordinates, comment, which photos of what),
and :func:`pedestrian_output_values` turns that plan plus the uploaded attachment ids into
the assignment's ``output_values``.

Verification workers: ``correct_*`` functions give the true answer to a visit, quality or
relevance task from the photo markers the worker managed to read (``None`` for a URL that
did not open or a file without a marker); :func:`answer_task` turns that and the worker's
draw into the label a worker of a given accuracy submits (golden tasks are answered against
their known solution).

Nothing here does I/O or reads the clock, so every behaviour is a table test.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from emulator.crowd.photos import PhotoMarker
from emulator.crowd.scenario import Fields, Organization, Scenario

#: Free text a pipeline must survive in TSVs: tabs, newlines, quotes, formulas, non-ASCII.
HOSTILE_COMMENTS = (
    "Closed\tfor lunch\tcame back at 15:00",
    "Line one\nline two\r\nline three",
    'Owner said "no photos", I took them "anyway"',
    "=cmd|' /C calc'!A0",
    "+SUM(1,2)",
    "@import data",
    "Кафе открыто, всё в порядке ☕",
    "quote ' and backslash \\ at the end\\",
    "\ttab first, emoji 🚲 last",
)
PLAIN_COMMENTS = ("", "", "All fine", "Entrance from the yard", "Busy street, photos from across the road")

#: Within this distance of the organization, worker coordinates count as "was there".
NEAR_METERS = 1000.0


@dataclass(frozen=True)
class PedestrianWork:
    """What one pedestrian submits for one task, before the photos are uploaded."""

    verdict: str
    worker_coordinates: str
    comment: str
    visited: bool
    photos: dict[str, list[PhotoMarker]]  # photo field -> photos (in upload order)
    flags: dict[str, str]  # bonus flag -> yes/no
    as_list: frozenset[str] = field(default_factory=frozenset)  # fields sent as a list, not a string


# ---------------------------------------------------------------- geometry


def parse_coordinates(text: object) -> tuple[float, float] | None:
    """``"lat,lon"`` -> floats, or None when it does not parse."""
    if not isinstance(text, str):
        return None
    parts = text.split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (-90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle distance in meters (haversine)."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * 6371000.0 * math.asin(math.sqrt(h))


def _offset(coordinates: tuple[float, float], meters: float, rng: random.Random) -> str:
    lat, lon = coordinates
    angle = rng.random() * 2 * math.pi
    dlat = meters * math.cos(angle) / 111320.0
    dlon = meters * math.sin(angle) / (111320.0 * max(0.01, math.cos(math.radians(lat))))
    return f"{lat + dlat:.6f},{lon + dlon:.6f}"


# ---------------------------------------------------------------- pedestrians


def photo_identity(org_id: str, field: str, n: int) -> str:
    """A photo's name in its marker and the truth: the n-th (from 1) photo of ``field`` for ``org_id``.

    Made from the organization, not from the time-based assignment id, so the same seed
    names the same photos in every run.
    """
    return f"{org_id}/{field}/{n}"


def _comment(rng: random.Random, hostile_rate: float) -> str:
    if rng.random() < hostile_rate:
        return rng.choice(HOSTILE_COMMENTS)
    return rng.choice(PLAIN_COMMENTS)


def _marker(photo_id: str, org: Organization, kind: str, quality: str, visited: bool) -> PhotoMarker:
    return PhotoMarker(photo_id=photo_id, org_id=org.id, org_name=org.name, address=org.address,
                       kind=kind, quality=quality, visited=visited)


def _cheat_work(
    org: Organization,
    scenario: Scenario,
    rng: random.Random,
    pid: Callable[[str], str],
    comment: str,
    flags: dict[str, str],
) -> PedestrianWork:
    """A cheat's work (see :func:`plan_pedestrian_work`); ``pid`` names the photos."""
    f = scenario.fields
    b = scenario.behaviour
    coords = _offset(org.lat_lon, rng.uniform(5000, 30000), rng)
    others = [o for o in scenario.organizations if o.exists and o.id != org.id]
    if rng.random() < b.cheat_no_org_rate or not others:
        return PedestrianWork(f.verdict_no_org, coords, comment, False, {}, flags)
    shown = rng.choice(others)
    photos: dict[str, list[PhotoMarker]] = {}
    for name, photo_kind in f.main_fields.items():
        photos[name] = [_marker(pid(name), shown, photo_kind, "good", False)]
    for name, photo_kind in f.bonus_fields.items():
        if rng.random() < b.bonus_photo_rate:
            photos[name] = [_marker(pid(name), shown, photo_kind, "good", False)]
            flags[f.flag_of(name)] = f.bonus_flag_yes
    return PedestrianWork(f.verdict_ok, coords, comment, False, photos, flags, _shapes(photos, rng))


def plan_pedestrian_work(
    kind: str,
    org: Organization,
    scenario: Scenario,
    rng: random.Random,
    *,
    photo_prefix: str,
) -> PedestrianWork:
    """Decide what a pedestrian of ``kind`` submits for ``org``.

    - honest: goes; ``ok`` with good photos of every main field (now and then one spoiled
      shot next to a good one) and some bonus photos; ``no_org`` with photos of the empty
      place when the organization does not exist.
    - sloppy: goes, but many photos are blurred or dark and some show the wrong thing
      (e.g. the facade uploaded as the opening hours).
    - cheat: never goes; coordinates kilometres away; either ``no_org`` with no photos, or
      ``ok`` with good-looking photos of *another* organization.

    Photos are named ``<photo_prefix>/<field>/<n>`` (:func:`photo_identity`).
    """
    f = scenario.fields
    b = scenario.behaviour
    photos: dict[str, list[PhotoMarker]] = {}
    flags = dict.fromkeys(f.bonus_flags, f.bonus_flag_no)
    counters: dict[str, int] = {}

    def pid(name: str) -> str:
        # "<prefix>/<field>/<n>": the simulator passes the organization id, so a photo's
        # identity does not depend on the (time-based) assignment it is uploaded to.
        counters[name] = counters.get(name, 0) + 1
        return photo_identity(photo_prefix, name, counters[name])

    comment = _comment(rng, b.hostile_comment_rate)

    if kind == "cheat":
        return _cheat_work(org, scenario, rng, pid, comment, flags)

    if kind not in ("honest", "sloppy"):
        raise ValueError(f"unknown pedestrian kind {kind!r}")
    coords = _offset(org.lat_lon, rng.uniform(2, 40), rng)
    bad_rate = b.sloppy_bad_photo_rate if kind == "sloppy" else b.honest_bad_photo_rate
    wrong_rate = b.sloppy_wrong_kind_rate if kind == "sloppy" else 0.0

    def shot(name: str, photo_kind: str) -> PhotoMarker:
        quality = rng.choice(("blurred", "dark")) if rng.random() < bad_rate else "good"
        if rng.random() < wrong_rate:
            photo_kind = rng.choice([k for k in f.photo_fields.values() if k != photo_kind] or [photo_kind])
        return _marker(pid(name), org, photo_kind, quality, True)

    if not org.exists:
        # Nothing there: photograph the empty storefront and the address plate as proof.
        first_main = next(iter(f.main_fields))
        empty = _marker(pid(first_main), org, "empty_place", "blurred" if rng.random() < bad_rate else "good", True)
        photos[first_main] = [empty]
        plate_field = next((n for n, k in f.main_fields.items() if k == "address_plate" and n != first_main), None)
        if plate_field:
            photos[plate_field] = [_marker(pid(plate_field), org, "address_plate", "good", True)]
        return PedestrianWork(f.verdict_no_org, coords, comment, True, photos, flags, _shapes(photos, rng))

    for name, photo_kind in f.main_fields.items():
        photos[name] = [shot(name, photo_kind)]
        if rng.random() < b.extra_photo_rate:
            photos[name].append(shot(name, photo_kind))
    for name, photo_kind in f.bonus_fields.items():
        if rng.random() < b.bonus_photo_rate:
            photos[name] = [shot(name, photo_kind)]
            flags[f.flag_of(name)] = f.bonus_flag_yes
    return PedestrianWork(f.verdict_ok, coords, comment, True, photos, flags, _shapes(photos, rng))


def _shapes(photos: Mapping[str, Sequence[PhotoMarker]], rng: random.Random) -> frozenset[str]:
    """Fields sent as a list of ids; a single photo is sometimes sent as a bare string."""
    return frozenset(name for name, shots in photos.items() if len(shots) > 1 or rng.random() < 0.5)


def pedestrian_output_values(
    work: PedestrianWork, attachment_ids: Mapping[str, Sequence[str]], fields: Fields
) -> dict[str, Any]:
    """The assignment's ``output_values``: photo fields hold attachment ids (string or list)."""
    out: dict[str, Any] = {
        fields.verdict_field: work.verdict,
        fields.worker_coordinates_field: work.worker_coordinates,
        fields.comment_field: work.comment,
    }
    for name in fields.photo_fields:
        ids = list(attachment_ids.get(name, ()))
        if not ids:
            out[name] = None
        elif name in work.as_list:
            out[name] = ids
        else:
            out[name] = ids[0] if len(ids) == 1 else ids
    out.update(work.flags)
    return out


# ---------------------------------------------------------------- truth of checks


def photo_urls(value: object) -> list[str]:
    """URLs (or ids) held by a photo field: a string, a list of strings, or nothing."""
    if isinstance(value, str):
        return [value] if value else []
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str) and v]
    return []


def visit_task_urls(input_values: Mapping[str, Any], fields: Fields) -> list[str]:
    return [url for name in fields.photo_fields for url in photo_urls(input_values.get(name))]


def shows_task_org(marker: PhotoMarker, input_values: Mapping[str, Any]) -> bool:
    """The photo is of the organization (place) the task names."""
    name = input_values.get("name")
    address = input_values.get("address")
    if name is None and address is None:
        return False
    return (name is None or marker.org_name == name) and (address is None or marker.address == address)


def correct_visit(input_values: Mapping[str, Any], markers: Mapping[str, PhotoMarker | None], fields: Fields) -> bool:
    """Did the pedestrian really go there? All photos taken on site, of this place, and the
    reported coordinates near it. No photos, or a photo that cannot be seen, means no."""
    urls = visit_task_urls(input_values, fields)
    if not urls:
        return False
    for url in urls:
        marker = markers.get(url)
        if marker is None or not marker.visited or not shows_task_org(marker, input_values):
            return False
    here = parse_coordinates(input_values.get("coordinates"))
    there = parse_coordinates(input_values.get(fields.worker_coordinates_field))
    far = here is not None and there is not None and distance_m(here, there) > NEAR_METERS
    return not far


def correct_quality(marker: PhotoMarker | None) -> bool:
    return marker is not None and marker.quality == "good"


def correct_relevance(input_values: Mapping[str, Any], marker: PhotoMarker | None, fields: Fields) -> bool:
    """The photo shows what its field asks for, of the organization the task names."""
    if marker is None:
        return False
    wanted = fields.photo_fields.get(str(input_values.get("image_field")))
    name = input_values.get("name")
    return wanted is not None and marker.kind == wanted and (name is None or marker.org_name == name)


def correct_answer(pool: str, input_values: Mapping[str, Any], markers: Mapping[str, PhotoMarker | None],
                   fields: Fields) -> bool:
    """The true (positive/negative) answer to a task of a verification pool."""
    if pool == "visit":
        return correct_visit(input_values, markers, fields)
    image = input_values.get("image")
    marker = markers.get(image) if isinstance(image, str) else None
    if pool == "quality":
        return correct_quality(marker)
    if pool == "relevance":
        return correct_relevance(input_values, marker, fields)
    raise ValueError(f"unknown verification pool {pool!r}")


def task_urls(pool: str, input_values: Mapping[str, Any], fields: Fields) -> list[str]:
    """Every photo URL a worker has to open for a task of ``pool``."""
    if pool == "visit":
        return visit_task_urls(input_values, fields)
    image = input_values.get("image")
    return [image] if isinstance(image, str) and image else []


def known_label(task: Mapping[str, Any], answer_field: str) -> str | None:
    """The known solution's label of a golden task, or None for an ordinary task."""
    for solution in task.get("known_solutions") or ():
        value = (solution.get("output_values") or {}).get(answer_field)
        if isinstance(value, str):
            return value
    return None


def answer_task(
    pool: str,
    task: Mapping[str, Any],
    markers: Mapping[str, PhotoMarker | None],
    fields: Fields,
    accuracy: float,
    draw: float,
) -> tuple[str, str]:
    """(label given, label that is correct) for one task by a worker of ``accuracy``.

    ``draw`` is the worker's uniform [0, 1) draw for this task: the worker gives the correct
    label when it is below ``accuracy`` (so with probability ``accuracy``) and the other one
    otherwise. For a golden task the correct label is its known solution.
    """
    labels = fields.labels(pool)
    golden = known_label(task, labels.answer_field)
    if golden is not None:
        correct = golden
        other = labels.reject_label if golden == labels.accept_label else labels.accept_label
    else:
        ok = correct_answer(pool, task.get("input_values") or {}, markers, fields)
        correct = labels.accept_label if ok else labels.reject_label
        other = labels.reject_label if ok else labels.accept_label
    given = correct if draw < accuracy else other
    return given, correct


# ---------------------------------------------------------------- expected outcome


def expected_outcome(
    work: PedestrianWork, org: Organization, fields: Fields
) -> dict[str, Any]:
    """What a perfect pipeline decides for this work: accept / reject / no_org, and which
    bonus fields truly deserve a bonus (flag yes and a good, relevant photo)."""
    task_input = {"name": org.name, "address": org.address, "coordinates": org.coordinates,
                  fields.worker_coordinates_field: work.worker_coordinates}
    all_markers = [m for shots in work.photos.values() for m in shots]
    visited = bool(all_markers) and all(m.visited and shows_task_org(m, task_input) for m in all_markers)
    here, there = org.lat_lon, parse_coordinates(work.worker_coordinates)
    if there is None or distance_m(here, there) > NEAR_METERS:
        visited = False

    def good(name: str) -> bool:
        wanted = fields.photo_fields[name]
        return any(m.quality == "good" and m.kind == wanted and m.org_name == org.name
                   for m in work.photos.get(name, ()))

    good_fields = [name for name in fields.photo_fields if good(name)]
    bonus = [name for name in fields.bonus_fields
             if work.flags.get(fields.flag_of(name)) == fields.bonus_flag_yes and name in good_fields]
    if not visited:
        outcome = "reject"
    elif work.verdict == fields.verdict_no_org:
        outcome = "no_org"
    elif all(name in good_fields for name in fields.required_fields):
        outcome = "accept"
    else:
        outcome = "reject"
    return {"outcome": outcome, "visited": visited, "good_fields": good_fields,
            "bonus_fields": bonus if outcome == "accept" else []}
