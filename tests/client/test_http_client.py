"""The client's endpoints against the real emulator over loopback HTTP."""

from __future__ import annotations

import logging
import pickle
import traceback
from decimal import Decimal
from typing import Any

import pytest
from client_helpers import TOKEN, Admin, Sleeper, make_client, make_tasks, utcnow

from common.secrets import Secret
from toloka_client import (
    AttachmentTooLarge,
    AuthenticationError,
    InappropriateStatus,
    NotFound,
    Operation,
    OperationFailed,
    TolokaClient,
    TolokaError,
    ValidationError,
    operation_id_for,
)


async def test_requester_pool_and_project(client: TolokaClient, admin: Admin) -> None:
    requester = await client.get_requester()
    assert requester.id and isinstance(requester.balance, Decimal)
    pool_id = await admin.create_pool(reward_per_assignment=Decimal("0.07"))
    pool = await client.get_pool(pool_id)
    assert pool.id == pool_id and pool.status == "CLOSED" and not pool.is_open
    assert pool.reward_per_assignment == Decimal("0.07")
    project = await client.get_project(str(pool.project_id))
    assert project.id == pool.project_id
    page = await client.find_pools(project_id=pool.project_id)
    assert [p.id for p in page.items] == [pool_id] and not page.has_more


async def test_pool_and_project_lookups_are_cached(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    before = await admin.route_count("GET /api/v1/pools/{id}")
    first = await client.get_pool_cached(pool_id)
    again = await client.get_pool_cached(pool_id)
    assert first == again
    assert await admin.route_count("GET /api/v1/pools/{id}") == before + 1
    client.get_pool_cached.cache_invalidate(pool_id)
    await client.get_pool_cached(pool_id)
    assert await admin.route_count("GET /api/v1/pools/{id}") == before + 2
    await client.get_project(str(first.project_id))
    await client.get_project(str(first.project_id))
    assert await admin.route_count("GET /api/v1/projects/{id}") == 1


async def test_create_tasks_reports_invalid_items_by_index(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool(defaults={})
    tasks = [
        {"pool_id": pool_id, "input_values": {"n": 0}, "overlap": 3, "unavailable_for": ["w9"]},
        {"pool_id": pool_id, "input_values": {"n": 1}},           # no overlap, no default
        {"pool_id": pool_id, "input_values": {"n": 2}, "overlap": 1},
    ]
    result = await client.create_tasks(tasks, operation_id=operation_id_for("mixed", pool_id))
    assert sorted(result.items) == [0, 2]
    assert list(result.validation_errors) == [1]
    assert "overlap" in result.validation_errors[1]
    assert result.items[0].input_values == {"n": 0} and result.items[0].overlap == 3
    assert result.items[0].unavailable_for == ("w9",)
    assert [t.input_values["n"] for t in result.created] == [0, 2]
    # All or nothing without skip_invalid_items: nothing created, the errors returned.
    strict = await client.create_tasks(tasks, operation_id=operation_id_for("strict", pool_id),
                                       skip_invalid_items=False)
    assert strict.items == {} and list(strict.validation_errors) == [1]
    assert len([t async for t in client.iter_tasks(pool_id)]) == 2


async def test_create_tasks_replay_returns_the_same_tasks(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    tasks = [{"pool_id": pool_id, "input_values": {"n": i}, "overlap": 1} for i in range(5)]
    op = operation_id_for("replay", pool_id)
    first = await client.create_tasks(tasks, operation_id=op)
    second = await client.create_tasks(tasks, operation_id=op)  # e.g. after a crash
    assert [t.id for t in first.created] == [t.id for t in second.created]
    assert len(admin.store.tasks) == 5
    single = await client.create_tasks(tasks[:1], operation_id=operation_id_for("one", pool_id))
    assert single.items[0].input_values == {"n": 0}


async def test_tasks_paging_and_get(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    ids = await make_tasks(client, pool_id, 7)
    seen = [t.id async for t in client.iter_tasks(pool_id, batch_size=3)]
    assert seen == ids
    assert (await client.get_task(ids[3])).id == ids[3]
    page = await client.find_tasks(pool_id=pool_id, limit=2, id_gt=ids[4])
    assert [t.id for t in page.items] == ids[5:7] and not page.has_more


async def test_assignments_search_get_accept_reject(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    task_ids = await make_tasks(client, pool_id, 4)
    ids = admin.submitted(pool_id, task_ids, utcnow())
    page = await client.find_assignments(pool_id=pool_id, status="SUBMITTED", sort=["submitted", "id"], limit=3)
    assert len(page.items) == 3 and page.has_more
    walked = [a.id async for a in client.iter_assignments(pool_id, status=["SUBMITTED"], batch_size=2)]
    assert walked == ids
    a = await client.get_assignment(ids[0])
    assert a.tasks[0].id == task_ids[0] and a.solutions[0].output_values == {"result": "OK"}
    assert isinstance(a.reward, Decimal)

    accepted = await client.accept_assignment(ids[0], "Good job")
    assert accepted.status == "ACCEPTED" and accepted.accepted is not None
    # Accepting again (a replay) is a success, and changes nothing.
    again = await client.accept_assignment(ids[0], "Good job")
    assert again.status == "ACCEPTED" and again.accepted == accepted.accepted
    rejected = await client.reject_assignment(ids[1], "Incorrect object")
    assert rejected.status == "REJECTED"
    assert (await client.reject_assignment(ids[1], "Incorrect object")).status == "REJECTED"
    # A real conflict is still an error: an accepted assignment cannot be rejected.
    with pytest.raises(InappropriateStatus) as info:
        await client.reject_assignment(ids[0], "too late")
    assert info.value.status == 409 and f"/assignments/{ids[0]}" in str(info.value)
    # Toloka wants a reason for a rejection.
    with pytest.raises(ValidationError) as bad:
        await client.reject_assignment(ids[2], "")
    assert bad.value.invalid_fields == ["public_comment"]


async def test_errors_name_method_path_status_code(client: TolokaClient) -> None:
    with pytest.raises(NotFound) as info:
        await client.get_assignment("no-such-id")
    text = str(info.value)
    assert text.startswith("Toloka GET /assignments/no-such-id: HTTP 404 DOES_NOT_EXIST")
    with pytest.raises(ValidationError) as bad:
        await client.find_assignments(status="SUBMITTED")  # no pool_id/task_id
    assert bad.value.invalid_fields == ["pool_id"]
    with pytest.raises(TypeError):
        await client.find_assignments(pool_id="1", submited_gte="2020-01-01")


async def test_attachments_metadata_download_and_size_limit(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    task_ids = await make_tasks(client, pool_id, 1)
    now = utcnow()
    a = admin.store.create_assignment(pool_id, "w1", task_ids, now)
    data = bytes(range(256)) * 4096  # 1 MiB
    meta = admin.store.add_attachment(a["id"], "facade.jpg", "image/jpeg", data, now)
    att = await client.get_attachment(meta["id"])
    assert att.name == "facade.jpg" and att.assignment_id == a["id"] and att.attachment_type
    listed = await client.find_attachments(assignment_id=a["id"])
    assert [x.id for x in listed.items] == [meta["id"]]
    assert await client.download_attachment(meta["id"]) == data
    assert await client.download_attachment(meta["id"], max_bytes=len(data)) == data
    with pytest.raises(AttachmentTooLarge) as info:
        await client.download_attachment(meta["id"], max_bytes=len(data) - 1)
    assert f"/attachments/{meta['id']}/download" in str(info.value)
    # The session is still usable after an aborted download.
    assert (await client.get_attachment(meta["id"])).id == meta["id"]


async def test_bonuses_are_exact_and_paid_once(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    task_ids = await make_tasks(client, pool_id, 2)
    ids = admin.submitted(pool_id, task_ids, utcnow())
    op = operation_id_for("bonus", ids[0])
    bonus = {"user_id": "w1", "amount": Decimal("0.15"), "assignment_id": ids[0],
             "public_title": {"EN": "Bonus photos"}, "public_message": {"EN": "interior, menu"}}
    paid = await client.create_user_bonus(bonus, operation_id=op)
    assert paid.amount == Decimal("0.15") and isinstance(paid.amount, Decimal)
    again = await client.create_user_bonus(bonus, operation_id=op)
    assert again.id == paid.id
    stored = admin.store.bonuses(assignment_id=ids[0])
    assert len(stored) == 1 and stored[0]["amount"] == Decimal("0.15")
    assert [b.id for b in await client.bonuses_for_assignment(ids[0])] == [paid.id]
    assert await client.bonuses_for_assignment(ids[1]) == []
    many = await client.create_user_bonuses(
        [{"user_id": "w1", "amount": Decimal("0.01"), "assignment_id": ids[1], "without_message": True},
         {"user_id": "w2", "amount": Decimal("500"), "without_message": True},  # above the maximum
         {"user_id": "w3", "amount": Decimal("0.02"), "without_message": True}],
        operation_id=operation_id_for("batch"), skip_invalid_items=True)
    assert sorted(many.items) == [0, 2] and list(many.validation_errors) == [1]
    assert many.items[2].amount == Decimal("0.02")
    with pytest.raises(ValidationError) as info:
        await client.create_user_bonus({"user_id": "w1", "amount": Decimal("1000"), "without_message": True},
                                       operation_id=operation_id_for("too-much"))
    assert info.value.invalid_fields == ["amount"]


async def test_user_skills_search(client: TolokaClient, admin: Admin) -> None:
    skill = admin.store.create_skill("visit", utcnow())
    for i in range(5):
        admin.store.set_user_skill(skill["id"], f"w{i}", Decimal(f"{60 + i}.5"), utcnow())
    values = {s.user_id: s.score async for s in client.iter_user_skills(skill["id"], batch_size=2)}
    assert values == {f"w{i}": Decimal(f"{60 + i}.5") for i in range(5)}


async def test_secret_never_in_repr_errors_or_logs(emu: Any, sleeper: Sleeper, admin: Admin,
                                                   caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_client(emu.url, sleeper) as good:
        assert TOKEN not in repr(good) and TOKEN not in repr(good.http)
        with pytest.raises(TypeError):
            pickle.dumps(good)
        with pytest.raises(NotFound) as missing:
            await good.get_pool("404404")
        await admin.faults(rate_500=1.0)
        with pytest.raises(TolokaError) as failing:
            await good.get_pool("1")
        await admin.faults()
    wrong = "WRONG-" + TOKEN
    async with make_client(emu.url, sleeper, token=wrong) as bad:
        with pytest.raises(AuthenticationError) as refused:
            await bad.get_requester()
    for info in (missing, failing, refused):
        err = info.value
        rendered = "".join(traceback.format_exception(err)) + repr(err) + str(err.__dict__)
        assert TOKEN not in rendered
        assert TOKEN not in pickle.dumps(err).decode("latin-1")
    assert refused.value.status == 401
    assert caplog.records, "DEBUG logging of requests was expected"
    assert all(TOKEN not in r.getMessage() and TOKEN not in str(r.args) for r in caplog.records)


async def test_wait_operation_polls_until_finished(client: TolokaClient, admin: Admin, sleeper: Sleeper) -> None:
    pool_id = await admin.create_pool()
    op_id = operation_id_for("poll", pool_id)
    await client.create_tasks([{"pool_id": pool_id, "input_values": {}, "overlap": 1}], operation_id=op_id)
    running = Operation.from_json({"id": op_id, "type": "TASK.BATCH_CREATE", "status": "RUNNING"})
    sleeper.delays.clear()
    done = await client.wait_operation(running)
    assert done.status == "SUCCESS" and sleeper.delays == [client.operation_poll_s]
    log = await client.get_operation_log(op_id)
    assert [entry.type for entry in log] == ["TASK_CREATE"] and log[0].input["__item_idx"] == "0"
    client.operation_timeout_s = 0
    with pytest.raises(OperationFailed):
        await client.wait_operation(running)


async def test_connect_from_the_environment_setting(emu: Any) -> None:
    async with TolokaClient.connect(emu.url + "/", Secret("toloka_token", TOKEN)) as client:
        assert client.http.base_url == emu.url
        assert (await client.get_requester()).id
