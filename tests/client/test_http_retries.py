"""Retries against injected faults of the real emulator, and no duplicate effects after them.

Retry waits go through the recording ``Sleeper`` (no real waiting); where a fault
must stop after the first try, the sleeper's hook switches it off between tries.
"""

from __future__ import annotations

import socket
from decimal import Decimal
from typing import Any

import pytest
from client_helpers import TOKEN, Admin, Sleeper, make_client, make_tasks, utcnow

from common.secrets import Secret
from toloka_client import (
    HttpSettings,
    RetryPolicy,
    ServerError,
    TolokaClient,
    TolokaHttp,
    TooManyRequests,
    TransportError,
    operation_id_for,
)
from toloka_client.timefmt import parse_datetime

REQUESTER = "GET /api/v1/requester"


def clear_after(admin: Admin, sleeps: int) -> Any:
    async def hook(n: int) -> None:
        if n == sleeps:
            await admin.faults()
    return hook


async def test_429_without_retry_after_backs_off_exponentially(client: TolokaClient, admin: Admin,
                                                               sleeper: Sleeper) -> None:
    await admin.faults(rate_429=1.0)
    sleeper.hook = clear_after(admin, 3)
    assert (await client.get_requester()).id
    # base 0.5 s doubling, jitter fixed at the middle (rand=0.5 -> 55 % of the ceiling)
    assert sleeper.delays == pytest.approx([0.275, 0.55, 1.1])
    assert await admin.route_count(REQUESTER) == 4


