"""Cursor state logic against a tiny in-memory page source (pure; HTTP tests are elsewhere).

The fake implements only the search semantics the cursor relies on (range filters
on one time field and the id, sort by (time, id) or id, limit, has_more) and a
per-item visibility time, so the walking and commit rules can be checked exactly.
"""

from __future__ import annotations

import pickle
import random
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from engine.cursor import AssignmentCursor, CursorState
from toloka_client.records import Assignment, Page
from toloka_client.timefmt import format_datetime, parse_datetime

T0 = datetime(2026, 11, 22, 12, 0, 0)


class FakeSource:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []
        self.visible_at: dict[str, datetime] = {}
        self.clock = T0
        self.calls = 0

    def add(self, n: int, at: datetime, visible_at: datetime | None = None) -> list[str]:
        ids = []
        for _ in range(n):
            aid = f"{len(self.items):012d}"
            self.items.append({"id": aid, "pool_id": "p", "submitted": format_datetime(at)})
            if visible_at is not None:
                self.visible_at[aid] = visible_at
            ids.append(aid)
        return ids

    async def find_assignments(self, *, pool_id: str | None = None, sort: str | Sequence[str] | None = None,
                               limit: int | None = None, **ranges: Any) -> Page[Assignment]:
        self.calls += 1
        rows = [d for d in self.items if self.visible_at.get(d["id"], T0) <= self.clock]
        for key, raw in ranges.items():
            if raw is None:
                continue
            field, op = key.rsplit("_", 1)
            def value(d: dict[str, Any]) -> Any:
                return d["id"] if field == "id" else parse_datetime(d[field])
            bound = raw if field == "id" else parse_datetime(raw)
            cmp = {"gt": lambda a, b: a > b, "gte": lambda a, b: a >= b,
                   "lt": lambda a, b: a < b, "lte": lambda a, b: a <= b}[op]
            rows = [d for d in rows if cmp(value(d), bound)]
        keys = [sort] if isinstance(sort, str) else list(sort or ["id"])
        rows.sort(key=lambda d: tuple(d["id"] if k == "id" else parse_datetime(d[k]) for k in keys))
        limit = limit or 50
        return Page(tuple(Assignment.from_json(d) for d in rows[:limit]), len(rows) > limit)


async def drain(cursor: AssignmentCursor, now: datetime) -> list[str]:
    batch = await cursor.fetch(now)
    cursor.commit(batch.state)
    return [e.assignment.id for e in batch.events]


async def test_ties_larger_than_a_page_are_all_delivered_once() -> None:
    src = FakeSource()
    ids = src.add(3, T0) + src.add(25, T0 + timedelta(seconds=1)) + src.add(4, T0 + timedelta(seconds=2))
    cursor = AssignmentCursor(src, "p", "submitted", lag=timedelta(seconds=60), page_size=10)
    got = await drain(cursor, T0 + timedelta(minutes=5))
    assert got == ids
    assert cursor.state.time == format_datetime(T0 + timedelta(seconds=2))
    assert cursor.state.seen_ids == frozenset(ids[-4:])
    assert await drain(cursor, T0 + timedelta(minutes=6)) == []


async def test_fetch_does_not_move_the_cursor_until_commit() -> None:
    src = FakeSource()
    ids = src.add(5, T0)
    cursor = AssignmentCursor(src, "p", "submitted", lag=timedelta(0))
    first = await cursor.fetch(T0 + timedelta(seconds=1))
    again = await cursor.fetch(T0 + timedelta(seconds=1))
    assert [e.assignment.id for e in first.events] == ids == [e.assignment.id for e in again.events]
    assert cursor.state == CursorState()
    cursor.commit(first.state)
    assert (await cursor.fetch(T0 + timedelta(seconds=1))).events == ()


async def test_lag_holds_back_recent_events_and_late_ones_are_found() -> None:
    src = FakeSource()
    early = src.add(2, T0)
    # Submitted at T0+1 s but visible only at T0+20 s (eventual consistency).
    late = src.add(1, T0 + timedelta(seconds=1), visible_at=T0 + timedelta(seconds=20))
    after = src.add(1, T0 + timedelta(seconds=2))
    cursor = AssignmentCursor(src, "p", "submitted", lag=timedelta(seconds=30))
    src.clock = T0 + timedelta(seconds=10)
    assert await drain(cursor, src.clock) == []  # everything is younger than the lag
    src.clock = T0 + timedelta(seconds=40)
    assert await drain(cursor, src.clock) == early + late + after


async def test_without_lag_a_late_event_is_missed() -> None:
    """The reason for the lag: with none, the late item falls behind the boundary."""
    src = FakeSource()
    src.add(1, T0)
    late = src.add(1, T0 + timedelta(seconds=1), visible_at=T0 + timedelta(seconds=20))
    src.add(1, T0 + timedelta(seconds=2))
    cursor = AssignmentCursor(src, "p", "submitted", lag=timedelta(0))
    src.clock = T0 + timedelta(seconds=10)
    await drain(cursor, src.clock)
    src.clock = T0 + timedelta(seconds=40)
    assert late[0] not in await drain(cursor, src.clock)


async def test_max_events_cuts_anywhere_and_resumes_exactly() -> None:
    src = FakeSource()
    rng = random.Random(7)
    ids: list[str] = []
    for i in range(40):
        ids += src.add(rng.choice([1, 1, 2, 13]), T0 + timedelta(milliseconds=i))
    cursor = AssignmentCursor(src, "p", "submitted", lag=timedelta(0), page_size=5, max_events=7)
    got: list[str] = []
    for _ in range(200):
        batch = await cursor.fetch(T0 + timedelta(minutes=1))
        got += [e.assignment.id for e in batch.events]
        cursor.commit(batch.state)
        if batch.complete:
            break
    assert got == ids


async def test_new_events_at_the_boundary_time_are_delivered() -> None:
    src = FakeSource()
    first = src.add(2, T0)
    cursor = AssignmentCursor(src, "p", "submitted", lag=timedelta(0))
    assert await drain(cursor, T0 + timedelta(seconds=1)) == first
    more = src.add(2, T0)  # same timestamp, seen later
    assert await drain(cursor, T0 + timedelta(seconds=1)) == more


def test_state_is_plain_and_picklable() -> None:
    state = CursorState("2026-11-22T12:00:00.000000", frozenset({"a", "b"}))
    assert pickle.loads(pickle.dumps(state)) == state
    assert state.at == T0
    with pytest.raises(ValueError):
        AssignmentCursor(FakeSource(), "p", "submited")
