"""Helpers for the client tests: the emulator admin side, a recording sleep, client set-up.

Pools are created over the API with a plain aiohttp session (the daemon's client
does not create pools); assignments are made by the emulator's store directly
(``create_assignment``/``submit_assignment``), the way its simulated crowd does.
Retries wait through :class:`Sleeper`, which records the delays instead of
sleeping and can run a hook (e.g. switch a fault off) between attempts.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime, timezone
from typing import Any

import aiohttp

from common.secrets import Secret
from toloka_client import HttpSettings, RetryPolicy, TolokaClient, TolokaHttp, jsonio

# Distinctive, so a leak into logs or exception texts is easy to find.
TOKEN = "TOKEN-s3cr3t-7f3a9c"


def utcnow() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


class Sleeper:
    """An injectable ``sleep``: records each delay, yields once, runs an optional hook."""

    def __init__(self) -> None:
        self.delays: list[float] = []
        self.hook: Callable[[int], Awaitable[None]] | None = None

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self.hook is not None:
            await self.hook(len(self.delays))
        await asyncio.sleep(0)


class Admin:
    """Test-side access to the emulator: its admin API and pool set-up over HTTP."""

    def __init__(self, emu: Any, session: aiohttp.ClientSession) -> None:
        self.emu = emu
        self.store = emu.store
        self.session = session
        self.headers = {"Authorization": f"OAuth {TOKEN}"}

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        data = jsonio.dumps(body) if body is not None else None
        headers = {**self.headers, "Content-Type": "application/json"}
        async with self.session.request(method, f"{self.emu.url}{path}", data=data,
                                        headers=headers) as resp:
            text = await resp.text()
            assert resp.status < 300, (resp.status, text)
            return jsonio.loads(text) if text else None

    async def faults(self, **config: Any) -> None:
        """Replace the fault configuration (nothing given: no faults)."""
        await self.call("PUT", "/_emulator/faults", config)

    async def requests(self) -> dict[str, Any]:
        return await self.call("GET", "/_emulator/requests")

    async def route_count(self, route: str) -> int:
        return int((await self.requests())["by_route"].get(route, 0))

    async def create_pool(self, **fields: Any) -> str:
        project = await self.call("POST", "/api/v1/projects", {"public_name": "test project"})
        pool = await self.call("POST", "/api/v1/pools", {
            "project_id": project["id"], "private_name": "test pool",
            "reward_per_assignment": 0.05, "may_contain_adult_content": False,
            "will_expire": "2030-01-01T00:00:00", "assignment_max_duration_seconds": 600,
            "defaults": {"default_overlap_for_new_tasks": 1}, **fields})
        return str(pool["id"])

    def submitted(self, pool_id: str, task_ids: list[str], now: datetime, *, user: str = "w1",
                  visible_after: datetime | None = None) -> list[str]:
        """One SUBMITTED assignment per task, all stamped ``now``."""
        ids = []
        for task_id in task_ids:
            a = self.store.create_assignment(pool_id, user, [task_id], now)
            self.store.submit_assignment(a["id"], [{"output_values": {"result": "OK"}}], now,
                                         visible_after=visible_after)
            ids.append(a["id"])
        return ids


def make_client(url: str, sleeper: Sleeper, *, token: str = TOKEN, **policy: Any) -> TolokaClient:
    retry = RetryPolicy(**{"max_attempts": 5, "budget_s": 600.0, **policy})
    settings = HttpSettings(connect_timeout_s=5, total_timeout_s=30, retry=retry)
    http = TolokaHttp(url, Secret("toloka_token", token), settings, sleep=sleeper, rand=lambda: 0.5)
    return TolokaClient(http, sleep=sleeper, operation_poll_s=0.01)


async def make_tasks(client: TolokaClient, pool_id: str, n: int, key: str = "t") -> list[str]:
    """``n`` tasks in ``pool_id`` through the client's idempotent create; their ids."""
    from toloka_client import operation_id_for

    tasks = [{"pool_id": pool_id, "input_values": {"n": i}, "overlap": 1} for i in range(n)]
    result = await client.create_tasks(tasks, operation_id=operation_id_for(key, pool_id))
    assert not result.validation_errors
    return [str(t.id) for t in result.created]
