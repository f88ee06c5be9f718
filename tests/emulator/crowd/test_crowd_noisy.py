"""A noisy crowd: checker kinds (good, careless, spammer), control tasks (``known_solutions``)
mixed into the verification pools, raised overlaps answered by further checkers, and the
built-in ``realistic`` scenarios. The runs go over real loopback HTTP with the scripted stand-in
for the daemon; one seed gives one outcome at another speed and across restarts of the
emulator, also for the answers that come after a raised overlap.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import json
import random
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import aiohttp
import pytest

from emulator.app import start_emulator
from emulator.crowd.behaviour import NEAR_METERS, correct_answer, distance_m, parse_coordinates, plan_pedestrian_work
from emulator.crowd.control import build_control_tasks, control_photo_url, token_of_url
from emulator.crowd.photos import PhotoMarker, read_marker, render_photo
from emulator.crowd.scenario import Scenario, ScenarioError, load_scenario_file, parse_scenario
from emulator.crowd.scripted import ScriptedClient
from emulator.crowd.simulator import build_workers, user_id_for

TOKEN = "noisy-crowd-token"
SEED = 5
VERIFICATION = ("visit", "quality", "relevance")


def noisy_doc(demo_doc: dict[str, Any]) -> dict[str, Any]:
    """The demo with perfect good checkers, always-wrong careless ones, spammers and control tasks."""
    doc = copy.deepcopy(demo_doc)
    doc["name"] = "noisy-demo"
    doc["verification"] = {
        "visit": {"workers": 9, "accuracy": [1.0, 1.0], "careless": {"workers": 2, "accuracy": [0.0, 0.0]},
                  "spammers": {"workers": 1, "answer": "positive"},
                  "control": {"tasks": 6, "share": 0.2}},
        "quality": {"workers": 9, "accuracy": [1.0, 1.0], "careless": {"share": 0.1, "accuracy": [0.0, 0.0]},
                    "spammers": {"share": 0.1, "answer": "negative"},
                    "control": {"tasks": 6, "share": 0.25, "positive_share": 0.5}},
        "relevance": {"workers": 9, "accuracy": [1.0, 1.0], "control": {"tasks": 1, "share": 0.5}},
    }
    return doc


# ---------------------------------------------------------------- parsing and pure parts


def test_checker_kinds_by_count_or_share(demo_doc: dict[str, Any]) -> None:
    scenario = parse_scenario(noisy_doc(demo_doc))
    assert isinstance(scenario, Scenario)
    v = scenario.verification
    assert (v["visit"].workers, v["visit"].careless, v["visit"].spammers) == (9, 2, 1)
    # shares are of the pool's whole crowd: 9 good are 80%, so 10% is round(11.25 * 0.1) = 1
    assert (v["quality"].careless, v["quality"].spammers, v["quality"].spam_answer) == (1, 1, "negative")
    assert (v["relevance"].careless, v["relevance"].spammers, v["relevance"].control.tasks) == (0, 0, 1)
    assert v["quality"].control is not None and v["quality"].control.per_real_task == pytest.approx(1 / 3)
    workers = build_workers(scenario, SEED)
    kinds = Counter((w.role, w.kind) for w in workers)
    assert kinds[("visit", "checker")] == 9 and kinds[("visit", "careless")] == 2 and kinds[("visit", "spammer")] == 1
    assert kinds[("quality", "careless")] == kinds[("quality", "spammer")] == 1
    by_name = {w.name: w for w in workers}
    assert by_name["visit-careless-2"].accuracy == 0.0 and by_name["visit-checker-9"].accuracy == 1.0
    assert by_name["visit-spammer-1"].spam == "positive" and by_name["quality-spammer-1"].spam == "negative"
    assert by_name["visit-checker-1"].user_id == user_id_for("noisy-demo", SEED, "visit-checker-1")
    assert [w.user_id for w in build_workers(scenario, SEED)] == [w.user_id for w in workers]


def test_the_demos_workers_are_what_they_always_were(demo: Scenario) -> None:
    workers = build_workers(demo, 1)
    assert [w.name for w in workers if w.role == "visit"] == [f"visit-checker-{i}" for i in range(1, 10)]
    assert all(w.kind in ("honest", "sloppy", "cheat", "checker") and w.spam is None for w in workers)
    first = next(w for w in workers if w.name == "quality-checker-1")
    rng = random.Random("1:worker:quality-checker-1")
    assert first.accuracy == rng.uniform(0.85, 0.99)


@pytest.mark.parametrize(("path", "value", "where"), [
    (("visit", "careless"), {"workers": 1, "share": 0.1, "accuracy": [0.4, 0.5]}, "verification.visit.careless"),
    (("visit", "careless"), {"workers": 1}, "verification.visit.careless.accuracy"),
    (("visit", "spammers"), {"workers": 1, "answer": "yes"}, "verification.visit.spammers.answer"),
    (("visit", "spammers"), {"share": 1.0}, "verification.visit.spammers.share"),
    (("visit", "control"), {"tasks": 3, "share": 0.6}, "verification.visit.control.share"),
    (("visit", "control"), {"tasks": 0, "share": 0.2}, "verification.visit.control.tasks"),
    (("visit", "control"), {"tasks": 3, "share": 0.2, "every": 5}, "verification.visit.control"),
])
def test_mistakes_in_the_new_keys_name_their_path(demo_doc: dict[str, Any], path: tuple[str, str], value: Any,
                                                  where: str) -> None:
    doc = copy.deepcopy(demo_doc)
    doc["verification"][path[0]][path[1]] = value
    with pytest.raises(ScenarioError) as info:
        parse_scenario(doc)
    assert info.value.where == where


def test_control_tasks_are_a_pure_function_with_correct_known_answers(demo_doc: dict[str, Any]) -> None:
    scenario = parse_scenario(noisy_doc(demo_doc))
    assert isinstance(scenario, Scenario)
    tasks = build_control_tasks(scenario, SEED, "http://127.0.0.1:1")
    again = build_control_tasks(scenario, SEED, "http://127.0.0.1:2")
    assert [t.name for t in tasks] == [f"control-visit-{i:03d}" for i in range(1, 7)] + \
        [f"control-quality-{i:03d}" for i in range(1, 7)] + ["control-relevance-001"]
    assert [(t.known_label, t.photos) for t in tasks] == [(t.known_label, t.photos) for t in again]
    assert build_control_tasks(scenario, SEED + 1)[0].photos != tasks[0].photos
    for task in tasks:
        assert task.input_values["pedestrian_assignment_id"] == task.name
        by_url: dict[str, PhotoMarker | None] = {control_photo_url("http://127.0.0.1:1", t): m
                                                 for t, m in task.photos.items()}
        labels = scenario.fields.labels(task.pool)
        truth = correct_answer(task.pool, task.input_values, by_url, scenario.fields)
        assert task.known_label == (labels.accept_label if truth else labels.reject_label)
        for url in by_url:
            assert token_of_url(url) in task.photos
    assert {t.known_label for t in tasks if t.pool == "visit"} == {"yes", "no"}
    assert {t.known_label for t in tasks if t.pool == "quality"} == {"ok", "bad"}
    assert token_of_url("http://h/_emulator/control/nothex.jpg") is None


def test_the_realistic_scenarios(tmp_path: Path) -> None:
    realistic = load_scenario_file("realistic")
    noisy = load_scenario_file("realistic_noisy")
    assert isinstance(realistic, Scenario) and isinstance(noisy, Scenario)
    assert len(realistic.organizations) == 200 and sum(not o.exists for o in realistic.organizations) == 20
    assert len({(o.name, o.address) for o in realistic.organizations}) == 200
    assert Counter(p.kind for p in realistic.pedestrians) == {"honest": 28, "sloppy": 6, "cheat": 6}
    for pool in VERIFICATION:
        crowd = realistic.verification[pool]
        assert (crowd.workers, crowd.accuracy, crowd.careless, crowd.spammers) == (40, (0.6, 0.95), 3, 2)
        assert crowd.control is not None and crowd.control.share == 0.2
        assert noisy.verification[pool].accuracy == (0.55, 0.85)
    assert realistic.api is not None and realistic.api.operation_running_seconds > 0
    # cheats' "does not exist" claims are sent from kilometres away, honest workers' from within ~50 m
    far, near = [], []
    for i, org in enumerate(realistic.organizations):
        for kind in ("cheat", "honest"):
            work = plan_pedestrian_work(kind, org, realistic, random.Random(f"{i}:{kind}"), photo_prefix=org.id)
            here, there = parse_coordinates(org.coordinates), parse_coordinates(work.worker_coordinates)
            assert here is not None and there is not None
            (far if kind == "cheat" else near).append((work.verdict, distance_m(here, there)))
    assert all(d > 5 * NEAR_METERS for _, d in far) and any(v == "no_org" for v, _ in far)
    assert all(d <= 50 for _, d in near)


async def test_the_realistic_scenario_over_http(tmp_path: Path) -> None:
    headers = {"Authorization": f"OAuth {TOKEN}"}
    async with start_emulator(tmp_path / "e.sqlite", token=TOKEN, seed=2, speed=60, scenario="realistic") as emu, \
            aiohttp.ClientSession(headers=headers) as http:
        assert emu.setup_result is not None
        truth = await _get(http, f"{emu.url}/_emulator/truth")
        assert len(truth["organizations"]) == 200
        kinds = Counter((w["role"], w["kind"]) for w in truth["workers"].values())
        for pool in VERIFICATION:
            assert (kinds[(pool, "checker")], kinds[(pool, "careless")], kinds[(pool, "spammer")]) == (40, 3, 2)
        assert Counter(c["pool"] for c in truth["control"].values()) == {"visit": 30, "quality": 40, "relevance": 40}
        for pool in VERIFICATION:
            page = await _get(http, f"{emu.url}/api/v1/tasks?pool_id={emu.setup_result['pools'][pool]}&limit=1000")
            controls = [t for t in page["items"] if t.get("known_solutions")]
            assert len(controls) == len([c for c in truth["control"].values() if c["pool"] == pool])
            assert all(t["infinite_overlap"] and t["overlap"] is None for t in controls)
            image = controls[0]["input_values"].get("image") or next(
                v[0] for k, v in controls[0]["input_values"].items() if isinstance(v, list))
            async with http.get(image, headers={}) as resp:   # public, like an image link
                assert resp.status == 200 and resp.content_type == "image/jpeg"
                assert read_marker(await resp.read()) is not None
        # the scenario's "api" section: async creates show RUNNING first
        pool_id = emu.setup_result["pools"]["quality"]
        async with http.post(f"{emu.url}/api/v1/tasks", params={"async_mode": "true"}, json=[{
                "pool_id": pool_id, "overlap": 1, "input_values": {
                    "image": "http://x/1.jpg", "image_field": "imgs_menu", "pedestrian_assignment_id": "x"}}]) as resp:
            assert resp.status == 202 and (await resp.json())["status"] == "RUNNING"


# ---------------------------------------------------------------- runs over HTTP


async def _get(http: aiohttp.ClientSession, url: str) -> Any:
    async with http.get(url, headers={"Authorization": f"OAuth {TOKEN}"}) as resp:
        assert resp.status == 200, await resp.text()
        return await resp.json()


async def _call(http: aiohttp.ClientSession, method: str, url: str, body: Any = None) -> Any:
    async with http.request(method, url, json=body, headers={"Authorization": f"OAuth {TOKEN}"}) as resp:
        assert resp.status < 300, await resp.text()
        return await resp.json()


def _golden_marker(scenario: Scenario) -> PhotoMarker:
    org = scenario.organizations[0]
    return PhotoMarker("golden-1/imgs_menu/1", org.id, org.name, org.address, "menu", "good", True)


def _golden_relevance(path: Path, scenario: Scenario) -> dict[str, Any]:
    """A control task a requester makes: a sharp menu photo of the first organization (relevant),
    at ``path`` (written beforehand)."""
    org = scenario.organizations[0]
    return {"input_values": {"image": path.as_uri(), "image_field": "imgs_menu", "group": "golden-1/imgs_menu",
                             "pedestrian_assignment_id": "golden-1", "name": org.name, "address": org.address},
            "known_solutions": [{"output_values": {"result": "relevant"}, "correctness_weight": 1}],
            "infinite_overlap": True}


async def _raise_overlaps(http: aiohttp.ClientSession, url: str, client: ScriptedClient) -> list[str]:
    """Every visit task to overlap 5 (PATCH), every facade quality task to 4 (set-overlap-or-min)."""
    raised = []
    for task_id, (pool, _, name, _) in sorted(client._task_owner.items()):
        if pool == "visit":
            await _call(http, "PATCH", f"{url}/api/v1/tasks/{task_id}", {"overlap": 5, "infinite_overlap": False})
        elif pool == "quality" and name == "imgs_facade":
            await _call(http, "PATCH", f"{url}/api/v1/tasks/{task_id}/set-overlap-or-min",
                        {"overlap": 4, "infinite_overlap": False})
        else:
            continue
        raised.append(task_id)
    return raised


async def _until_answered(http: aiohttp.ClientSession, url: str, pools: dict[str, str], tasks: list[str]) -> None:
    for _ in range(600):
        left = [t for t in tasks if (await _get(http, f"{url}/api/v1/tasks/{t}"))["remaining_overlap"]]
        active = 0
        for pool in VERIFICATION:
            page = await _get(http, f"{url}/api/v1/assignments?pool_id={pools[pool]}&status=ACTIVE&limit=10")
            active += len(page["items"])
        if not left and not active:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"raised tasks not answered: {left}")


async def _collect(http: aiohttp.ClientSession, url: str, pools: dict[str, str],
                   truth: dict[str, Any]) -> dict[str, Any]:
    """Answers keyed by what does not depend on time-based ids (organization, photo identity,
    field, control task name, worker), and which control task came with which real one."""
    answers: dict[tuple[str, ...], list[str]] = {}
    bundles: dict[tuple[str, ...], list[str]] = {}
    served_known: dict[str, Any] = {}
    mixed_flags = []
    for pool in VERIFICATION:
        page = await _get(http, f"{url}/api/v1/assignments?pool_id={pools[pool]}&limit=100000")
        for a in page["items"]:
            assert a["status"] == "ACCEPTED", a
            real_key: tuple[str, ...] | None = None
            controls = []
            for task, solution in zip(a["tasks"], a["solutions"], strict=True):
                inputs = task["input_values"]
                label = solution["output_values"]["result"]
                if task.get("known_solutions"):
                    name = inputs["pedestrian_assignment_id"]
                    served_known[name] = task["known_solutions"]
                    answers.setdefault(("control", pool, name, a["user_id"]), []).append(label)
                    controls.append(name)
                    continue
                org = truth["assignments"][inputs["pedestrian_assignment_id"]]["org_id"]
                attachment = "" if pool == "visit" else Path(urlparse(inputs["image"]).path).stem
                photo = truth["photos"][attachment]["photo_id"] if attachment else ""
                field = "" if pool == "visit" else inputs["image_field"]
                real_key = (pool, org, photo, field, a["user_id"])
                answers.setdefault(real_key, []).append(label)
            assert real_key is not None, "a control task never comes alone"
            bundles.setdefault(real_key, []).extend(controls)
            mixed_flags.append((a["mixed"], bool(controls)))
    return {"answers": {k: sorted(v) for k, v in answers.items()}, "bundles": bundles,
            "served_known": served_known, "mixed": mixed_flags}


async def _noisy_run(folder: Path, doc: dict[str, Any], *, speed: float, step: float,
                     stops: tuple[int, ...] = (), restart_after_raise: bool = False) -> dict[str, Any]:
    """The noisy demo to the end with the scripted client; then overlaps are raised and the new
    answers awaited. ``stops``: restart the emulator after that many decisions;
    ``restart_after_raise``: restart it right after raising the overlaps."""
    source = folder / "noisy.json"   # written by the caller, with the requester's golden photo
    scenario = parse_scenario(doc)
    assert isinstance(scenario, Scenario)
    db = folder / "emu.sqlite"
    total = len(scenario.organizations)
    # Each phase is one life of the emulator: run to that many decisions (the last one raises
    # the overlaps), or, for "restart", only await the raised overlaps' answers.
    phases: list[int | str] = [*stops, total, *(["restart"] if restart_after_raise else [])]
    client: ScriptedClient | None = None
    raised: list[str] = []
    async with aiohttp.ClientSession() as http:
        for i, phase in enumerate(phases):
            async with start_emulator(db, token=TOKEN, seed=SEED, speed=speed, scenario=str(source),
                                      step_seconds=step) as emu:
                assert emu.setup_result is not None
                pools = emu.setup_result["pools"]
                if client is None:
                    await _call(http, "POST", f"{emu.url}/api/v1/tasks?async_mode=false",
                                [{"pool_id": pools["relevance"], **_golden_relevance(folder / "golden.jpg", scenario)}])
                    client = ScriptedClient(emu.url, token=TOKEN, setup_result=emu.setup_result, scenario=scenario,
                                            folder=folder / "photos", http=http, poll_seconds=step)
                client.connect(emu.url)
                if isinstance(phase, int):
                    await client.run(expected=phase, timeout=90)
                if phase == total:
                    raised = await _raise_overlaps(http, emu.url, client)
                if i < len(phases) - 1:
                    continue  # the emulator stops here (its step loop cancelled wherever it was)
                await _until_answered(http, emu.url, pools, raised)
                truth = await _get(http, f"{emu.url}/_emulator/truth")
                collected = await _collect(http, emu.url, pools, truth)
                state = await _get(http, f"{emu.url}/_emulator/state")
                assert state["crowd"]["errors"] == 0
                control_truth = {c["name"]: c for c in truth["control"].values()}
                return {**collected, "truth": truth, "control": control_truth, "raised": len(raised),
                        "decisions": dict(Counter(client.result.decisions.values()))}
    raise AssertionError("not reached")


@pytest.fixture(scope="module")
def noisy_runs(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from emulator.crowd.scenario import SCENARIO_DIR

    demo = json.loads((SCENARIO_DIR / "demo.json").read_text(encoding="utf-8"))
    plans: dict[str, dict[str, Any]] = {
        "fast": {"speed": 3000.0, "step": 0.05},
        "slower, restarted": {"speed": 1200.0, "step": 0.1, "stops": (4,), "restart_after_raise": True},
    }

    @functools.cache
    def get(name: str) -> dict[str, Any]:
        folder = tmp_path_factory.mktemp(name.replace(" ", "-").replace(",", ""))
        doc = noisy_doc(demo)
        (folder / "noisy.json").write_text(json.dumps(doc), encoding="utf-8")
        scenario = parse_scenario(doc)
        assert isinstance(scenario, Scenario)
        (folder / "golden.jpg").write_bytes(render_photo(_golden_marker(scenario), seed=1))
        return asyncio.run(_noisy_run(folder, doc, **plans[name]))

    return get


def _controls_per_worker(run: dict[str, Any]) -> dict[tuple[str, str], list[str]]:
    out: dict[tuple[str, str], list[str]] = {}
    for (pool, *_, worker), names in run["bundles"].items():
        out.setdefault((pool, worker), []).extend(names)
    return {k: sorted(v) for k, v in out.items() if v}


def test_control_tasks_are_served_with_their_known_solutions_and_answered(noisy_runs: Any) -> None:
    run = noisy_runs("fast")
    truth, answers = run["truth"], run["answers"]
    workers = truth["workers"]
    known = {name: c["known"] for name, c in run["control"].items()}
    known["golden-1"] = "relevant"
    served = run["served_known"]
    assert set(served) <= set(known) and "golden-1" in served      # the requester's control task too
    assert any(n.startswith("control-visit") for n in served) and any(n.startswith("control-quality") for n in served)
    for name, solutions in served.items():
        assert solutions == [{"output_values": {"result": known[name]}, "correctness_weight": 1}]
    assert all(mixed == has_control for mixed, has_control in run["mixed"])
    positive = {"visit": "yes", "quality": "ok", "relevance": "relevant"}
    negative = {"visit": "no", "quality": "bad", "relevance": "not_relevant"}
    controls = 0
    for key, labels in answers.items():
        if key[0] != "control":
            continue
        controls += 1
        _, pool, name, worker = key
        w = workers[worker]
        assert len(labels) == 1, key   # never twice to one worker
        if w.get("always_answers"):
            assert labels == [(positive if w["always_answers"] == "positive" else negative)[pool]]
        elif w["kind"] == "careless":
            assert labels != [known[name]]   # accuracy 0
        else:
            assert labels == [known[name]]   # accuracy 1 (pedestrians too: the demo's visit range is [1, 1])
    real = sum(1 for k in answers if k[0] != "control")
    assert controls > 0 and 0.08 < controls / (controls + real) < 0.45
    golden_records = [t for a in truth["answers"].values() for t in a["tasks"] if t["golden"]]
    assert len(golden_records) == controls


def test_checker_kinds_answer_as_they_should(noisy_runs: Any) -> None:
    run = noisy_runs("fast")
    truth, answers = run["truth"], run["answers"]
    workers = truth["workers"]
    by_kind: dict[str, Counter[bool]] = {}
    for a in truth["answers"].values():
        kind = workers[a["worker_id"]]["kind"]
        for t in a["tasks"]:
            by_kind.setdefault(kind, Counter())[t["given"] == t["correct"]] += 1
    assert by_kind["checker"][False] == 0 and by_kind["careless"][True] == 0
    spammers = {w for w, doc in workers.items() if doc["kind"] == "spammer"}
    assert spammers and all(doc["accuracy"] is None for w, doc in workers.items() if w in spammers)
    given = {(k[1] if k[0] == "control" else k[0], label)
             for k, labels in answers.items() if k[-1] in spammers for label in labels}
    assert given == {("visit", "yes"), ("quality", "bad")}   # the visit one is positive, the quality one negative


def test_a_raised_overlap_is_answered_by_further_checkers(noisy_runs: Any) -> None:
    run = noisy_runs("fast")
    per_task = Counter(k[:4] for k in run["answers"] if k[0] != "control")
    visits = {k: n for k, n in per_task.items() if k[0] == "visit"}
    facades = {k: n for k, n in per_task.items() if k[0] == "quality" and k[3] == "imgs_facade"}
    others = {k: n for k, n in per_task.items() if k not in visits and k not in facades}
    assert len(visits) == 12 and set(visits.values()) == {5}
    assert facades and set(facades.values()) == {4}
    assert others and set(others.values()) == {3}
    assert run["raised"] == len(visits) + len(facades)


def test_one_seed_one_outcome_across_speed_restarts_and_raised_overlaps(noisy_runs: Any) -> None:
    fast, other = noisy_runs("fast"), noisy_runs("slower, restarted")
    assert set(fast["answers"]) == set(other["answers"])
    assert {k: v for k, v in fast["answers"].items() if other["answers"][k] != v} == {}
    # Which control tasks each worker answers (and how) is fixed; which real task one rides
    # along with depends on the order in which the worker meets its tasks, i.e. on timing.
    assert _controls_per_worker(fast) == _controls_per_worker(other)
    assert fast["served_known"] == other["served_known"]
    assert fast["decisions"] == other["decisions"]
