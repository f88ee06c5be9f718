"""The automatic distance check: how far was the worker from the place they report on?

Field tasks return the worker's coordinates. Within ``radius_m`` of the
organization the check is silent (GPS error and a wide building are normal;
Toloka's own field templates accept 50-500 m); beyond it, it is evidence that
the worker was not there, growing with the logarithm of the distance and
capped, so a borderline value weighs little and only a claim sent from
kilometres away is strong enough to decide on its own.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

EARTH_RADIUS_M = 6371000.0
#: Log-odds against "was there" per doubling of the distance beyond the radius.
PER_DOUBLING = 1.5
#: No distance weighs more than this (about 3000:1).
CAP = 8.0


@dataclass(frozen=True, slots=True)
class DistanceCheck:
    """The check's result: the distance (None if a coordinate did not parse) and its log-odds."""

    distance_m: float | None
    log_odds: float
    note: str


def parse_point(text: object) -> tuple[float, float] | None:
    """``"55.75,37.61"`` -> (lat, lon); None for anything that is not a valid point."""
    if not isinstance(text, str):
        return None
    parts = text.replace(";", ",").split(",")
    if len(parts) != 2:
        return None
    try:
        lat, lon = float(parts[0]), float(parts[1])
    except ValueError:
        return None
    if not (math.isfinite(lat) and math.isfinite(lon) and -90 <= lat <= 90 and -180 <= lon <= 180):
        return None
    return lat, lon


def distance_m(a: tuple[float, float], b: tuple[float, float]) -> float:
    """Great-circle (haversine) distance in meters."""
    lat1, lon1, lat2, lon2 = map(math.radians, (*a, *b))
    h = math.sin((lat2 - lat1) / 2) ** 2 + math.cos(lat1) * math.cos(lat2) * math.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(min(1.0, math.sqrt(h)))


def check_distance(place: object, worker: object, radius_m: float) -> DistanceCheck:
    """Evidence (log-odds for "the worker was there") from the two coordinates; 0 when it cannot tell."""
    if radius_m <= 0:
        return DistanceCheck(None, 0.0, "distance check off")
    here, there = parse_point(place), parse_point(worker)
    if here is None or there is None:
        which = "organization" if here is None else "worker"
        return DistanceCheck(None, 0.0, f"no distance: the {which} coordinates do not parse")
    d = distance_m(here, there)
    if d <= radius_m:
        return DistanceCheck(d, 0.0, f"{d:.0f} m from the organization (within {radius_m:.0f} m)")
    odds = -min(CAP, PER_DOUBLING * math.log2(d / radius_m))
    return DistanceCheck(d, odds, f"{d:.0f} m from the organization (beyond {radius_m:.0f} m): log-odds {odds:.1f}")
