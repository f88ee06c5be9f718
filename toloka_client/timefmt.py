"""Toloka timestamps: naive UTC, ``YYYY-MM-DDThh:mm:ss[.f..ffffff]`` on the wire."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

_ISO = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?"
    r"(Z|[+-]\d{2}:?\d{2})?$"
)


_PLAIN_LENGTHS = frozenset({19, 23, 26})  # YYYY-MM-DDThh:mm:ss, with .fff, with .ffffff


def parse_datetime(text: str) -> datetime:
    """Parse 0-9 fractional digits (kept to microseconds) and an optional zone; naive UTC."""
    if len(text) in _PLAIN_LENGTHS and text[10] == "T":
        # What the API sends (naive, 0, 3 or 6 digits): the C parser, several times faster; the
        # shape check keeps the other forms it would take (dates alone, week dates) out.
        try:
            fast = datetime.fromisoformat(text)
        except ValueError:
            fast = None
        if fast is not None and fast.tzinfo is None:
            return fast
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
