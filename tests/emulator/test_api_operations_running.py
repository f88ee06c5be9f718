"""Async creates whose operation is RUNNING for a while before SUCCESS (as Toloka's are), and
the daemon's client and toloka-kit polling them; all over real HTTP."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from common.secrets import Secret
from emulator.app import EmulatorState, EmulatorThread, start_emulator
from emulator.ids import utcnow
from emulator.store import json_dumps, json_loads
from toloka_client import HttpSettings, TolokaClient, TolokaHttp, operation_id_for

TOKEN = "operations-token"


class Api:
    """(status, JSON body) over HTTP, like the ``api`` fixture's client."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(self, method: str, path: str, json: Any = None, **params: Any) -> tuple[int, Any]:
        url = path if path.startswith("/_emulator") else "/api/v1" + path
        data = None if json is None else json_dumps(json)
        headers = {} if json is None else {"Content-Type": "application/json"}
        async with self.session.request(method, url, data=data, headers=headers,
                                        params={k: str(v) for k, v in params.items()}) as resp:
            raw = await resp.read()
            return resp.status, json_loads(raw) if raw else None

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.call("GET", path, **params)

    async def post(self, path: str, json: Any = None, **params: Any) -> tuple[int, Any]:
        return await self.call("POST", path, json, **params)

    async def put(self, path: str, json: Any) -> tuple[int, Any]:
        return await self.call("PUT", path, json)


async def _pool(api: Api) -> str:
    status, project = await api.post("/projects", {
        "public_name": "p", "task_spec": {"input_spec": {"image": {"type": "url", "required": True}}}})
    assert status == 201
    status, pool = await api.post("/pools", {"project_id": project["id"], "private_name": "pool",
                                             "reward_per_assignment": Decimal("0.05"),
                                             "defaults": {"default_overlap_for_new_tasks": 1}})
    assert status == 201
    return str(pool["id"])


def _tasks(pool_id: str, n: int) -> list[dict[str, Any]]:
    return [{"pool_id": pool_id, "input_values": {"image": f"http://x/{i}.jpg"}, "overlap": 1,
             "__item_idx": str(i)} for i in range(n)]


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[tuple[EmulatorState, Api]]:
    """An emulator whose async operations stay RUNNING for the first two GETs."""
    async with start_emulator(tmp_path / "e.sqlite", token=TOKEN, seed=1,
                              operations={"running_seconds": 0, "running_polls": 2}) as emu, \
            aiohttp.ClientSession(emu.url, headers={"Authorization": f"OAuth {TOKEN}"}) as session:
        yield emu, Api(session)


async def test_an_async_task_create_is_running_for_two_polls_then_success(
        running: tuple[EmulatorState, Api]) -> None:
    emu, api = running
    pool_id = await _pool(api)
    op_id = str(uuid.uuid4())
    status, op = await api.post("/tasks", _tasks(pool_id, 3), async_mode="true", operation_id=op_id)
    assert status == 202 and op["status"] == "RUNNING" and op["finished"] is None and op["progress"] == 0
    assert op["type"] == "TASK.BATCH_CREATE" and op["submitted"] and op["started"]
    assert len(emu.store.pool_tasks[pool_id]) == 3           # the work is done; only the status lags
    assert (await api.get(f"/operations/{op_id}/log")) == (200, [])  # no log while RUNNING
    _, listed = await api.get("/operations", status="RUNNING")
    assert [o["id"] for o in listed["items"]] == [op_id]     # a search is not a poll
    seen = [(await api.get(f"/operations/{op_id}"))[1]["status"] for _ in range(4)]
    assert seen == ["RUNNING", "RUNNING", "SUCCESS", "SUCCESS"]
    _, done = await api.get(f"/operations/{op_id}")
    assert done["progress"] == 100 and done["finished"] >= done["submitted"]
    assert done["details"]["success_count"] == 3
    _, log = await api.get(f"/operations/{op_id}/log")
    assert [e["type"] for e in log] == ["TASK_CREATE"] * 3 and log[2]["input"]["__item_idx"] == "2"
    # The same operation_id again: 409, and the operation as it is.
    status, body = await api.post("/tasks", _tasks(pool_id, 3), async_mode="true", operation_id=op_id)
    assert status == 409 and body["code"] == "OPERATION_ALREADY_EXISTS"
    # Sync creates (with or without an operation_id) are finished at once.
    sync_id = str(uuid.uuid4())
    status, _ = await api.post("/tasks", _tasks(pool_id, 1)[0], operation_id=sync_id)
    assert status == 201 and (await api.get(f"/operations/{sync_id}"))[1]["status"] == "SUCCESS"


