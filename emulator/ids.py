"""Identifier and timestamp formats of the emulated Toloka API.

Toloka's task, suite, assignment and attachment ids look like
``0000082301--5f69bcc046757f5cf86c12ff``: the pool id as 10 hex digits, then a
Mongo-style ObjectId whose first 4 bytes are the creation time. Clients compare
ids as strings (``id_gte=min(created)``), so our ids keep that property: the
24 hex digits are 8 hex of creation unix seconds followed by 16 hex of a
persisted, ever-increasing counter, and the seconds part never goes backwards
even if the wall clock does. String order therefore equals creation order.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1)

# Decimal ids (projects, pools, skills...) start here so they have a fixed
# width for the foreseeable future and compare correctly as strings too.
FIRST_DECIMAL_ID = 100001
# User bonus ids are decimal numbers too (Toloka's docs show "2092"); 9 digits wide here,
# so that string order is creation order for a long time.
FIRST_BONUS_ID = 100000001


def unix_seconds(now: datetime) -> int:
    """Whole seconds since the epoch of a naive UTC datetime."""
    return int((now - _EPOCH) // timedelta(seconds=1))


@dataclass
class IdClock:
    """State of the object-id generator: last seconds used and the counter.

    The store persists both fields (in its kv table) after every allocation.
    """

    last_seconds: int = 0
    counter: int = 0

    def next_hex(self, now: datetime) -> str:
        """Return the next 24-hex object id body; strictly greater than the last one."""
        seconds = max(unix_seconds(now), self.last_seconds)
        self.last_seconds = seconds
        self.counter += 1
        return f"{seconds:08x}{self.counter:016x}"


def pooled_id(pool_id: str, body: str) -> str:
    """Join a pool id and an id body as Toloka does: ``{pool:010x}--{body}``."""
    return f"{int(pool_id):010x}--{body}"


def fmt_time(dt: datetime | None) -> str | None:
    """Wire format for dates: naive UTC with milliseconds, e.g. ``2026-11-22T16:27:44.671``."""
    if dt is None:
        return None
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}"


def truncate_ms(dt: datetime) -> datetime:
    """Drop sub-millisecond precision so a stored time equals its wire form."""
    return dt.replace(microsecond=dt.microsecond - dt.microsecond % 1000)


_TIME_RE = re.compile(
    r"^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2}(?::\d{2})?)(?:\.(\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$"
)


def parse_time(text: str) -> datetime:
    """Parse a query date: 0-6 (or more, truncated) fractional digits, optional Z/offset.

    An offset is converted to naive UTC. Raises ValueError on anything else.
    """
    m = _TIME_RE.match(text.strip())
    if not m:
        raise ValueError(f"not a date: {text!r}")
    day, clock, frac, zone = m.groups()
    if clock.count(":") == 1:
        clock += ":00"
    micro = int((frac or "0")[:6].ljust(6, "0"))
    dt = datetime.fromisoformat(f"{day}T{clock}").replace(microsecond=micro)
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        digits = zone[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        dt = dt - sign * offset
    return dt


def parse_stored_time(text: str) -> datetime:
    """Fast parse of a time this emulator emitted itself (fixed format)."""
    return datetime.fromisoformat(text)


def utcnow() -> datetime:
    """The wall clock as naive UTC; only the app's edges call this."""
    return datetime.now(UTC).replace(tzinfo=None)
