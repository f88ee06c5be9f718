"""The find_items scenario end to end: a scripted stand-in for the daemon drives the built-in
scenario over loopback HTTP to completion; the crowd keeps the contract (pools, fields,
unavailable_for, one find per finder and image, exactly the overlap of answers), the truth
agrees with the API, the score says the run went well, and the outcome is the same at another
speed and tick period and across restarts of the emulator (another seed differs).

"Outcome" is keyed by what does not depend on time-based ids or the emulator's port: image
and product ids (read from the links' paths) and worker names.
"""

from __future__ import annotations

import asyncio
import functools
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.app import start_emulator
from emulator.crowd.catalogue import image_of_url, product_of_url
from emulator.crowd.find_items_scenario import FindItemsScenario
from emulator.crowd.find_items_scripted import FindItemsScriptedClient
from emulator.crowd.find_items_truth import score_find_items
from emulator.crowd.scenario import ScenarioError, load_scenario_file

TOKEN = "find-items-token"
SEED = 11


def _scenario() -> FindItemsScenario:
    scenario = load_scenario_file("find_items")
    assert isinstance(scenario, FindItemsScenario)
    return scenario


async def _get(http: aiohttp.ClientSession, url: str, *, auth: bool = True) -> Any:
    headers = {"Authorization": f"OAuth {TOKEN}"} if auth else {}
    async with http.get(url, headers=headers) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _assignments(http: aiohttp.ClientSession, emu: Any, pool: str) -> list[dict[str, Any]]:
    page = await _get(http, f"{emu.url}/api/v1/assignments?pool_id={emu.setup_result['pools'][pool]}&limit=100000")
    assert not page["has_more"]
    items: list[dict[str, Any]] = page["items"]
    return items


async def _observe(http: aiohttp.ClientSession, emu: Any, client: FindItemsScriptedClient) -> dict[str, Any]:
    """What the requester can see at the end, keyed by ids that do not depend on time or port,
    after checking the contract invariants on the way."""
    truth = await _get(http, emu.url + "/_emulator/truth")
    assert truth["kind"] == "find_items"
    names = {uid: w["name"] for uid, w in truth["workers"].items()}
    scenario = _scenario()

    finds: dict[str, str] = {}
    for a in await _assignments(http, emu, "find_items"):
        assert a["status"] in ("ACCEPTED", "REJECTED"), a  # every find was reviewed by the requester
        image = image_of_url(a["tasks"][0]["input_values"]["image"])
        product = product_of_url(a["solutions"][0]["output_values"]["found_link"])
        key = f"{image}|{names[a['user_id']]}"
        assert key not in finds, "a finder took the same image twice"
        assert truth["submissions"][a["id"]]["product_id"] == product
        finds[key] = f"{product}|{a['status']}"

    checks: dict[str, list[str]] = {}
    per_task: Counter[str] = Counter()
    for a in await _assignments(http, emu, "verification"):
        assert a["status"] == "ACCEPTED"
        for task, solution in zip(a["tasks"], a["solutions"], strict=True):
            made = truth["submissions"][task["input_values"]["assignment_id"]]
            assert a["user_id"] != made["worker_id"]
            label = solution["output_values"]["result"]
            assert label in ("Yes", "No")
            key = f"{made['image_id']}|{made['product_id']}|{made['worker_name']}|{names[a['user_id']]}"
            checks.setdefault(key, []).append(label)
            per_task[task["id"]] += 1
    assert set(per_task.values()) == {scenario.pools["verification"].overlap}

    comparisons: dict[str, list[str]] = {}
    per_pair: Counter[str] = Counter()
    for a in await _assignments(http, emu, "sbs"):
        assert a["status"] == "ACCEPTED"
        for task, solution in zip(a["tasks"], a["solutions"], strict=True):
            inputs = task["input_values"]
            key = "|".join([image_of_url(inputs["image"]) or "", product_of_url(inputs["left_link"]) or "",
                            product_of_url(inputs["right_link"]) or "", names[a["user_id"]]])
            comparisons.setdefault(key, []).append(solution["output_values"]["result"])
            per_pair[task["id"]] += 1
    assert set(per_pair.values()) <= {scenario.pools["sbs"].overlap}

    tasks = await _get(http, f"{emu.url}/api/v1/tasks?pool_id={emu.setup_result['pools']['find_items']}&limit=1000")
    overlaps = {image_of_url(t["input_values"]["image"]): t["overlap"] for t in tasks["items"]}
    rankings: dict[str, list[str]] = {}
    for row in sorted(client.result.ranking_rows, key=lambda r: r["rank"]):
        rankings.setdefault(image_of_url(row["image"]) or "", []).append(product_of_url(row["link"]) or "")
    state = await _get(http, emu.url + "/_emulator/state")
    assert state["crowd"]["errors"] == 0
    return {
        "finds": finds,
        "checks": {k: sorted(v) for k, v in checks.items()},
        "comparisons": {k: sorted(v) for k, v in comparisons.items()},
        "overlaps": overlaps,
        "rankings": rankings,
        "score": score_find_items(truth, client.result.verified_rows, client.result.ranking_rows),
        "truth": truth,
        "result": client.result,
    }