async def test_an_async_bonus_create_is_running_then_success(running: tuple[EmulatorState, Api]) -> None:
    emu, api = running
    pool_id = await _pool(api)
    task = emu.store.create_tasks(pool_id, [{"input_values": {"image": "http://x"}, "overlap": 1}], utcnow())[0]
    a = emu.store.create_assignment(pool_id, "w1", [task["id"]], utcnow())
    emu.store.submit_assignment(a["id"], [{"output_values": {}}], utcnow())
    op_id = str(uuid.uuid4())
    status, op = await api.post("/user-bonuses", [{"user_id": "w1", "amount": Decimal("0.10"),
                                                   "assignment_id": a["id"], "without_message": True,
                                                   "__item_idx": "0"}],
                                async_mode="true", operation_id=op_id)
    assert status == 202 and op["type"] == "USER_BONUS.BATCH_CREATE" and op["status"] == "RUNNING"
    statuses = [(await api.get(f"/operations/{op_id}"))[1]["status"] for _ in range(3)]
    assert statuses == ["RUNNING", "RUNNING", "SUCCESS"]
    _, log = await api.get(f"/operations/{op_id}/log")
    assert log[0]["type"] == "USER_BONUS_PERSIST" and log[0]["output"]["user_bonus_id"].isdigit()


async def test_a_running_operation_waits_for_its_time_and_survives_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    headers = {"Authorization": f"OAuth {TOKEN}"}
    async with start_emulator(db, token=TOKEN, operations={"running_seconds": 0.4}) as emu, \
            aiohttp.ClientSession(emu.url, headers=headers) as session:
        api = Api(session)
        pool_id = await _pool(api)
        op_id = str(uuid.uuid4())
        status, op = await api.post("/tasks", _tasks(pool_id, 2), async_mode="true", operation_id=op_id)
        assert status == 202 and op["status"] == "RUNNING"
        assert (await api.get(f"/operations/{op_id}"))[1]["status"] == "RUNNING"  # too early
    # Restarted without settings: the RUNNING one finishes when due, new ones finish at once.
    async with start_emulator(db, token=TOKEN) as emu, aiohttp.ClientSession(emu.url, headers=headers) as session:
        api = Api(session)
        await asyncio.sleep(0.45)
        assert (await api.get(f"/operations/{op_id}"))[1]["status"] == "SUCCESS"
        assert len((await api.get(f"/operations/{op_id}/log"))[1]) == 2
        status, op = await api.post("/tasks", _tasks(pool_id, 1), async_mode="true", operation_id=str(uuid.uuid4()))
        assert status == 202 and op["status"] == "SUCCESS"


async def test_the_setting_is_off_by_default_and_set_through_the_admin_api(tmp_path: Path) -> None:
    async with start_emulator(tmp_path / "e.sqlite", token=TOKEN) as emu, \
            aiohttp.ClientSession(emu.url, headers={"Authorization": f"OAuth {TOKEN}"}) as session:
        await _off_by_default_then_set(Api(session))


