"""``set_task_overlap`` and the user-restriction calls against the real emulator over loopback HTTP.

Covers the happy paths, the argument checks made before any request, the server's refusals
(each as its class from toloka_client.errors, with the right ``retryable``), retries after a
lost answer (both writes are safe to repeat), paging, and the idempotent undo. The one 409
the emulator never gives for these calls comes from a stand-in server on loopback.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from client_helpers import Admin, Sleeper, make_client, make_tasks, utcnow

from toloka_client import (
    InappropriateStatus,
    IncorrectAction,
    NotFound,
    ServerError,
    TolokaClient,
    ValidationError,
)
from toloka_client.records import UserRestriction


def clear_faults_after_first_retry(admin: Admin) -> Any:
    async def hook(n: int) -> None:
        if n == 1:
            await admin.faults()

    return hook


# ------------------------------------------------------------------ set_task_overlap


async def test_set_task_overlap_raises_and_lowers_a_tasks_overlap(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()        # a new pool is CLOSED: Toloka keeps the change anyway
    (task_id,) = await make_tasks(client, pool_id, 1)
    raised = await client.set_task_overlap(task_id, 3)
    assert (raised.id, raised.overlap, raised.remaining_overlap, raised.infinite_overlap) == (task_id, 3, 3, False)
    assert await client.get_task(task_id) == raised
    admin.submitted(pool_id, [task_id], utcnow())
    lowered = await client.set_task_overlap(task_id, 1)
    assert (lowered.overlap, lowered.remaining_overlap) == (1, 0)
    stopped = await client.set_task_overlap(task_id, 0)
    assert (stopped.overlap, stopped.remaining_overlap) == (0, 0)


async def test_set_task_overlap_on_an_open_pool_reopens_a_finished_task(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    (task_id,) = await make_tasks(client, pool_id, 1)
    await admin.call("POST", f"/api/v1/pools/{pool_id}/open")
    admin.submitted(pool_id, [task_id], utcnow(), user="w1")
    assert not admin.store.available_tasks(pool_id, "w2", 10)
    task = await client.set_task_overlap(task_id, 3)
    assert task.remaining_overlap == 2
    assert [t["id"] for t in admin.store.available_tasks(pool_id, "w2", 10)] == [task_id]
    assert admin.store.available_tasks(pool_id, "w1", 10) == []      # w1 answered it already


async def test_set_task_overlap_errors(client: TolokaClient, admin: Admin, sleeper: Sleeper) -> None:
    with pytest.raises(NotFound) as missing:
        await client.set_task_overlap("0000000001--000000000000000000000000", 2)
    assert missing.value.status == 404 and missing.value.code == "DOES_NOT_EXIST"
    assert missing.value.retryable is False and sleeper.delays == []
    pool_id = await admin.create_pool()
    (task_id,) = await make_tasks(client, pool_id, 1)
    before = await admin.route_count("PATCH /api/v1/tasks/{id}")
    for bad in (-1, True, 1.5, "2"):
        with pytest.raises(ValueError, match="overlap"):
            await client.set_task_overlap(task_id, bad)  # type: ignore[arg-type]
    assert await admin.route_count("PATCH /api/v1/tasks/{id}") == before


async def test_set_task_overlap_is_repeated_after_a_lost_answer(client: TolokaClient, admin: Admin,
                                                                sleeper: Sleeper) -> None:
    pool_id = await admin.create_pool()
    (task_id,) = await make_tasks(client, pool_id, 1)
    await admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/tasks/")
    sleeper.hook = clear_faults_after_first_retry(admin)
    task = await client.set_task_overlap(task_id, 4)
    assert (task.overlap, task.remaining_overlap) == (4, 4) and len(sleeper.delays) == 1
    assert await admin.route_count("PATCH /api/v1/tasks/{id}") == 2


async def test_set_task_overlap_gives_up_on_a_server_that_keeps_failing(emu: Any, admin: Admin,
                                                                        sleeper: Sleeper) -> None:
    async with make_client(emu.url, sleeper, max_attempts=3) as client:
        pool_id = await admin.create_pool()
        (task_id,) = await make_tasks(client, pool_id, 1)
        await admin.faults(rate_503=1.0, path_prefix="/api/v1/tasks/")
        with pytest.raises(ServerError) as failed:
            await client.set_task_overlap(task_id, 2)
    assert failed.value.retryable is True and failed.value.status == 503 and len(sleeper.delays) == 2


@pytest.fixture
async def conflict_server() -> AsyncIterator[str]:
    """A loopback stand-in for Toloka that refuses every PATCH of a task with 409."""

    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"request_id": "r1", "code": "INAPPROPRIATE_STATUS",
                                  "message": "Pool is archived"}, status=409)

    app = web.Application()
    app.router.add_patch("/api/v1/tasks/{id}", refuse)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    try:
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def test_set_task_overlap_reports_a_conflict_as_is(conflict_server: str, sleeper: Sleeper) -> None:
    async with make_client(conflict_server, sleeper) as client:
        with pytest.raises(InappropriateStatus) as refused:
            await client.set_task_overlap("0000000001--00", 5)
    assert isinstance(refused.value, IncorrectAction)
    assert refused.value.status == 409 and refused.value.retryable is False and sleeper.delays == []


# ------------------------------------------------------------------ user restrictions


async def test_restrict_find_and_lift(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    project_id = admin.store.get_pool(pool_id)["project_id"]
    until = datetime(2031, 1, 2, 3, 4, 5, 678000)
    in_pool = await client.restrict_user(user_id="w1", scope="POOL", pool_id=pool_id,
                                         private_comment="fake photos", will_expire=until)
    assert isinstance(in_pool, UserRestriction)
    assert (in_pool.scope, in_pool.user_id, in_pool.pool_id, in_pool.project_id) == ("POOL", "w1", pool_id, None)
    assert in_pool.private_comment == "fake photos" and in_pool.will_expire == until
    assert in_pool.id and in_pool.created and abs(in_pool.created - utcnow()) < timedelta(minutes=1)
    in_project = await client.restrict_user(user_id="w1", scope="PROJECT", project_id=project_id)
    other = await client.restrict_user(user_id="w2", scope="POOL", pool_id=pool_id)
    assert in_project.project_id == project_id and in_project.pool_id is None and in_project.will_expire is None
    assert admin.store.is_restricted("w1", pool_id, utcnow())

    async def ids(**filters: Any) -> list[str | None]:
        return [r.id for r in await client.find_user_restrictions(**filters)]

    assert await ids() == [in_pool.id, in_project.id, other.id]
    assert await ids(user_id="w1") == [in_pool.id, in_project.id]
    assert await ids(pool_id=pool_id) == [in_pool.id, other.id]
    assert await ids(project_id=project_id) == [in_project.id]
    assert await ids(user_id="w1", scope="POOL") == [in_pool.id]
    assert await ids(user_id="nobody") == []
    assert await client.get_user_restriction(str(in_pool.id)) == in_pool

    await client.delete_user_restriction(str(in_pool.id))
    await client.delete_user_restriction(str(in_pool.id))      # gone already: still fine (undo is idempotent)
    with pytest.raises(NotFound):
        await client.get_user_restriction(str(in_pool.id))
    assert await ids(user_id="w1") == [in_project.id]


async def test_restrict_user_checks_its_arguments_before_asking(client: TolokaClient, admin: Admin) -> None:
    cases: list[dict[str, Any]] = [
        {"user_id": "w1", "scope": "POOL"},
        {"user_id": "w1", "scope": "POOL", "pool_id": ""},
        {"user_id": "w1", "scope": "PROJECT", "pool_id": "1"},
        {"user_id": "w1", "scope": "POOL", "pool_id": "1", "project_id": "2"},
        {"user_id": "w1", "scope": "ALL_PROJECTS"},
        {"user_id": "", "scope": "POOL", "pool_id": "1"},
        {"user_id": "w1", "scope": "POOL", "pool_id": "1", "private_comment": "x" * 500},
    ]
    for kwargs in cases:
        with pytest.raises(ValueError):
            await client.restrict_user(**kwargs)
    with pytest.raises(ValueError, match="scope"):
        await client.find_user_restrictions(scope="EVERYWHERE")
    assert await admin.route_count("PUT /api/v1/user-restrictions") == 0
    assert await admin.route_count("GET /api/v1/user-restrictions") == 0


async def test_restrict_user_on_an_unknown_pool_is_a_validation_error(client: TolokaClient, sleeper: Sleeper) -> None:
    with pytest.raises(ValidationError) as refused:
        await client.restrict_user(user_id="w1", scope="POOL", pool_id="987654")
    assert refused.value.status == 400 and refused.value.retryable is False and sleeper.delays == []
    assert refused.value.invalid_fields == ["pool_id"]
    assert refused.value.payload["pool_id"]["code"] == "ENTITY_DOES_NOT_EXIST"
    with pytest.raises(ValidationError) as no_project:
        await client.restrict_user(user_id="w1", scope="PROJECT", project_id="987654")
    assert no_project.value.invalid_fields == ["project_id"]


async def test_a_put_repeated_after_a_lost_answer_makes_one_restriction(client: TolokaClient, admin: Admin,
                                                                        sleeper: Sleeper) -> None:
    pool_id = await admin.create_pool()
    await admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/user-restrictions")
    sleeper.hook = clear_faults_after_first_retry(admin)
    restriction = await client.restrict_user(user_id="w1", scope="POOL", pool_id=pool_id, private_comment="spam")
    # Applied more than once (aiohttp itself also resends a PUT on a dropped keep-alive connection).
    assert len(sleeper.delays) == 1 and await admin.route_count("PUT /api/v1/user-restrictions") >= 2
    assert [r.id for r in await client.find_user_restrictions(user_id="w1")] == [restriction.id]


async def test_delete_retries_a_failing_server_and_swallows_only_not_found(emu: Any, admin: Admin,
                                                                            sleeper: Sleeper) -> None:
    async with make_client(emu.url, sleeper, max_attempts=3) as client:
        pool_id = await admin.create_pool()
        restriction = await client.restrict_user(user_id="w1", scope="POOL", pool_id=pool_id)
        await admin.faults(rate_500=1.0, path_prefix="/api/v1/user-restrictions")
        with pytest.raises(ServerError) as failed:                  # a 5xx is not "already deleted"
            await client.delete_user_restriction(str(restriction.id))
        assert failed.value.retryable is True and len(sleeper.delays) == 2
        assert admin.store.get_restriction(str(restriction.id)) is not None
        sleeper.delays.clear()
        sleeper.hook = clear_faults_after_first_retry(admin)
        await client.delete_user_restriction(str(restriction.id))   # a 500, then 204
        assert len(sleeper.delays) == 1 and admin.store.restrictions == {}
        await client.delete_user_restriction("123456")              # never existed: 404, done


async def test_find_user_restrictions_pages_to_the_end(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    now = utcnow()
    made = [admin.store.put_restriction({"scope": "POOL", "user_id": f"w{i:03d}", "pool_id": pool_id}, now)[0]["id"]
            for i in range(305)]
    found = await client.find_user_restrictions(pool_id=pool_id)
    assert [r.id for r in found] == made
    assert await admin.route_count("GET /api/v1/user-restrictions") == 2    # 300 per page
