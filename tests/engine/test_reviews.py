"""Work under review: one warning before Toloka's auto-accept, and the list for the status page."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal

from engine.reviews import due_warnings, near_deadline
from engine.spec import Review

NOW = datetime(2026, 11, 30, 12, 0, 0)
PERIODS = {"pedestrian": timedelta(days=7)}
WARNING = timedelta(hours=12)


def review(aid: str, age: timedelta, pool: str = "pedestrian") -> Review:
    return Review(aid, pool, Decimal("0.30"), NOW - age, label="Cafe, 1 Main St")


def test_one_warning_per_assignment_close_to_its_auto_accept() -> None:
    close, fresh = review("a1", timedelta(days=6, hours=13)), review("a2", timedelta(days=1))
    lines = due_warnings([close, fresh], PERIODS, WARNING, NOW)
    assert len(lines) == 1 and lines[0].startswith("a1 (Cafe, 1 Main St)") and "auto-accepted" in lines[0]
    assert close.warned and not fresh.warned
    assert due_warnings([close, fresh], PERIODS, WARNING, NOW) == []  # warned once only


def test_pools_without_auto_accept_are_never_near_a_deadline() -> None:
    old = review("a3", timedelta(days=30), pool="other")
    assert near_deadline([old], PERIODS, WARNING, NOW) == []
    due = near_deadline([review("b", timedelta(days=6, hours=20)), review("a", timedelta(days=6, hours=21))],
                        PERIODS, WARNING, NOW)
    assert [r.assignment_id for _, r in due] == ["a", "b"]  # soonest first