async def _off_by_default_then_set(api: Api) -> None:
    pool_id = await _pool(api)
    status, op = await api.post("/tasks", _tasks(pool_id, 1), async_mode="true", operation_id=str(uuid.uuid4()))
    assert status == 202 and op["status"] == "SUCCESS"
    assert (await api.get("/_emulator/operations"))[1] == {"running_seconds": 0.0, "running_polls": 0}
    status, body = await api.put("/_emulator/operations", {"running_polls": 1})
    assert status == 200 and body == {"running_seconds": 0.0, "running_polls": 1}
    status, op = await api.post("/tasks", _tasks(pool_id, 1), async_mode="true", operation_id=str(uuid.uuid4()))
    assert op["status"] == "RUNNING"
    assert [(await api.get(f"/operations/{op['id']}"))[1]["status"] for _ in range(2)] == ["RUNNING", "SUCCESS"]
    assert (await api.get("/_emulator/state"))[1]["operations"]["running_polls"] == 1
    for wrong in ({"running_polls": -1}, {"running_seconds": "1"}, {"delay": 1}):
        status, body = await api.put("/_emulator/operations", wrong)
        assert status == 400 and body["code"] == "VALIDATION_ERROR"


async def test_the_daemons_client_polls_a_running_create_to_the_end(tmp_path: Path) -> None:
    async with start_emulator(tmp_path / "e.sqlite", token=TOKEN,
                              operations={"running_seconds": 0.3, "running_polls": 1}) as emu:
        async with aiohttp.ClientSession(emu.url, headers={"Authorization": f"OAuth {TOKEN}"}) as session:
            pool_id = await _pool(Api(session))
            requests_before = dict(emu.requests)
        http = TolokaHttp(emu.url, Secret("toloka_token", TOKEN), HttpSettings(total_timeout_s=10))
        async with TolokaClient(http, operation_poll_s=0.1) as client:
            tasks = [{"pool_id": pool_id, "input_values": {"image": f"http://x/{i}"}, "overlap": 1} for i in range(3)]
            result = await client.create_tasks(tasks, operation_id=operation_id_for("running", pool_id))
            assert [t.input_values["image"] for t in result.created] == [f"http://x/{i}" for i in range(3)]
            again = await client.create_tasks(tasks, operation_id=operation_id_for("running", pool_id))
            assert [t.id for t in again.created] == [t.id for t in result.created]   # resumed, not duplicated
            bonus = await client.create_user_bonus(
                {"user_id": "w1", "amount": Decimal("0.05"), "without_message": True},
                operation_id=operation_id_for("bonus", pool_id))
            assert bonus.amount == Decimal("0.05") and str(bonus.id).isdigit()
        polls = emu.requests["GET /api/v1/operations/{id}"] - requests_before.get("GET /api/v1/operations/{id}", 0)
        assert polls >= 4  # at least two polls per create that started RUNNING
        assert len(emu.store.pool_tasks[pool_id]) == 3


def test_toloka_kit_waits_for_a_running_operation(tmp_path: Path) -> None:
    import toloka.client as tc

    with EmulatorThread(tmp_path / "e.sqlite", token=TOKEN, operations={"running_seconds": 0.2}) as emu:
        project = emu.call(emu.store.create_project, {"public_name": "p"}, utcnow())
        pool = emu.call(emu.store.create_pool, {"project_id": project["id"], "reward_per_assignment": 0.01}, utcnow())
        client = tc.TolokaClient(TOKEN, url=emu.url, retry_quotas=None, timeout=10)
        created = client.create_tasks([tc.Task(pool_id=pool["id"], input_values={"image": f"http://x/{i}"},
                                               overlap=1) for i in range(2)])
        assert [t.input_values["image"] for t in created.items.values()] == ["http://x/0", "http://x/1"]
        bonus = client.create_user_bonus(tc.user_bonus.UserBonus(user_id="w1", amount=Decimal("0.02"),
                                                                 without_message=True))
        assert bonus.id is not None and bonus.id.isdigit() and bonus.amount == Decimal("0.02")
        ops = emu.call(lambda: [o["status"] for o in emu.store.operations.values()])
        assert ops == ["SUCCESS", "SUCCESS"]   # toloka-kit polled both to the end
