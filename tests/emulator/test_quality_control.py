"""Contract: a pool's AssignmentsAssessment -> ChangeOverlap rule, as toloka-kit 1.2.3 sends it,
raises the overlap of a rejected assignment's task exactly once and reopens the pool; pools
without the rule behave as before. Over HTTP, and across a restart of the emulator."""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import EmulatorState, start_emulator
from emulator.faults import FaultConfig
from emulator.ids import utcnow
from emulator.quality_control import OverlapChange, overlap_changes, reopen_on_reject_config
from emulator.store import json_dumps, json_loads

#: Exactly what toloka-kit 1.2.3 serializes for
#: ``add_action(AssignmentsAssessment(), [AssessmentEvent == REJECT], ChangeOverlap(delta=1, open_pool=True))``.
KIT_RULE: dict[str, Any] = {
    "configs": [{
        "rules": [{
            "action": {"parameters": {"delta": 1, "open_pool": True}, "type": "CHANGE_OVERLAP"},
            "conditions": [{"operator": "EQ", "value": "REJECT", "key": "assessment_event"}],
        }],
        "collector_config": {"type": "ASSIGNMENTS_ASSESSMENT"},
    }],
}

MakePool = Callable[..., Awaitable[dict[str, Any]]]


class _Http:
    """Just enough of the conftest's Api for a test that starts its own emulators."""

    def __init__(self, session: aiohttp.ClientSession) -> None:
        self.session = session

    async def call(self, method: str, path: str, json: Any = None, **params: str) -> tuple[int, Any]:
        async with self.session.request(method, "/api/v1" + path, params=params,
                                        data=None if json is None else json_dumps(json),
                                        headers={"Content-Type": "application/json"}) as resp:
            raw = await resp.read()
            return resp.status, json_loads(raw) if raw else None

    async def get(self, path: str) -> tuple[int, Any]:
        return await self.call("GET", path)

    async def post(self, path: str, json: Any = None, **params: str) -> tuple[int, Any]:
        return await self.call("POST", path, json, **params)

    async def patch(self, path: str, json: Any) -> tuple[int, Any]:
        return await self.call("PATCH", path, json)


def _submitted(emu: EmulatorState, pool_id: str, task_id: str, user: str) -> str:
    """A worker takes the task and submits, as the crowd does (through the store)."""
    a = emu.store.create_assignment(pool_id, user, [task_id], utcnow())
    emu.store.submit_assignment(a["id"], [{"output_values": {"result": "x"}}], utcnow())
    return str(a["id"])


async def _task(api: Any, pool_id: str, overlap: int = 1) -> dict[str, Any]:
    status, task = await api.post("/tasks", {"pool_id": pool_id, "input_values": {"image": "http://x/1.jpg"},
                                             "overlap": overlap}, async_mode="false")
    assert status == 201, task
    created: dict[str, Any] = task
    return created


async def _reject(api: Any, assignment_id: str) -> tuple[int, Any]:
    answer: tuple[int, Any] = await api.patch(f"/assignments/{assignment_id}",
                                              {"status": "REJECTED", "public_comment": "Incorrect"})
    return answer


async def test_the_kit_rule_is_kept_as_sent(make_pool: MakePool, api: Any) -> None:
    pool = await make_pool(quality_control=copy.deepcopy(KIT_RULE))
    status, got = await api.get(f"/pools/{pool['id']}")
    assert status == 200 and got["quality_control"] == KIT_RULE


