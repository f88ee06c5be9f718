"""One seed, one outcome: the demo scenario decided by the scripted client over real loopback
HTTP ends the same way at another speed and tick period, and across a restart of the emulator
in the middle of the run; another seed ends differently.

"Outcome" is what the requester can observe, keyed by what does not depend on time-based ids:
the decision per organization, the bonus fields paid, the photos kept (by photo identity), and
every checker's answer per (pool, organization, photo identity, field, worker) — read from the
API's assignments, mapped to organizations and photos through the truth.
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
from emulator.crowd.scenario import load_scenario_file
from emulator.crowd.scripted import ScriptedClient

TOKEN = "crowd-determinism-token"
SEED = 11


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers={"Authorization": f"OAuth {TOKEN}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _answers(http: aiohttp.ClientSession, emu: Any, client: ScriptedClient,
                   truth: dict[str, Any]) -> dict[tuple[str, ...], list[str]]:
    """(pool, org, photo identity, field, worker) -> labels given, from the API's assignments."""
    photo_of_url = {url: truth["photos"][aid]["photo_id"] for ped in client._peds.values()
                    for shots in ped.photos.values() for aid, url in shots}
    out: dict[tuple[str, ...], list[str]] = {}
    for pool in ("visit", "quality", "relevance"):
        pool_id = emu.setup_result["pools"][pool]
        page = await _get(http, f"{emu.url}/api/v1/assignments?pool_id={pool_id}&limit=100000")
        assert not page["has_more"]
        for a in page["items"]:
            assert a["status"] == "ACCEPTED", a  # every check taken was finished, none given back
            for task, solution in zip(a["tasks"], a["solutions"]):
                inputs = task["input_values"]
                org = truth["assignments"][inputs["pedestrian_assignment_id"]]["org_id"]
                photo = "" if pool == "visit" else photo_of_url[inputs["image"]]
                field = "" if pool == "visit" else inputs["image_field"]
                out.setdefault((pool, org, photo, field, a["user_id"]), []).append(solution["output_values"]["result"])
    return {k: sorted(v) for k, v in out.items()}


def _outcome(client: ScriptedClient, truth: dict[str, Any], answers: dict[tuple[str, ...], list[str]]) -> dict[str, Any]:
    org_of = {aid: a["org_id"] for aid, a in truth["assignments"].items()}
    photo_id = {aid: p["photo_id"] for aid, p in truth["photos"].items()}
    result = client.result
    return {
        "decisions": {org_of[aid]: d for aid, d in result.decisions.items()},
        "bonuses": {org_of[aid]: sorted(fields) for aid, fields in result.bonuses.items()},
        "kept": sorted(photo_id[aid] for aid in result.kept_photos),
        "answers": answers,
        "walkers": {org_of[aid]: a["worker_name"] for aid, a in truth["assignments"].items()},
        "photos": sorted(p["photo_id"] for p in truth["photos"].values()),
        "expected": {org_of[aid]: a["expected"] for aid, a in truth["assignments"].items()},
    }


async def _run(folder: Path, *, seed: int, speed: float, step: float, stops: tuple[int, ...] = ()) -> dict[str, Any]:
    """Run the demo to the end; after each number of decisions in ``stops`` the emulator is
    shut down (its step loop cancelled wherever it was) and started again on the same file."""
    demo = load_scenario_file("demo")
    db = folder / "emu.sqlite"
    total = len(demo.organizations)
    async with aiohttp.ClientSession() as http:
        client: ScriptedClient | None = None
        for stop in (*stops, total):
            async with start_emulator(db, token=TOKEN, seed=seed, speed=speed, scenario="demo",
                                      step_seconds=step) as emu:
                if client is None:
                    client = ScriptedClient(emu.url, token=TOKEN, setup_result=emu.setup_result, scenario=demo,
                                            folder=folder / "photos", http=http, poll_seconds=step)
                client.connect(emu.url)
                await client.run(expected=stop, timeout=60)
                if stop == total:
                    truth = await _get(http, emu.url + "/_emulator/truth")
                    answers = await _answers(http, emu, client, truth)
                    state = await _get(http, emu.url + "/_emulator/state")
                    assert state["crowd"]["errors"] == 0
        assert client is not None
        return _outcome(client, truth, answers)


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Runs of the demo by name, each made once per module (they take a few seconds each)."""
    plans = {
        "fast": {"seed": SEED, "speed": 3000.0, "step": 0.05},
        "slower": {"seed": SEED, "speed": 1200.0, "step": 0.11},
        "restarted": {"seed": SEED, "speed": 3000.0, "step": 0.05, "stops": (3, 8)},
        "other seed": {"seed": SEED + 1, "speed": 3000.0, "step": 0.05},
    }

    @functools.cache
    def get(name: str) -> dict[str, Any]:
        return asyncio.run(_run(tmp_path_factory.mktemp(name.replace(" ", "-")), **plans[name]))

    return get


def _assert_same(a: dict[str, Any], b: dict[str, Any]) -> None:
    for part in ("walkers", "photos", "expected", "decisions", "bonuses", "kept"):
        assert a[part] == b[part], part
    assert set(a["answers"]) == set(b["answers"])
    differing = {k: (a["answers"][k], b["answers"][k]) for k in a["answers"] if a["answers"][k] != b["answers"][k]}
    assert differing == {}


def test_the_outcome_does_not_depend_on_speed_or_tick_period(runs: Any) -> None:
    fast, slower = runs("fast"), runs("slower")
    assert len(fast["decisions"]) == 12
    _assert_same(fast, slower)
    # the run is a real crowd: exactly the overlap of checkers per check, several kinds of outcome
    per_check = Counter((pool, org, photo, field) for pool, org, photo, field, _ in fast["answers"])
    assert set(per_check.values()) == {3}
    assert {"accept", "reject"} <= set(fast["decisions"].values())


def test_the_outcome_survives_restarts_of_the_emulator_mid_run(runs: Any) -> None:
    _assert_same(runs("fast"), runs("restarted"))


def test_another_seed_gives_another_outcome(runs: Any) -> None:
    fast, other = runs("fast"), runs("other seed")
    assert len(other["decisions"]) == 12
    assert fast["walkers"] != other["walkers"]
    assert fast["answers"] != other["answers"]
    assert (fast["decisions"], fast["kept"]) != (other["decisions"], other["kept"])
