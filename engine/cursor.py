"""Assignment cursors: "which events of this pool have I not handled yet?".

One cursor per pool and event kind (``submitted``, ``accepted``, ...). It walks
``GET /assignments`` sorted by the event time with the id as tie-break
(``sort=<kind>,id``), and remembers a boundary: the time of the last delivered
event and the ids delivered at exactly that time. It reads only up to
``now - lag``, because Toloka is eventually consistent: an assignment can show
up in searches a little after its timestamp (toloka-api.md section 5).

Delivery contract: :meth:`AssignmentCursor.fetch` returns new events *and* the
next state without changing the cursor. The tick handles the events, records
their effects, then calls :meth:`AssignmentCursor.commit`. A crash before the
commit re-delivers the batch (handlers are idempotent); normal operation never
delivers an assignment twice.

Ties: when more than one page of events share one timestamp, a time-ordered
query cannot move past them, so the cursor walks that timestamp by id
(``<kind>_gte=T&<kind>_lte=T&sort=id&id_gt=...``) and then continues strictly
after it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from toloka_client.records import Assignment, Page
from toloka_client.timefmt import format_datetime, parse_datetime, to_naive_utc

log = logging.getLogger(__name__)

EVENT_KINDS = ("created", "submitted", "accepted", "rejected", "skipped", "expired")
EPOCH = "1970-01-01T00:00:00.000000"


class AssignmentSource(Protocol):
    """What the cursor needs from the client (``TolokaClient`` provides it)."""

    async def find_assignments(
        self,
        *,
        pool_id: str | None = None,
        sort: str | Sequence[str] | None = None,
        limit: int | None = None,
        **ranges: Any,
    ) -> Page[Assignment]: ...


@dataclass(frozen=True)
class CursorState:
    """Plain, picklable position of a cursor.

    ``time``: event time of the last delivered event (naive UTC ISO text);
    ``seen_ids``: the ids delivered with exactly that time (usually one or two).
    """

    time: str = EPOCH
    seen_ids: frozenset[str] = field(default_factory=frozenset)

    @property
    def at(self) -> datetime:
        return parse_datetime(self.time)


@dataclass(frozen=True)
class AssignmentEvent:
    """One event: ``assignment`` got its ``kind`` time ``time``."""

    kind: str
    time: datetime
    assignment: Assignment


@dataclass(frozen=True)
class CursorBatch:
    """What one fetch found, and the state to commit once it is handled."""

    events: tuple[AssignmentEvent, ...]
    state: CursorState
    requests: int
    # False when ``max_events`` cut the batch short: fetch again soon.
    complete: bool


class _Walk:
    """Mutable position during one fetch; becomes the next :class:`CursorState`."""

    def __init__(self, state: CursorState, kind: str) -> None:
        self.kind = kind
        self.time = state.at
        self.seen = set(state.seen_ids)
        self.events: list[AssignmentEvent] = []

    def offer(self, assignment: Assignment) -> None:
        """Deliver ``assignment`` unless it is at or before the boundary and already seen."""
        at = assignment.event_time(self.kind)
        if at is None or assignment.id is None:
            log.warning("assignment %s has no %s time; skipped", assignment.id, self.kind)
            return
        if at < self.time:
            # The server ignored the lower bound; never deliver behind the boundary.
            log.warning("assignment %s: %s %s is before the cursor (%s); skipped",
                        assignment.id, self.kind, at, self.time)
            return
        if at == self.time:
            if assignment.id in self.seen:
                return
            self.seen.add(assignment.id)
        else:
            self.time = at
            self.seen = {assignment.id}
        self.events.append(AssignmentEvent(self.kind, at, assignment))

    def state(self) -> CursorState:
        return CursorState(format_datetime(self.time), frozenset(self.seen))


class AssignmentCursor:
    """New assignment events of one pool, in (event time, id) order.

    ``fetch(now)`` never mutates the cursor; ``commit(batch.state)`` does. Keep
    ``cursor.state`` in the checkpoint and pass it back as ``state=`` on restart.
    """

    def __init__(
        self,
        source: AssignmentSource,
        pool_id: str,
        kind: str,
        *,
        state: CursorState | None = None,
        lag: timedelta = timedelta(seconds=60),
        page_size: int = 1000,
        max_events: int | None = None,
    ) -> None:
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown assignment event kind {kind!r}; one of {EVENT_KINDS}")
        if page_size < 1:
            raise ValueError("page_size must be at least 1")
        if lag < timedelta(0):
            raise ValueError("lag must not be negative")
        self.source = source
        self.pool_id = pool_id
        self.kind = kind
        self.state = state or CursorState()
        self.lag = lag
        self.page_size = page_size
        self.max_events = max_events

    def __repr__(self) -> str:
        return f"AssignmentCursor(pool={self.pool_id!r}, kind={self.kind!r}, time={self.state.time!r})"

    def commit(self, state: CursorState) -> None:
        """Move to ``state`` (from a batch whose events are handled and recorded)."""
        self.state = state

    async def fetch(self, now: datetime) -> CursorBatch:
        """Events after the committed state with an event time up to ``now - lag``."""
        upper = to_naive_utc(now) - self.lag
        walk = _Walk(self.state, self.kind)
        requests = 0
        if upper < walk.time:
            return CursorBatch((), self.state, requests, True)
        strictly_after = False
        while True:
            bound = "gt" if strictly_after else "gte"
            page = await self.source.find_assignments(
                pool_id=self.pool_id,
                sort=[self.kind, "id"],
                limit=self.page_size,
                **{f"{self.kind}_{bound}": format_datetime(walk.time),
                   f"{self.kind}_lte": format_datetime(upper)},
            )
            requests += 1
            delivered_before = len(walk.events)
            for assignment in page.items:
                before = len(walk.events)
                walk.offer(assignment)
                if len(walk.events) > before:
                    strictly_after = False
                if self._full(walk):
                    return CursorBatch(tuple(walk.events), walk.state(), requests, False)
            if not page.has_more or not page.items:
                return CursorBatch(tuple(walk.events), walk.state(), requests, True)
            if len(walk.events) == delivered_before and any(
                    a.event_time(self.kind) != walk.time for a in page.items):
                # Nothing new on a full page that is not one timestamp: the server
                # did not honour the filter or the sort. Stop rather than spin.
                log.warning("pool %s %s cursor: a page brought nothing new; stopping this fetch",
                            self.pool_id, self.kind)
                return CursorBatch(tuple(walk.events), walk.state(), requests, True)
            if all(a.event_time(self.kind) == walk.time for a in page.items):
                # A whole page at one timestamp: the time-sorted query would return
                # it again. Walk the rest of that timestamp by id, then go past it.
                requests, truncated = await self._walk_tie(walk, page.items[-1].id, requests)
                if truncated:
                    return CursorBatch(tuple(walk.events), walk.state(), requests, False)
                strictly_after = True

    async def _walk_tie(self, walk: _Walk, last_id: str | None, requests: int) -> tuple[int, bool]:
        stamp = format_datetime(walk.time)
        while True:
            page = await self.source.find_assignments(
                pool_id=self.pool_id,
                sort="id",
                limit=self.page_size,
                **{f"{self.kind}_gte": stamp, f"{self.kind}_lte": stamp, "id_gt": last_id},
            )
            requests += 1
            for assignment in page.items:
                walk.offer(assignment)
                if self._full(walk):
                    return requests, True
            if not page.has_more or not page.items:
                return requests, False
            last_id = page.items[-1].id

    def _full(self, walk: _Walk) -> bool:
        return self.max_events is not None and len(walk.events) >= self.max_events
