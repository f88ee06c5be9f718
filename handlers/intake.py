"""What a row of ``pipeline.py add organizations.tsv`` must hold: one organization to visit.

The columns are ``[PedestrianProject] org_fields`` (default name, address,
coordinates: each required, each a task input the daemon reads back, see
:func:`handlers.pedestrian.read_work`) and ``extra_fields`` (optional,
passed through when given). Coordinates are ``"lat,lon"`` in degrees, checked
with the parser the daemon's distance check uses (:func:`aggregation.geo.parse_point`)
and sent as ``lat,lon`` (a ``;`` separator and spaces are tidied away);
``0,0`` is refused as the placeholder it almost always is.

An organization is identified by its org fields other than the coordinates
(name and address by default), case and runs of spaces aside: the same place
geocoded twice a few metres apart is one organization, and paying two
pedestrians to visit it would be the silent mistake; a refused duplicate is at
least reported. With the coordinates as the only org field, they identify it
(rounded to 1e-5 degrees, about a metre).
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial

from aggregation.geo import parse_point
from engine.intake import IntakeSpec, Unit
from handlers.settings import PedestrianConfig, PedestrianSettings


def intake(config: PedestrianConfig) -> IntakeSpec:
    """The pedestrian pool takes organizations: org fields required, extra fields passed through."""
    p = config.pedestrian
    identity = _identity_fields(p)
    return IntakeSpec(
        pool="pedestrian",
        columns=p.org_fields,
        optional=p.extra_fields,
        read=partial(read_organization, p),
        same="same " + " and ".join(identity),
        overlap=1,  # one pedestrian per organization: the checking pools judge the visit
    )


def _identity_fields(p: PedestrianSettings) -> tuple[str, ...]:
    others = tuple(f for f in p.org_fields if f != p.org_coordinates_field)
    return others or p.org_fields


def coordinates_problem(text: str) -> str | None:
    """Why ``text`` is not a usable ``"lat,lon"`` (None when it is one)."""
    parts = text.replace(";", ",").split(",")
    if len(parts) != 2:
        return f"coordinates {text!r}: expected \"lat,lon\" (two numbers separated by a comma)"
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return f"coordinates {text!r}: expected \"lat,lon\" in degrees, such as \"55.7558,37.6173\""
    if not -90 <= lat <= 90:
        return f"coordinates {text!r}: latitude {parts[0].strip()} is outside -90..90"
    if not -180 <= lon <= 180:
        return f"coordinates {text!r}: longitude {parts[1].strip()} is outside -180..180"
    if parse_point(text) is None:  # what the daemon's distance check would make of it (nan, inf)
        return f"coordinates {text!r}: not a point the daemon can read"
    if lat == 0 and lon == 0:
        return f"coordinates {text!r}: 0,0 is a placeholder, not a place"
    return None


def read_organization(p: PedestrianSettings, row: Mapping[str, str]) -> Unit | str:
    """One row as a pedestrian task's input and identity, or every problem of the row in one line."""
    values: dict[str, str] = {}
    problems: list[str] = []
    for name in p.org_fields:
        text = row.get(name, "").strip()
        if not text:
            problems.append(f"missing {name}")
        values[name] = text
    for name in p.extra_fields:
        text = row.get(name, "").strip()
        if text:
            values[name] = text
    coordinates = values.get(p.org_coordinates_field)
    if coordinates:
        problem = coordinates_problem(coordinates)
        if problem is not None:
            problems.append(problem)
        else:
            lat, lon = (part.strip() for part in coordinates.replace(";", ",").split(","))
            values[p.org_coordinates_field] = f"{lat},{lon}"
    if problems:
        return "; ".join(problems)
    identity = []
    for name in _identity_fields(p):
        if name == p.org_coordinates_field:
            point = parse_point(values[name])
            assert point is not None  # checked above
            identity.append(f"{point[0]:.5f},{point[1]:.5f}")
        else:
            identity.append(" ".join(values[name].split()).casefold())
    return Unit(values, tuple(identity))