async def test_a_rejection_raises_the_overlap_once_and_reopens_the_pool(
        make_pool: MakePool, api: Any, emu: EmulatorState) -> None:
    pool = await make_pool(quality_control=copy.deepcopy(KIT_RULE))
    task = await _task(api, pool["id"], overlap=2)
    first = _submitted(emu, pool["id"], task["id"], "w1")
    second = _submitted(emu, pool["id"], task["id"], "w2")
    assert (await api.get(f"/tasks/{task['id']}"))[1]["remaining_overlap"] == 0
    assert (await api.post(f"/pools/{pool['id']}/close"))[0] == 202

    status, body = await _reject(api, first)
    assert status == 200 and body["status"] == "REJECTED"
    _, after = await api.get(f"/tasks/{task['id']}")
    assert (after["overlap"], after["remaining_overlap"], after["infinite_overlap"]) == (3, 1, False)
    assert (await api.get(f"/pools/{pool['id']}"))[1]["status"] == "OPEN"   # open_pool: true

    # the same rejection again is refused, so the overlap does not move a second time
    assert (await _reject(api, first))[0] == 409
    # accepting (also a rejected one: ACCEPT_AFTER_REJECT) does not fire a REJECT rule
    assert (await api.patch(f"/assignments/{second}", {"status": "ACCEPTED"}))[0] == 200
    assert (await api.patch(f"/assignments/{first}", {"status": "ACCEPTED"}))[0] == 200
    _, final = await api.get(f"/tasks/{task['id']}")
    assert (final["overlap"], final["remaining_overlap"]) == (3, 1)
    # the raised overlap is offered to another worker, never to one who worked on the task
    assert [t["id"] for t in emu.store.available_tasks(pool["id"], "w3", 10)] == [task["id"]]
    assert emu.store.available_tasks(pool["id"], "w1", 10) == []


async def test_every_rejection_counts(make_pool: MakePool, api: Any, emu: EmulatorState) -> None:
    pool = await make_pool(quality_control=copy.deepcopy(KIT_RULE))
    task = await _task(api, pool["id"], overlap=1)
    for n in range(3):
        assignment = _submitted(emu, pool["id"], task["id"], f"w{n}")
        assert (await _reject(api, assignment))[0] == 200
    _, after = await api.get(f"/tasks/{task['id']}")
    assert (after["overlap"], after["remaining_overlap"]) == (4, 1)


async def test_pools_without_the_rule_behave_as_before(make_pool: MakePool, api: Any, emu: EmulatorState) -> None:
    other_rule = {"configs": [{"collector_config": {"type": "SKIPPED_IN_ROW_ASSIGNMENTS"},
                               "rules": [{"conditions": [{"key": "skipped_in_row_count", "operator": "GTE",
                                                          "value": 3}],
                                          "action": {"type": "RESTRICTION_V2", "parameters": {"scope": "PROJECT"}}}]}]}
    for quality_control in (None, other_rule):
        extra = {} if quality_control is None else {"quality_control": quality_control}
        pool = await make_pool(**extra)
        task = await _task(api, pool["id"], overlap=1)
        assignment = _submitted(emu, pool["id"], task["id"], "w1")
        await api.post(f"/pools/{pool['id']}/close")
        assert (await _reject(api, assignment))[0] == 200
        _, after = await api.get(f"/tasks/{task['id']}")
        assert (after["overlap"], after["remaining_overlap"]) == (1, 0)
        assert (await api.get(f"/pools/{pool['id']}"))[1]["status"] == "CLOSED"


async def test_open_pool_false_and_a_rule_set_by_put(make_pool: MakePool, api: Any, emu: EmulatorState) -> None:
    pool = await make_pool(open_it=False)
    rule = {"configs": [reopen_on_reject_config(delta=2, open_pool=False)]}
    status, updated = await api.put(f"/pools/{pool['id']}", {**pool, "quality_control": rule})  # as update_pool does
    assert status == 200 and updated["quality_control"] == rule
    task = await _task(api, pool["id"], overlap=1)
    assignment = _submitted(emu, pool["id"], task["id"], "w1")
    assert (await _reject(api, assignment))[0] == 200
    _, after = await api.get(f"/tasks/{task['id']}")
    assert (after["overlap"], after["remaining_overlap"]) == (3, 2)
    assert (await api.get(f"/pools/{pool['id']}"))[1]["status"] == "CLOSED"


