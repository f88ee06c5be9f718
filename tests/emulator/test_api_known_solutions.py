"""A task a requester creates with ``known_solutions`` (a control task) is served inside
assignments with them, as Toloka serves golden tasks; other tasks carry none."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from emulator.app import EmulatorState
from emulator.ids import utcnow
from toloka_client.records import Assignment

KNOWN = [{"output_values": {"result": "OK"}, "correctness_weight": 1}]


async def test_known_solutions_are_served_inside_assignments(
        api: Any, emu: EmulatorState, make_pool: Callable[..., Awaitable[dict[str, Any]]]) -> None:
    pool = await make_pool()
    status, body = await api.post("/tasks", [
        {"pool_id": pool["id"], "input_values": {"image": "http://x/golden.jpg"}, "known_solutions": KNOWN,
         "message_on_unknown_solution": "See the instructions", "infinite_overlap": True},
        {"pool_id": pool["id"], "input_values": {"image": "http://x/real.jpg"}, "overlap": 3}])
    assert status == 201
    golden, real = body["items"]["0"], body["items"]["1"]
    assert golden["known_solutions"] == KNOWN and golden["overlap"] is None and golden["infinite_overlap"] is True
    a = emu.store.create_assignment(pool["id"], "w1", [real["id"], golden["id"]], utcnow(), mixed=True)
    status, got = await api.get(f"/assignments/{a['id']}")
    assert status == 200 and got["mixed"] is True
    served_real, served_golden = got["tasks"]
    assert "known_solutions" not in served_real and "overlap" not in served_golden
    assert served_golden["known_solutions"] == KNOWN
    assert served_golden["message_on_unknown_solution"] == "See the instructions"
    status, page = await api.get("/assignments", pool_id=pool["id"])
    assert page["items"][0]["tasks"][1]["known_solutions"] == KNOWN
    parsed = Assignment.from_json(got)    # the daemon's client: the control task is recognised
    assert [t.is_golden for t in parsed.tasks] == [False, True]
