"""Fault injection observed by a raw aiohttp client against a running emulator."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.app import start_emulator
from emulator.ids import utcnow

API = "/api/v1"


async def _set(api: Any, **config: Any) -> None:
    status, body = await api.put("/_emulator/faults", config)
    assert status == 200, body


async def _raw(api: Any, method: str = "GET", path: str = "/requester",
               **kw: Any) -> tuple[int, dict[str, str], bytes]:
    async with api.session.request(method, API + path, **kw) as resp:
        return resp.status, dict(resp.headers), await resp.read()


@pytest.mark.parametrize("setting, status, code, header, payload", [
    ({"rate_429": 1}, 429, "TOO_MANY_REQUESTS", None, None),
    ({"rate_429_retry_after": 1, "retry_after_seconds": 3}, 429, "TOO_MANY_REQUESTS", "3", None),
    ({"rate_429_interval": 1, "interval": "MIN"}, 429, "TOO_MANY_REQUESTS", None,
     {"interval": "MIN"}),
    ({"rate_500": 1}, 500, "INTERNAL_ERROR", None, None),
    ({"rate_503": 1}, 503, "REMOTE_SERVICE_UNAVAILABLE", None, None),
])
async def test_json_error_faults(api: Any, setting: dict[str, Any], status: int, code: str,
                                 header: str | None, payload: Any) -> None:
    await _set(api, **setting)
    got_status, headers, raw = await _raw(api)
    assert got_status == status
    assert headers.get("Retry-After") == header
    body = json.loads(raw)
    assert body["code"] == code and body["request_id"] and body.get("payload") == payload
    # The admin API is never faulted, and it counts what was injected.
    status_, state = await api.get("/_emulator/state")
    assert status_ == 200 and state["faults"]["injected_total"] == 1


async def test_empty_body_500(api: Any) -> None:
    await _set(api, rate_500_empty=1)
    status, _, raw = await _raw(api)
    assert status == 500 and raw == b""
    assert (await api.get("/_emulator/state"))[1]["faults"]["injected"] == {"500_empty": 1}


async def test_latency(api: Any) -> None:
    await _set(api, latency_seconds=0.3, latency_rate=1)
    started = time.monotonic()
    status, _, _ = await _raw(api)
    assert status == 200 and time.monotonic() - started >= 0.3
    assert (await api.get("/_emulator/state"))[1]["faults"]["injected"] == {"latency": 1}


async def test_dropped_connection_after_a_write_that_was_applied(api: Any) -> None:
    await _set(api, drop_after_write_rate=1)
    assert (await _raw(api))[0] == 200                        # reads are never dropped
    with pytest.raises(aiohttp.ServerDisconnectedError):
        await _raw(api, "POST", "/projects", json={"public_name": "lost answer"})
    await _set(api)                                            # faults off
    status, found = await api.get("/projects")
    assert [p["public_name"] for p in found["items"]] == ["lost answer"]   # it WAS applied
    assert (await api.get("/_emulator/state"))[1]["faults"]["injected"] == {"drop_after_write": 1}


async def test_late_visibility_of_submitted_assignments(api: Any, emu: Any, make_pool) -> None:
    pool = await make_pool()
    await _set(api, visibility_delay_seconds=1.0)
    store = emu.store
    (task,) = store.create_tasks(pool["id"], [{"input_values": {"image": "i"}}], utcnow())
    a = store.create_assignment(pool["id"], "w1", [task["id"]], utcnow())
    store.submit_assignment(a["id"], [{"output_values": {}}], utcnow())
    status, page = await api.get("/assignments", pool_id=pool["id"], sort="submitted")
    assert page["items"] == []                                 # not visible yet
    assert (await api.get(f"/assignments/{a['id']}"))[1]["status"] == "SUBMITTED"
    await asyncio.sleep(1.2)
    status, page = await api.get("/assignments", pool_id=pool["id"], sort="submitted")
    assert [x["id"] for x in page["items"]] == [a["id"]]
    # Its timestamp is the original submit time, earlier than when it became visible.
    assert page["items"][0]["submitted"] == store.get_assignment(a["id"])["submitted"]


async def test_path_prefix_limits_faults(api: Any) -> None:
    await _set(api, rate_503=1, path_prefix="/api/v1/assignments")
    assert (await _raw(api))[0] == 200
    assert (await _raw(api, path="/assignments?pool_id=1"))[0] == 503
    status, body = await api.put("/_emulator/faults", {"path_prefix": "/elsewhere"})
    assert status == 400
    status, body = await api.put("/_emulator/faults", {"rate_500": 2})
    assert status == 400 and "rate_500" in body["message"]
    status, body = await api.put("/_emulator/faults", {"no_such_knob": 1})
    assert status == 400
    status, config = await api.get("/_emulator/faults")
    assert config["rate_503"] == 1 and config["path_prefix"] == "/api/v1/assignments"


async def test_faults_are_deterministic_for_a_seed(tmp_path: Path, token: str) -> None:
    async def statuses(db: Path, seed: int) -> list[int]:
        config = {"rate_429": 0.2, "rate_500": 0.2, "rate_503": 0.1}
        async with start_emulator(db, token=token, seed=seed, faults=config) as emu:
            headers = {"Authorization": f"OAuth {token}"}
            async with aiohttp.ClientSession(emu.url, headers=headers) as s:
                out = []
                for _ in range(40):
                    async with s.get(API + "/requester") as r:
                        out.append(r.status)
                return out

    first = await statuses(tmp_path / "a.sqlite", 3)
    assert first == await statuses(tmp_path / "b.sqlite", 3)
    assert {200, 429, 500, 503} <= set(first)
    assert first != await statuses(tmp_path / "c.sqlite", 4)
