"""The issue's acceptance test: the demo scenario runs to completion against a real emulator,
driven by a scripted client over loopback HTTP, and the ground truth agrees with what the API
served (assignments, photos and their markers, checkers' answers)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import start_emulator
from emulator.crowd.photos import read_marker
from emulator.crowd.scenario import Scenario
from emulator.crowd.scripted import ScriptedClient
from emulator.crowd.truth import score

TOKEN = "crowd-test-token"


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers={"Authorization": f"OAuth {TOKEN}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _bytes(http: aiohttp.ClientSession, url: str) -> bytes:
    async with http.get(url, headers={"Authorization": f"OAuth {TOKEN}"}) as resp:
        assert resp.status == 200
        return await resp.read()


def _expected_label(pool: str, task_inputs: dict[str, Any], truth: dict[str, Any], demo: Scenario,
                    photo_of_url: dict[str, str]) -> str:
    """The right answer, recomputed from the truth only (not from the crowd's own records)."""
    labels = demo.fields.labels(pool)
    if pool == "visit":
        ok = truth["assignments"][task_inputs["pedestrian_assignment_id"]]["visit_ok"]
    else:
        photo = truth["photos"][photo_of_url[task_inputs["image"]]]
        if pool == "quality":
            ok = photo["quality"] == "good"
        else:
            ok = photo["kind"] == demo.fields.photo_fields[task_inputs["image_field"]] and \
                photo["org_name"] == task_inputs["name"]
    return labels.accept_label if ok else labels.reject_label


async def test_demo_runs_to_completion_and_the_truth_matches_the_api(tmp_path: Path, demo: Scenario) -> None:
    async with start_emulator(tmp_path / "emu.sqlite", token=TOKEN, seed=11, speed=3000.0, scenario="demo",
                              step_seconds=0.05) as emu, aiohttp.ClientSession() as http:
        client = ScriptedClient(emu.url, token=TOKEN, setup_result=emu.setup_result, scenario=demo,
                                folder=tmp_path / "photos", http=http, poll_seconds=0.05)
        result = await client.run(expected=len(demo.organizations), timeout=60)
        truth = await _get(http, emu.url + "/_emulator/truth")
        api = emu.url + "/api/v1"
        pools = emu.setup_result["pools"]

        # every organization got exactly one pedestrian assignment, and every one was decided
        assignments = truth["assignments"]
        assert sorted(a["org_id"] for a in assignments.values()) == sorted(o.id for o in demo.organizations)
        assert set(result.decisions) == set(assignments)
        kinds = {a["kind"] for a in assignments.values()}
        assert "honest" in kinds

        # each truth assignment exists in the API with that worker and that task
        for aid, t in assignments.items():
            served = await _get(http, f"{api}/assignments/{aid}")
            assert served["user_id"] == t["worker_id"] and served["pool_id"] == pools["pedestrian"]
            assert served["tasks"][0]["id"] == t["task_id"] == truth["organizations"][t["org_id"]]["task_id"]
            assert served["solutions"][0]["output_values"] == t["output_values"]
            assert served["status"] == ("REJECTED" if result.decisions[aid] == "reject" else "ACCEPTED")

        # every photo the API serves carries the marker the truth lists; cheats show another place
        for attachment_id, photo in truth["photos"].items():
            marker = read_marker(await _bytes(http, f"{api}/attachments/{attachment_id}/download"))
            assert marker is not None
            assert marker.to_dict() == {k: photo[k] for k in marker.to_dict()}
            ped = assignments[photo["assignment_id"]]
            if ped["kind"] == "cheat":
                assert marker.org_id != ped["org_id"] and not marker.visited
            else:
                assert marker.org_id == ped["org_id"] and marker.visited
        assert any(p["quality"] != "good" or not p["relevant"] for p in truth["photos"].values()) or \
            not any(a["kind"] == "sloppy" for a in assignments.values())

        # checkers' answers in the API: recorded in the truth, right label recomputed from the truth,
        # a pedestrian never checked their own work, accurate workers mostly right
        photo_of_url = {url: aid for ped in client._peds.values() for shots in ped.photos.values()
                        for aid, url in shots}
        given = right = 0
        for pool in ("visit", "quality", "relevance"):
            page = await _get(http, f"{api}/assignments?pool_id={pools[pool]}&status=ACCEPTED&limit=1000")
            assert page["items"], pool
            for a in page["items"]:
                record = truth["answers"][a["id"]]
                assert record["worker_id"] == a["user_id"] and record["pool"] == pool
                for task, solution, rec in zip(a["tasks"], a["solutions"], record["tasks"]):
                    label = solution["output_values"]["result"]
                    assert rec["task_id"] == task["id"] and rec["given"] == label
                    assert rec["correct"] == _expected_label(pool, task["input_values"], truth, demo, photo_of_url)
                    owner = assignments[task["input_values"]["pedestrian_assignment_id"]]["worker_id"]
                    assert a["user_id"] != owner
                    given += 1
                    right += label == rec["correct"]
        assert given >= 3 * len(demo.organizations)
        assert right / given >= 0.75  # accuracies are drawn from 0.85-0.99

        # bonuses were paid for accepted work only, and the score can be computed from the run
        for aid in result.bonuses:
            assert result.decisions[aid] == "accept"
            bonuses = await _get(http, f"{api}/user-bonuses?assignment_id={aid}")
            assert len(bonuses["items"]) == 1
        summary = score(truth, result.decisions, kept_photos=result.kept_photos, bonus_fields=result.bonuses)
        assert summary["decided"] == len(demo.organizations) and summary["unknown_ids"] == []
        assert summary["cheats"] == sum(a["kind"] == "cheat" for a in assignments.values())
        state = await _get(http, emu.url + "/_emulator/state")
        assert state["crowd"]["errors"] == 0