async def test_the_raised_overlap_survives_a_restart(tmp_path: Path, token: str) -> None:
    db = tmp_path / "qc.sqlite"
    headers = {"Authorization": f"OAuth {token}"}
    async with start_emulator(db, token=token) as emu, aiohttp.ClientSession(emu.url, headers=headers) as s:
        api = _Http(s)
        _, project = await api.post("/projects", {"public_name": "Find"})
        _, pool = await api.post("/pools", {"project_id": project["id"], "quality_control": copy.deepcopy(KIT_RULE)})
        await api.post(f"/pools/{pool['id']}/open")
        task = await _task(api, pool["id"], overlap=1)
        assignment = _submitted(emu, pool["id"], task["id"], "w1")
        assert (await _reject(api, assignment))[0] == 200
    async with start_emulator(db, token=token) as emu, aiohttp.ClientSession(emu.url, headers=headers) as s:
        api = _Http(s)
        _, after = await api.get(f"/tasks/{task['id']}")
        assert (after["overlap"], after["remaining_overlap"]) == (2, 1)
        assert (await _reject(api, assignment))[0] == 409
        assert [t["id"] for t in emu.store.available_tasks(pool["id"], "w2", 10)] == [task["id"]]
        second = _submitted(emu, pool["id"], task["id"], "w2")
        assert (await _reject(api, second))[0] == 200
        assert (await api.get(f"/tasks/{task['id']}"))[1]["overlap"] == 3


async def test_a_lost_answer_and_a_retried_reject_raise_the_overlap_once(tmp_path: Path, token: str) -> None:
    faults = {"drop_after_write_rate": 1.0, "path_prefix": "/api/v1/assignments"}
    headers = {"Authorization": f"OAuth {token}"}
    async with start_emulator(tmp_path / "drop.sqlite", token=token, faults=faults) as emu, \
            aiohttp.ClientSession(emu.url, headers=headers) as s:
        api = _Http(s)
        _, project = await api.post("/projects", {"public_name": "Find"})
        _, pool = await api.post("/pools", {"project_id": project["id"], "quality_control": copy.deepcopy(KIT_RULE)})
        task = await _task(api, pool["id"], overlap=1)
        assignment = _submitted(emu, pool["id"], task["id"], "w1")
        for _ in range(2):   # the answer is lost both times; the second try finds it REJECTED (409)
            with contextlib.suppress(aiohttp.ClientError):
                await _reject(api, assignment)
        emu.faults.set(FaultConfig())   # no more faults
        assert (await _reject(api, assignment))[0] == 409
        _, after = await api.get(f"/tasks/{task['id']}")
        assert (after["overlap"], after["remaining_overlap"]) == (2, 1)
        assert (await api.get(f"/pools/{pool['id']}"))[1]["status"] == "OPEN"


def test_which_rules_fire() -> None:
    assert {"configs": [reopen_on_reject_config()]} == KIT_RULE
    assert overlap_changes(KIT_RULE, "REJECT") == [OverlapChange(delta=1, open_pool=True)]
    assert overlap_changes(KIT_RULE, "ACCEPT") == []
    assert overlap_changes(KIT_RULE, None) == []
    assert overlap_changes(None, "REJECT") == []
    with_uuid = copy.deepcopy(KIT_RULE)
    with_uuid["configs"][0]["collector_config"]["uuid"] = "5a4a1f5c-6a0b-4a5e-9e42-7c1f0f0a7e11"
    assert overlap_changes(with_uuid, "REJECT") == [OverlapChange(1, True)]
    # every condition must hold; a condition the emulator cannot evaluate never holds
    both = copy.deepcopy(KIT_RULE)
    both["configs"][0]["rules"][0]["conditions"].append({"key": "rejected_assignments_count", "operator": "GTE",
                                                         "value": 2})
    assert overlap_changes(both, "REJECT") == []
    no_conditions = {"collector_config": {"type": "ASSIGNMENTS_ASSESSMENT"},
                     "rules": [{"conditions": [], "action": {}}]}
    for broken in ({"configs": "x"}, {"configs": [1]}, {"configs": [no_conditions]}):
        assert overlap_changes(broken, "REJECT") == []
    bad_delta = copy.deepcopy(KIT_RULE)
    bad_delta["configs"][0]["rules"][0]["action"]["parameters"]["delta"] = "1"
    assert overlap_changes(bad_delta, "REJECT") == []
