"""Toloka timestamps: naive UTC, ``YYYY-MM-DDThh:mm:ss[.f..ffffff]`` on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_datetime(text: str) -> datetime:
    """Parse 0-9 fractional digits (kept to microseconds) and an optional zone; naive UTC."""
    m = _ISO.match(text.strip())
    if not m:
        raise ValueError(f"not a Toloka timestamp: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    frac = (m.group(7) or "")[:6].ljust(6, "0")
    dt = datetime(year, month, day, hour, minute, second, int(frac))
    zone = m.group(8)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = sign * (int(digits[:2]) * 60 + int(digits[2:]))
        dt = dt - timedelta(minutes=offset)
    return dt


def to_naive_utc(dt: datetime) -> datetime:
    """Aware datetimes are converted to UTC; naive ones are taken as UTC already."""
    if dt.tzinfo is not None:
        return dt.astimezone(UTC).replace(tzinfo=None)
    return dt


def format_datetime(dt: datetime) -> str:
    """Naive UTC ISO text with microseconds, the precision the API compares with."""
    return to_naive_utc(dt).strftime("%Y-%m-%dT%H:%M:%S.%f")
