"""The admin API's scenario and truth routes call into the crowd (demo scenario)."""

from __future__ import annotations

from typing import Any


async def test_scenario_setup_is_idempotent_and_exposes_truth(api: Any) -> None:
    status, first = await api.post("/_emulator/scenario", {"name": "demo"})
    assert status == 200, first
    assert set(first["pools"]) >= {"pedestrian", "visit", "quality", "relevance"}
    status, pools = await api.get("/pools", limit=300)
    count = len(pools["items"])
    status, again = await api.post("/_emulator/scenario", {"name": "demo"})
    assert again == first
    assert len((await api.get("/pools", limit=300))[1]["items"]) == count   # not loaded twice
    status, pedestrian = await api.get(f"/pools/{first['pools']['pedestrian']}")
    assert pedestrian["status"] == "OPEN"
    status, state = await api.get("/_emulator/state")
    assert state["crowd"] is not None and state["counts"]["pools"] == count
    status, truth = await api.get("/_emulator/truth")
    assert status == 200 and truth
    status, body = await api.post("/_emulator/scenario", {"name": "no-such-scenario"})
    assert status == 400 and body["code"] == "VALIDATION_ERROR"
    status, body = await api.post("/_emulator/scenario", {"nothing": 1})
    assert status == 400
