"""Shared fixtures for the emulator tests: a running emulator and an HTTP client for it.

Every test talks to a real server on 127.0.0.1 over HTTP/1.1 (aiohttp client);
assignments are made the way the crowd makes them, through ``emu.store``.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, AsyncIterator, Awaitable, Callable

import aiohttp
import pytest

from emulator.app import EmulatorState, start_emulator
from emulator.ids import utcnow
from emulator.store import json_dumps, json_loads

TOKEN = "test-token"
API = "/api/v1"


class Api:
    """A thin JSON client for the tests: returns (status, parsed body or None)."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(self, method: str, path: str, *, json: Any = None,
                   params: dict[str, Any] | None = None) -> tuple[int, Any]:
        url = path if path.startswith("/_emulator") else API + path
        data = None if json is None else json_dumps(json)
        headers = {} if json is None else {"Content-Type": "application/json"}
        async with self.session.request(method, url, data=data, params=params,
                                        headers=headers) as resp:
            raw = await resp.read()
            body = None
            if raw and resp.content_type == "application/json":
                body = json_loads(raw)
            return resp.status, body

    async def get(self, path: str, **params: Any) -> tuple[int, Any]:
        return await self.call("GET", path, params={k: str(v) for k, v in params.items()})

    async def post(self, path: str, json: Any = None, **params: Any) -> tuple[int, Any]:
        return await self.call("POST", path, json=json,
                               params={k: str(v) for k, v in params.items()})

    async def patch(self, path: str, json: Any) -> tuple[int, Any]:
        return await self.call("PATCH", path, json=json)

    async def put(self, path: str, json: Any) -> tuple[int, Any]:
        return await self.call("PUT", path, json=json)

    async def delete(self, path: str) -> tuple[int, Any]:
        return await self.call("DELETE", path)


@pytest.fixture
def emulator_db(tmp_path: Path) -> Path:
    return tmp_path / "emulator.sqlite"


@pytest.fixture
async def emu(emulator_db: Path) -> AsyncIterator[EmulatorState]:
    """A running emulator without a scenario (no crowd), on a free loopback port."""
    async with start_emulator(emulator_db, token=TOKEN, step_seconds=0.05, seed=7) as state:
        yield state


@pytest.fixture
async def api(emu: EmulatorState) -> AsyncIterator[Api]:
    headers = {"Authorization": f"OAuth {TOKEN}"}
    async with aiohttp.ClientSession(emu.url, headers=headers) as session:
        yield Api(session)


@pytest.fixture
def make_pool(api: Api) -> Callable[..., Awaitable[dict[str, Any]]]:
    """Create a project and a pool over the API (open unless told otherwise)."""

    async def make(open_it: bool = True, **pool_fields: Any) -> dict[str, Any]:
        status, project = await api.post("/projects", {
            "public_name": "Photos",
            "task_spec": {"input_spec": {"image": {"type": "url", "required": True}},
                          "output_spec": {"result": {"type": "string"}}},
        })
        assert status == 201, project
        doc = {"project_id": project["id"], "private_name": "pool",
               "reward_per_assignment": Decimal("0.05"), **pool_fields}
        status, pool = await api.post("/pools", doc)
        assert status == 201, pool
        if open_it:
            status, _ = await api.post(f"/pools/{pool['id']}/open")
            assert status == 202
        return pool

    return make


@pytest.fixture
def token() -> str:
    return TOKEN


@pytest.fixture
def submitted() -> Callable[..., list[dict[str, Any]]]:
    """The :func:`load_submitted` helper (fixtures are how test modules reach it)."""
    return load_submitted


def load_submitted(emu: EmulatorState, pool_id: str, count: int, *, start: datetime | None = None,
                   per_timestamp: int = 1, users: int = 1) -> list[dict[str, Any]]:
    """Create ``count`` tasks and SUBMITTED assignments through the store, as the crowd does.

    ``per_timestamp`` assignments share each submitted time (to test cursor ties).
    Times start an hour ago by default, one millisecond apart per group.
    """
    store = emu.store
    base = start or (utcnow() - timedelta(hours=1))
    tasks = store.create_tasks(pool_id, [{"input_values": {"image": f"http://x/{i}.jpg"},
                                          "overlap": 1} for i in range(count)], base)
    out = []
    for i, task in enumerate(tasks):
        at = base + timedelta(milliseconds=i // per_timestamp)
        a = store.create_assignment(pool_id, f"user{i % users}", [task["id"]], at)
        out.append(store.submit_assignment(a["id"], [{"output_values": {"result": "OK"}}], at))
    return out
