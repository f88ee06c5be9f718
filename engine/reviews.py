"""Work under review and Toloka's auto-accept: which assignments to warn about, and when.

A reviewed pool's submitted assignment is accepted by Toloka itself once the
pool's ``auto_accept_period_day`` has passed, whatever the daemon decided. The
engine warns once per assignment ``warning`` before that deadline and lists the
ones close to it on the status page. Pure functions: ``now`` is passed in.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta

from engine.spec import Review


def deadline(review: Review, periods: Mapping[str, timedelta]) -> datetime | None:
    """When Toloka will accept this work by itself (None: its pool does not auto-accept)."""
    period = periods.get(review.pool)
    return None if period is None else review.submitted + period


def near_deadline(
    reviews: Iterable[Review], periods: Mapping[str, timedelta], warning: timedelta, now: datetime
) -> list[tuple[datetime, Review]]:
    """Work within ``warning`` of its auto-accept deadline, soonest first."""
    found = []
    for review in reviews:
        due = deadline(review, periods)
        if due is not None and now >= due - warning:
            found.append((due, review))
    found.sort(key=lambda pair: (pair[0], pair[1].assignment_id))
    return found


def due_warnings(
    reviews: Iterable[Review], periods: Mapping[str, timedelta], warning: timedelta, now: datetime
) -> list[str]:
    """Warn once about each review close to its deadline (marks them ``warned``); the warning lines."""
    lines = []
    for due, review in near_deadline(reviews, periods, warning, now):
        if review.warned:
            continue
        review.warned = True
        what = f" ({review.label})" if review.label else ""
        lines.append(
            f"{review.assignment_id}{what} is not decided yet and will be auto-accepted by Toloka at "
            f"{due:%Y-%m-%d %H:%M} UTC"
        )
    return lines