async def test_429_honours_retry_after(client: TolokaClient, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(rate_429_retry_after=1.0, retry_after_seconds=7)
    sleeper.hook = clear_after(admin, 1)
    await client.get_requester()
    assert sleeper.delays == [7.0]


async def test_429_quota_interval_waits_a_minute(client: TolokaClient, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(rate_429_interval=1.0, interval="MIN")
    sleeper.hook = clear_after(admin, 1)
    await client.get_requester()
    assert sleeper.delays == [60.0]


async def test_quota_longer_than_the_budget_fails_at_once(emu: Any, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(rate_429_interval=1.0, interval="HOUR")
    async with make_client(emu.url, sleeper, budget_s=100.0) as client:
        with pytest.raises(TooManyRequests) as info:
            await client.get_requester()
    assert info.value.interval == "HOUR" and info.value.status == 429
    assert sleeper.delays == []
    assert await admin.route_count(REQUESTER) == 1


async def test_5xx_are_retried_up_to_the_attempt_limit(emu: Any, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(rate_500=1.0)
    async with make_client(emu.url, sleeper, max_attempts=3) as client:
        with pytest.raises(ServerError) as info:
            await client.get_requester()
        assert info.value.code == "INTERNAL_ERROR"
        assert await admin.route_count(REQUESTER) == 3 and len(sleeper.delays) == 2
        await admin.faults(rate_503=1.0)
        sleeper.delays.clear()
        sleeper.hook = clear_after(admin, 1)
        assert (await client.get_requester()).id


async def test_empty_body_500_is_an_error_not_a_crash(emu: Any, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(rate_500_empty=1.0)
    async with make_client(emu.url, sleeper, max_attempts=2) as client:
        with pytest.raises(ServerError) as info:
            await client.get_requester()
        assert "empty error body" in str(info.value) and info.value.code is None
        sleeper.delays.clear()
        sleeper.hook = clear_after(admin, 1)
        assert (await client.get_requester()).id


async def test_retry_budget_bounds_total_waiting(emu: Any, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(rate_503=1.0)
    async with make_client(emu.url, sleeper, max_attempts=50, budget_s=1.0) as client:
        with pytest.raises(ServerError):
            await client.get_requester()
    assert sum(sleeper.delays) <= 1.0
    assert sleeper.delays == pytest.approx([0.275, 0.55])  # the next wait (1.1 s) would pass the budget


async def test_refused_connection_is_retried_then_reported(admin: Admin, sleeper: Sleeper) -> None:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    async with make_client(f"http://127.0.0.1:{port}", sleeper, max_attempts=3) as client:
        with pytest.raises(TransportError) as info:
            await client.get_requester()
    assert info.value.status is None and "GET /requester" in str(info.value)
    assert len(sleeper.delays) == 2


async def test_timeout_is_retried(emu: Any, admin: Admin, sleeper: Sleeper) -> None:
    await admin.faults(latency_seconds=2.0, latency_rate=1.0)
    sleeper.hook = clear_after(admin, 1)
    settings = HttpSettings(connect_timeout_s=1.0, total_timeout_s=0.3, retry=RetryPolicy(max_attempts=3))
    async with TolokaClient(TolokaHttp(emu.url, Secret("t", TOKEN), settings, sleep=sleeper)) as client:
        assert (await client.get_requester()).id
    assert len(sleeper.delays) == 1


async def test_dropped_create_tasks_resumes_the_operation(client: TolokaClient, admin: Admin,
                                                          sleeper: Sleeper) -> None:
    pool_id = await admin.create_pool()
    tasks = [{"pool_id": pool_id, "input_values": {"n": i}, "overlap": 1} for i in range(4)]
    await admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/tasks")
    sleeper.hook = clear_after(admin, 1)
    result = await client.create_tasks(tasks, operation_id=operation_id_for("dropped", pool_id))
    assert [t.input_values["n"] for t in result.created] == [0, 1, 2, 3]
    assert len(admin.store.tasks) == 4  # the first POST was applied; the retry created nothing
    assert await admin.route_count("POST /api/v1/tasks") == 2
    assert len(sleeper.delays) == 1


async def test_dropped_bonus_is_paid_once(client: TolokaClient, admin: Admin, sleeper: Sleeper) -> None:
    pool_id = await admin.create_pool()
    (aid,) = admin.submitted(pool_id, await make_tasks(client, pool_id, 1), utcnow())
    await admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/user-bonuses")
    sleeper.hook = clear_after(admin, 1)
    bonus = await client.create_user_bonus(
        {"user_id": "w1", "amount": Decimal("0.10"), "assignment_id": aid, "without_message": True},
        operation_id=operation_id_for("bonus", aid))
    assert bonus.amount == Decimal("0.10")
    assert len(admin.store.bonuses(assignment_id=aid)) == 1


async def test_dropped_accept_is_one_status_change(client: TolokaClient, admin: Admin, sleeper: Sleeper) -> None:
    pool_id = await admin.create_pool()
    (aid,) = admin.submitted(pool_id, await make_tasks(client, pool_id, 1), utcnow())
    await admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/assignments")
    sleeper.hook = clear_after(admin, 1)
    accepted = await client.accept_assignment(aid, "Good job")
    assert accepted.status == "ACCEPTED"
    stored = admin.store.get_assignment(aid)
    assert stored["status"] == "ACCEPTED"
    assert accepted.accepted == parse_datetime(stored["accepted"])
    # First PATCH applied (answer lost), second refused as INAPPROPRIATE_STATUS, then a GET.
    assert await admin.route_count("PATCH /api/v1/assignments/{id}") == 2


async def test_unsafe_write_is_not_repeated_after_a_drop(client: TolokaClient, admin: Admin,
                                                         sleeper: Sleeper) -> None:
    """A POST without an operation_id could duplicate, so a dropped answer is reported, not retried."""
    await admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/projects")
    with pytest.raises(TransportError):
        await client.http.request("POST", "/projects", body={"public_name": "once"})
    await admin.faults()
    assert sleeper.delays == []
    assert [p["public_name"] for p in admin.store.projects.values()] == ["once"]


async def test_random_faults_cause_no_duplicates(emu: Any, admin: Admin, sleeper: Sleeper) -> None:
    """Many creates, accepts and bonuses under a seeded mix of every fault: each effect once."""
    pool_id = await admin.create_pool()
    async with make_client(emu.url, sleeper, max_attempts=30, budget_s=10_000.0) as client:
        task_ids = await make_tasks(client, pool_id, 12)
        ids = admin.submitted(pool_id, task_ids, utcnow())
        await admin.faults(rate_429=0.1, rate_429_retry_after=0.05, rate_500=0.1, rate_503=0.05,
                           rate_500_empty=0.05, drop_after_write_rate=0.4, retry_after_seconds=1)
        for i, aid in enumerate(ids):
            extra = [{"pool_id": pool_id, "input_values": {"of": aid, "k": k}, "overlap": 1} for k in range(3)]
            made = await client.create_tasks(extra, operation_id=operation_id_for("down", aid))
            assert len(made.items) == 3
            if i % 3 == 2:
                await client.reject_assignment(aid, "Incorrect object")
            else:
                await client.accept_assignment(aid, "Good job")
                await client.create_user_bonus(
                    {"user_id": "w1", "amount": Decimal("0.05"), "assignment_id": aid, "without_message": True},
                    operation_id=operation_id_for("bonus", aid))
        state = await admin.call("GET", "/_emulator/state")
        await admin.faults()
    injected = state["faults"]["injected"]
    assert injected.get("drop_after_write", 0) > 0 and injected.get("500", 0) > 0
    assert len(admin.store.tasks) == 12 + 12 * 3
    by_origin: dict[str, int] = {}
    for task in admin.store.tasks.values():
        origin = task["input_values"].get("of")
        if origin:
            by_origin[origin] = by_origin.get(origin, 0) + 1
    assert by_origin == {aid: 3 for aid in ids}
    for i, aid in enumerate(ids):
        expected = "REJECTED" if i % 3 == 2 else "ACCEPTED"
        assert admin.store.get_assignment(aid)["status"] == expected
        assert len(admin.store.bonuses(assignment_id=aid)) == (0 if i % 3 == 2 else 1)
