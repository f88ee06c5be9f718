"""The assignment cursor against the real emulator: ties, late visibility, restarts."""

from __future__ import annotations

import asyncio
import pickle
from datetime import datetime, timedelta

from client_helpers import Admin, make_tasks, utcnow

from engine.cursor import AssignmentCursor, CursorState
from toloka_client import TolokaClient


async def drain(cursor: AssignmentCursor, now: datetime) -> list[str]:
    batch = await cursor.fetch(now)
    cursor.commit(batch.state)
    return [str(e.assignment.id) for e in batch.events]


async def test_2500_assignments_with_big_ties_are_each_delivered_once(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    task_ids = await make_tasks(client, pool_id, 2520)
    base = utcnow() - timedelta(minutes=10)
    t1, t2 = base, base + timedelta(seconds=1)
    ids = admin.submitted(pool_id, task_ids[:1150], t1)              # 1150 share one timestamp
    for i, task_id in enumerate(task_ids[1150:1200]):                # 50 spread between
        ids += admin.submitted(pool_id, [task_id], t1 + timedelta(milliseconds=10 + i))
    ids += admin.submitted(pool_id, task_ids[1200:2500], t2)         # 1300 share another
    cursor = AssignmentCursor(client, pool_id, "submitted", page_size=1000)

    before = await admin.route_count("GET /api/v1/assignments")
    batch = await cursor.fetch(utcnow())
    got = [str(e.assignment.id) for e in batch.events]
    assert len(got) == 2500 and len(set(got)) == 2500
    assert got == ids  # (submitted, id) order; ids of one timestamp come in id order
    assert batch.complete and batch.requests == await admin.route_count("GET /api/v1/assignments") - before
    # 1150 and 1300 ties with 1000-item pages: the walk must switch to id order twice.
    assert batch.requests >= 5
    assert cursor.state == CursorState()  # fetch alone does not move the cursor
    cursor.commit(batch.state)
    assert batch.state.at == t2.replace(microsecond=t2.microsecond // 1000 * 1000)
    assert len(batch.state.seen_ids) == 1300

    # New work at the boundary timestamp itself and later: exactly that is delivered.
    late_same = admin.submitted(pool_id, task_ids[2500:2505], t2)
    later = admin.submitted(pool_id, task_ids[2505:2510], t2 + timedelta(seconds=5))
    assert await drain(cursor, utcnow()) == late_same + later
    assert await drain(cursor, utcnow()) == []

    # A restarted daemon continues from the pickled state.
    restored = AssignmentCursor(client, pool_id, "submitted", state=pickle.loads(pickle.dumps(cursor.state)))
    newest = admin.submitted(pool_id, task_ids[2510:2520], t2 + timedelta(seconds=6))
    assert await drain(restored, utcnow()) == newest


async def test_uncommitted_batch_is_redelivered_and_max_events_resumes(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    task_ids = await make_tasks(client, pool_id, 30)
    ids = admin.submitted(pool_id, task_ids, utcnow() - timedelta(minutes=5))
    cursor = AssignmentCursor(client, pool_id, "submitted", page_size=7, max_events=12)
    first = await cursor.fetch(utcnow())
    assert not first.complete and len(first.events) == 12
    # The tick crashed before commit: the same events come again.
    assert [e.assignment.id for e in (await cursor.fetch(utcnow())).events] == [e.assignment.id for e in first.events]
    got: list[str] = []
    for _ in range(10):
        batch = await cursor.fetch(utcnow())
        got += [str(e.assignment.id) for e in batch.events]
        cursor.commit(batch.state)
        if batch.complete:
            break
    assert got == ids


async def test_accepted_cursor_sees_acceptances_only(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    ids = admin.submitted(pool_id, await make_tasks(client, pool_id, 4), utcnow())
    cursor = AssignmentCursor(client, pool_id, "accepted", lag=timedelta(0))
    assert await drain(cursor, utcnow()) == []
    for aid in ids[:2]:
        await client.accept_assignment(aid, "ok")
    await client.reject_assignment(ids[2], "no")
    assert await drain(cursor, utcnow() + timedelta(seconds=1)) == ids[:2]


async def test_late_visible_assignments_are_not_missed_within_the_lag(client: TolokaClient, admin: Admin) -> None:
    """Half of the submissions stay invisible for 0.6 s; a 1 s lag sees every one once.

    A cursor without lag, run alongside as a control, skips some of the late ones,
    which shows the test really produces the race the lag is for.
    """
    pool_id = await admin.create_pool()
    task_ids = await make_tasks(client, pool_id, 60)
    await admin.faults(visibility_delay_seconds=0.6)
    lagged = AssignmentCursor(client, pool_id, "submitted", lag=timedelta(seconds=1))
    eager = AssignmentCursor(client, pool_id, "submitted", lag=timedelta(0))
    all_ids: list[str] = []
    seen_lagged: list[str] = []
    seen_eager: list[str] = []
    for i in range(0, 60, 2):
        now = utcnow()
        all_ids += admin.submitted(pool_id, [task_ids[i]], now)                        # hidden 0.6 s
        all_ids += admin.submitted(pool_id, [task_ids[i + 1]], now, visible_after=now)  # visible at once
        seen_lagged += await drain(lagged, utcnow())
        seen_eager += await drain(eager, utcnow())
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.2)
    seen_lagged += await drain(lagged, utcnow())
    seen_eager += await drain(eager, utcnow())
    await admin.faults()
    assert sorted(seen_lagged) == sorted(all_ids) and len(seen_lagged) == len(set(seen_lagged))
    assert len(set(seen_eager)) < len(all_ids)  # the control missed late ones