async def _run(folder: Path, *, seed: int, speed: float, step: float, stops: tuple[int, ...] = ()) -> dict[str, Any]:
    """Run the scenario to the end; after each number of decided finds in ``stops`` the
    emulator is shut down and started again on the same file (on another port)."""
    scenario = _scenario()
    db = folder / "emu.sqlite"
    async with aiohttp.ClientSession() as http:
        client: FindItemsScriptedClient | None = None
        for stop in (*stops, None):
            async with start_emulator(db, token=TOKEN, seed=seed, speed=speed, scenario="find_items",
                                      step_seconds=step) as emu:
                assert emu.setup_result is not None
                if client is None:
                    client = FindItemsScriptedClient(emu.url, token=TOKEN, setup_result=emu.setup_result,
                                                     scenario=scenario, http=http, poll_seconds=step)
                client.connect(emu.url)
                await client.run(timeout=90, stop_after=stop)
                if stop is None:
                    return await _observe(http, emu, client)
    raise AssertionError("unreachable")


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Runs of the scenario by name, each made once per module (a few seconds each)."""
    plans: dict[str, dict[str, Any]] = {
        "fast": {"seed": SEED, "speed": 3000.0, "step": 0.05},
        "slower": {"seed": SEED, "speed": 1200.0, "step": 0.11},
        "restarted": {"seed": SEED, "speed": 3000.0, "step": 0.05, "stops": (8, 30)},
        "other seed": {"seed": SEED + 1, "speed": 3000.0, "step": 0.05},
    }

    @functools.cache
    def get(name: str) -> dict[str, Any]:
        return asyncio.run(_run(tmp_path_factory.mktemp(name.replace(" ", "-")), **plans[name]))

    return get


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for part in ("finds", "overlaps", "rankings"):
        assert a[part] == b[part], part
    for part in ("checks", "comparisons"):
        assert set(a[part]) == set(b[part]), part
        assert {k: (v, b[part][k]) for k, v in a[part].items() if v != b[part][k]} == {}, part


def test_a_run_goes_to_the_end_and_scores_well(runs: Any) -> None:
    fast = runs("fast")
    scenario = _scenario()
    truth = fast["truth"]
    score = fast["score"]
    # every image was worked on by at least its initial overlap of finders; rejections added more
    assert set(fast["overlaps"]) == set(truth["catalogue"]["images"])
    assert all(v >= scenario.pools["find_items"].overlap for v in fast["overlaps"].values())
    assert sum(fast["overlaps"].values()) == len(truth["submissions"]) == len(fast["finds"])
    rejected = sum(f.endswith("|REJECTED") for f in fast["finds"].values())
    assert rejected > 0 and sum(fast["overlaps"].values()) == 10 * scenario.pools["find_items"].overlap + rejected
    # all three kinds of finders worked, and junk was submitted
    kinds = Counter(s["kind"] for s in truth["submissions"].values())
    assert set(kinds) == {"good", "sloppy", "junk"}
    assert score["junk_submissions"] > 0 and score["unknown_rows"] == []
    # the daemon's part done right leads to a good result
    assert score["verified"] == len(truth["submissions"])
    assert score["precision_accepted"] is not None and score["precision_accepted"] >= 0.9
    assert score["junk_caught_rate"] is not None and score["junk_caught_rate"] >= 0.8
    assert score["images_ranked"] >= 7
    assert score["spearman_mean"] is not None and score["spearman_mean"] > 0.5
    # the truth records every checker's answer, right or wrong per the catalogue
    answers = [t for a in truth["answers"].values() for t in a["tasks"]]
    assert answers and all(t["given"] in (t["correct"], "No" if t["correct"] == "Yes" else "Yes")
                           for t in answers if "matches" in t)
    right = sum(t["given"] == t["correct"] for t in answers)
    assert right / len(answers) >= 0.75


def test_the_outcome_does_not_depend_on_speed_or_tick_period(runs: Any) -> None:
    _assert_same(runs("fast"), runs("slower"))


def test_the_outcome_survives_restarts_of_the_emulator_mid_run(runs: Any) -> None:
    _assert_same(runs("fast"), runs("restarted"))


def test_another_seed_gives_another_outcome(runs: Any) -> None:
    fast, other = runs("fast"), runs("other seed")
    assert fast["finds"] != other["finds"]
    assert fast["checks"] != other["checks"]


async def test_setup_pools_pictures_and_refusals(tmp_path: Path) -> None:
    db = tmp_path / "setup.sqlite"
    scenario = _scenario()
    async with start_emulator(db, token=TOKEN, seed=3, speed=60.0, scenario="find_items") as emu, \
            aiohttp.ClientSession() as http:
        result = emu.setup_result
        assert result is not None
        assert result["kind"] == "find_items" and set(result["pools"]) == {"find_items", "verification", "sbs"}
        assert set(result["skills"]) == {"verification", "sbs"}
        api = emu.url + "/api/v1"
        finding = await _get(http, f"{api}/pools/{result['pools']['find_items']}")
        assert finding["status"] == "OPEN" and finding["auto_accept_solutions"] is False
        assert finding["auto_accept_period_day"] == 7
        rule = finding["quality_control"]["configs"][0]
        assert rule["collector_config"]["type"] == "ASSIGNMENTS_ASSESSMENT"
        assert rule["rules"][0]["action"] == {"type": "CHANGE_OVERLAP", "parameters": {"delta": 1, "open_pool": True}}
        for pool in ("verification", "sbs"):
            doc = await _get(http, f"{api}/pools/{result['pools'][pool]}")
            assert doc["auto_accept_solutions"] is True and "quality_control" not in doc
            skills = await _get(http, f"{api}/user-skills?skill_id={result['skills'][pool]}&limit=100")
            assert len(skills["items"]) == 9
        tasks = await _get(http, f"{api}/tasks?pool_id={result['pools']['find_items']}&limit=100")
        assert len(tasks["items"]) == scenario.catalogue.images
        assert {t["overlap"] for t in tasks["items"]} == {4}
        project = await _get(http, f"{api}/projects/{finding['project_id']}")
        assert set(project["task_spec"]["input_spec"]) == {"image"}
        assert set(project["task_spec"]["output_spec"]) == {"found_link"}

        # pictures are public JPEGs, the same bytes every time
        image_url = tasks["items"][0]["input_values"]["image"]
        async with http.get(image_url) as resp:
            assert resp.status == 200 and resp.content_type == "image/jpeg"
            first = await resp.read()
        truth = await _get(http, emu.url + "/_emulator/truth")
        product = next(iter(truth["catalogue"]["products"].values()))
        async with http.get(product["url"]) as resp:
            assert resp.status == 200 and (await resp.read())[:2] == b"\xff\xd8"
        async with http.get(image_url) as resp:
            assert await resp.read() == first
        async with http.get(emu.url + "/_emulator/catalogue/products/nothing.jpg") as resp:
            assert resp.status == 404
        async with http.get(emu.url + "/_emulator/truth") as resp:
            assert resp.status == 401   # only the pictures are public

        with pytest.raises(ScenarioError, match="already holds"):
            await emu.setup_scenario("demo")
        assert emu.setup_result == result

    # a restart (another port) keeps the ids and the links of the set-up
    async with start_emulator(db, token=TOKEN, seed=3, speed=60.0) as emu:
        assert emu.setup_result == result and emu.crowd.truth()["kind"] == "find_items"

    # and a pedestrian store refuses a find_items scenario
    async with start_emulator(tmp_path / "ped.sqlite", token=TOKEN, seed=3, scenario="demo") as emu:
        with pytest.raises(ScenarioError, match="already holds"):
            await emu.setup_scenario("find_items")
        assert emu.crowd.truth()["kind"] == "pedestrian"


async def test_eager_comparisons_like_the_seed_also_finish(tmp_path: Path) -> None:
    """With ``settle=False`` the client compares the first ``links_per_image`` accepted links at
    once, as the seed does (which links those are depends on timing)."""
    scenario = _scenario()
    async with start_emulator(tmp_path / "eager.sqlite", token=TOKEN, seed=SEED, speed=3000.0,
                              scenario="find_items", step_seconds=0.05) as emu, aiohttp.ClientSession() as http:
        assert emu.setup_result is not None
        client = FindItemsScriptedClient(emu.url, token=TOKEN, setup_result=emu.setup_result, scenario=scenario,
                                         http=http, poll_seconds=0.05, settle=False)
        result = await client.run(timeout=90)
        assert all(len(pairs) <= 3 for pairs in result.comparisons.values())
        score = score_find_items(emu.crowd.truth(), result.verified_rows, result.ranking_rows)
        assert score["precision_accepted"] is not None and score["precision_accepted"] >= 0.9
