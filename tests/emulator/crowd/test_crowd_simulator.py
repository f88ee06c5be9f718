"""The Crowd over a real store: setup, pedestrians' work, checkers opening real URLs, restarts."""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from emulator.crowd.allocation import canonical, rank_checkers
from emulator.crowd.behaviour import photo_urls
from emulator.crowd.photos import PhotoMarker, read_marker, render_photo
from emulator.crowd.scenario import Scenario, ScenarioError, parse_scenario
from emulator.crowd.simulator import Crowd
from emulator.store import Store

T0 = datetime(2026, 5, 1, 12, 0, 0)
SPEED = 3000.0  # a simulated minute per 20 real milliseconds


async def _run(crowd: Crowd, now: datetime, steps: int, dt: float = 0.2) -> datetime:
    for _ in range(steps):
        now += timedelta(seconds=dt)
        await crowd.step(now)
    return now


async def _until_submitted(crowd: Crowd, store: Store, now: datetime, n: int) -> datetime:
    pool = crowd.setup_result["pools"]["pedestrian"]
    for _ in range(400):
        if len(store.assignments(pool, "SUBMITTED")) >= n:
            return now
        now = await _run(crowd, now, 1)
    raise AssertionError("pedestrians did not submit")


async def test_setup_creates_open_pools_tasks_skills_and_truth(store: Store, demo: Scenario,
                                                               http: aiohttp.ClientSession) -> None:
    crowd = Crowd(store, seed=1, speed=SPEED, http=http)
    result = await crowd.setup(demo, T0)
    pools = result["pools"]
    assert set(pools) == {"pedestrian", "visit", "quality", "relevance"}
    assert set(result["skills"]) == {"visit", "quality", "relevance"}
    for kind, pool_id in pools.items():
        pool = store.get_pool(pool_id)
        assert pool["status"] == "OPEN"
        assert pool["auto_accept_solutions"] is (kind != "pedestrian")
        assert str(pool["reward_per_assignment"]) == str(demo.pools[kind].reward)
    assert store.get_pool(pools["pedestrian"])["auto_accept_period_day"] == 7
    assert {s["name"] for s in store.skills.values()} == {"visit", "quality", "relevance"}
    tasks = [store.get_task(t) for t in store.pool_tasks[pools["pedestrian"]]]
    assert [t["input_values"]["name"] for t in tasks] == [o.name for o in demo.organizations]
    assert tasks[0]["input_values"]["segment"] == "cafe" and tasks[0]["overlap"] == 1
    truth = crowd.truth()
    assert len(truth["organizations"]) == 12 and sum(not o["exists"] for o in truth["organizations"].values()) == 2
    workers = truth["workers"]
    assert len(workers) == 5 + 27
    checkers = [w for w in workers.values() if w["role"] == "visit"]
    assert all(0.85 <= float(w["accuracy"]) <= 0.99 for w in checkers)
    assert len({w["accuracy"] for w in checkers}) > 1  # drawn, not constant
    # every checker (and every pedestrian, who also checks visits) has a skill in its pool
    visit_skill = result["skills"]["visit"]
    skilled = {u["user_id"] for u in store.user_skills.values() if u["skill_id"] == visit_skill}
    assert skilled == {w["user_id"] for w in workers.values() if "visit" in w["checks"]}


async def test_setup_is_idempotent_and_refuses_another_scenario(store: Store, demo: Scenario,
                                                                demo_doc: dict[str, Any],
                                                                http: aiohttp.ClientSession) -> None:
    crowd = Crowd(store, seed=1, speed=SPEED, http=http)
    first = await crowd.setup(demo, T0)
    assert await crowd.setup(demo, T0 + timedelta(seconds=5)) == first
    assert await Crowd(store, seed=2, speed=SPEED, http=http).setup(demo, T0) == first
    assert len(store.pools) == 4 and len(store.tasks) == 12
    demo_doc["name"] = "other"
    with pytest.raises(ScenarioError, match="already holds"):
        await crowd.setup(parse_scenario(demo_doc), T0)


async def test_pedestrians_submit_marked_photos_and_the_truth_describes_them(store: Store, demo: Scenario,
                                                                            http: aiohttp.ClientSession) -> None:
    crowd = Crowd(store, seed=4, speed=SPEED, http=http)
    result = await crowd.setup(demo, T0)
    await _until_submitted(crowd, store, T0, 12)
    truth = crowd.truth()
    subs = store.assignments(result["pools"]["pedestrian"], "SUBMITTED")
    assert {a["id"] for a in subs} == set(truth["assignments"])
    f = demo.fields
    for a in subs:
        t = truth["assignments"][a["id"]]
        out = a["solutions"][0]["output_values"]
        assert out[f.verdict_field] in ("ok", "no_org")
        for name in f.photo_fields:
            ids = photo_urls(out.get(name))
            assert ids == [p["attachment_id"] for p in t["photos"].get(name, [])]
            for attachment_id in ids:
                meta = store.get_attachment(attachment_id)
                assert meta["media_type"] == "image/jpeg" and meta["details"]["assignment_id"] == a["id"]
                marker = read_marker(store.attachment_bytes(attachment_id))
                assert marker is not None and marker.photo_id == truth["photos"][attachment_id]["photo_id"]
        assert t["worker_id"] == a["user_id"] and t["expected"] in ("accept", "reject", "no_org")
    assert crowd.state()["errors"] == 0


async def test_a_restarted_crowd_resumes_a_walk_without_losing_or_doubling_work(
        tmp_path: Path, demo: Scenario, http: aiohttp.ClientSession) -> None:
    db = tmp_path / "emu.sqlite"
    store = Store(db)
    crowd = Crowd(store, seed=5, speed=60.0, http=http)  # slow: walks take 5-10 real seconds
    result = await crowd.setup(demo, T0)
    now = await _run(crowd, T0, 15)  # 3 s: everybody has started walking, nobody arrived
    walking = store.assignments(result["pools"]["pedestrian"], "ACTIVE")
    assert walking and not store.assignments(result["pools"]["pedestrian"], "SUBMITTED")
    store.close()

    store = Store(db)
    try:
        again = Crowd(store, seed=999, speed=60.0, http=http)  # seed and scenario come back from the store
        assert again.scenario is not None and again.seed == 5
        assert await again.setup(demo, now) == result
        now += timedelta(seconds=12)
        await again.step(now)  # every walk is over now
        submitted = store.assignments(result["pools"]["pedestrian"], "SUBMITTED")
        assert {a["id"] for a in submitted} == {a["id"] for a in walking}  # one state change per step
        truth = again.truth()
        assert set(truth["assignments"]) == {a["id"] for a in submitted}
        assert len(store.attachments) == len(truth["photos"])  # nothing uploaded twice
    finally:
        store.close()


async def _photo_server(files: dict[str, bytes]) -> tuple[web.AppRunner, str]:
    async def serve(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name.startswith("chunked-") and name[8:] in files:
            # served in 1 KB chunks without a Content-Length
            resp = web.StreamResponse(headers={"Content-Type": "image/jpeg"})
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            data = files[name[8:]]
            for i in range(0, len(data), 1024):
                await resp.write(data[i:i + 1024])
            await resp.write_eof()
            return resp
        if name not in files:
            raise web.HTTPNotFound()
        return web.Response(body=files[name], content_type="image/jpeg")

    app = web.Application()
    app.router.add_get("/photos/{name}", serve)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    host, port = runner.addresses[0][:2]
    return runner, f"http://{host}:{port}"


async def test_checkers_open_http_and_file_urls_and_dead_links_get_the_negative_label(
        tmp_path: Path, store: Store, demo_doc: dict[str, Any], http: aiohttp.ClientSession) -> None:
    for pool in ("visit", "quality", "relevance"):
        demo_doc["verification"][pool]["accuracy"] = [1.0, 1.0]
    scenario = parse_scenario(demo_doc)
    crowd = Crowd(store, seed=6, speed=SPEED, http=http)
    result = await crowd.setup(scenario, T0)
    org = scenario.organizations[0]
    good = render_photo(PhotoMarker("x/1", org.id, org.name, org.address, "facade", "good", True))
    dark = render_photo(PhotoMarker("x/2", org.id, org.name, org.address, "facade", "dark", True))
    local = tmp_path / "good photo.jpg"
    local.write_bytes(good)
    runner, base = await _photo_server({"good.jpg": good, "dark.jpg": dark})
    try:
        common = {"image_field": "imgs_facade", "group": "a/main", "pedestrian_assignment_id": "a",
                  "name": org.name, "address": org.address}
        images = {f"{base}/photos/good.jpg": "ok", f"{base}/photos/dark.jpg": "bad", local.as_uri(): "ok",
                  f"{base}/photos/chunked-good.jpg": "ok", f"{base}/photos/chunked-dark.jpg": "bad",
                  f"{base}/photos/missing.jpg": "bad", (tmp_path / "nope.jpg").as_uri(): "bad",
                  "ftp://example.invalid/x.jpg": "bad", "not a url": "bad"}
        tasks = store.create_tasks(result["pools"]["quality"],
                                   [{"input_values": {"image": url, **common}, "overlap": 3} for url in images], T0)
        now = T0
        for _ in range(100):
            now = await _run(crowd, now, 1)
            if all(t["remaining_overlap"] == 0 for t in tasks) and not store.assignments(
                    result["pools"]["quality"], "ACTIVE"):
                break
        answers: dict[str, list[str]] = {}
        for a in store.assignments(result["pools"]["quality"], "ACCEPTED"):
            for task, solution in zip(a["tasks"], a["solutions"]):
                answers.setdefault(task["input_values"]["image"], []).append(solution["output_values"]["result"])
        assert answers == {url: [label] * 3 for url, label in images.items()}
        assert crowd.state()["errors"] == 0
    finally:
        await runner.cleanup()


async def test_golden_tasks_and_a_broken_task_do_not_stop_the_crowd(store: Store, demo_doc: dict[str, Any],
                                                                    http: aiohttp.ClientSession) -> None:
    for pool in ("visit", "quality", "relevance"):
        demo_doc["verification"][pool]["accuracy"] = [1.0, 1.0]
    demo_doc["pace"]["tasks_per_assignment"] = [1, 1]
    scenario = parse_scenario(demo_doc)
    crowd = Crowd(store, seed=7, speed=SPEED, http=http)
    result = await crowd.setup(scenario, T0)
    pool = result["pools"]["relevance"]
    golden = {"input_values": {"image": "file:///nowhere.jpg", "image_field": "imgs_menu", "name": "n"},
              "known_solutions": [{"output_values": {"result": "relevant"}, "correctness_weight": 1}], "overlap": 2}
    broken = {"input_values": "this is not an object", "overlap": 1}
    fine = {"input_values": {"image": "file:///nowhere.jpg", "image_field": "imgs_menu", "name": "n"}, "overlap": 1}
    store.create_tasks(pool, [broken, golden, fine], T0)
    await _run(crowd, T0, 30)
    answers = {}
    for a in store.assignments(pool, "ACCEPTED"):
        for task, solution in zip(a["tasks"], a["solutions"]):
            answers.setdefault(task["id"], []).append(solution["output_values"]["result"])
    by_kind = {store.get_task(t)["input_values"].get("image_field") if isinstance(
        store.get_task(t)["input_values"], dict) else "broken": v for t, v in answers.items()}
    assert len(answers) == 2  # the broken task was skipped, not answered
    assert sorted(v for vs in answers.values() for v in vs) == ["not_relevant", "relevant", "relevant"]
    assert "broken" not in by_kind
    assert crowd.state()["errors"] >= 1  # logged and counted, never raised


async def test_a_crash_between_upload_and_submit_submits_exactly_what_the_truth_says(
        tmp_path: Path, demo: Scenario, http: aiohttp.ClientSession) -> None:
    db = tmp_path / "emu.sqlite"
    store = Store(db)
    crowd = Crowd(store, seed=8, speed=60.0, http=http)
    result = await crowd.setup(demo, T0)
    now = await _run(crowd, T0, 15)
    walking = store.assignments(result["pools"]["pedestrian"], "ACTIVE")[0]
    worker = crowd.workers[walking["user_id"]]
    # the first half of finishing a walk: photos uploaded and the truth written, then "kill -9"
    truth = await crowd._upload(worker, walking["tasks"][0]["id"], walking["id"], now)
    uploaded = len(store.attachments)
    store.close()

    store = Store(db)
    try:
        again = Crowd(store, seed=8, speed=60.0, http=http)
        await again.step(now + timedelta(seconds=12))
        doc = store.get_assignment(walking["id"])
        assert doc["status"] == "SUBMITTED"
        assert doc["solutions"][0]["output_values"] == truth["output_values"]
        mine = [a for a in store.attachments.values() if a["details"]["assignment_id"] == walking["id"]]
        assert len(mine) == sum(len(v) for v in truth["photos"].values())  # not uploaded a second time
        assert len(store.attachments) >= uploaded
    finally:
        store.close()


def _answerers(store: Store, pool_id: str) -> dict[str, list[str]]:
    """task id -> user ids who submitted an answer to it."""
    out: dict[str, list[str]] = {}
    for a in store.assignments(pool_id):
        if a["status"] in ("SUBMITTED", "ACCEPTED"):
            for task in a["tasks"]:
                out.setdefault(task["id"], []).append(a["user_id"])
    return {k: sorted(v) for k, v in out.items()}


async def test_exactly_the_chosen_checkers_answer_whatever_the_link_and_unavailable_for_holds(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    crowd = Crowd(store, seed=9, speed=SPEED, http=http)
    result = await crowd.setup(demo, T0)
    pool_id = result["pools"]["quality"]
    org = demo.organizations[0]
    photo = render_photo(PhotoMarker(f"{org.id}/imgs_facade/1", org.id, org.name, org.address, "facade", "good", True))
    (tmp_path / "one.jpg").write_bytes(photo)
    (tmp_path / "two.jpg").write_bytes(photo)  # the same photo behind another link
    common = {"image_field": "imgs_facade", "group": "a/main", "pedestrian_assignment_id": "a",
              "name": org.name, "address": org.address}
    checkers = sorted(w.user_id for w in crowd.workers.values() if w.role == "quality")
    ranking = rank_checkers(9, canonical(["quality", f"{org.id}/imgs_facade/1", "imgs_facade"]), checkers)
    barred = ranking[:2]
    plain, elsewhere, limited = store.create_tasks(pool_id, [
        {"input_values": {"image": (tmp_path / "one.jpg").as_uri(), **common}, "overlap": 3},
        {"input_values": {"image": (tmp_path / "two.jpg").as_uri(), **common}, "overlap": 3},
        {"input_values": {"image": (tmp_path / "one.jpg").as_uri(), **common}, "overlap": 3,
         "unavailable_for": barred},
    ], T0)
    now = T0
    for _ in range(200):
        now = await _run(crowd, now, 1)
        if all(store.get_task(t["id"])["remaining_overlap"] == 0 for t in (plain, elsewhere, limited)) \
                and not store.assignments(pool_id, "ACTIVE"):
            break
    answered = _answerers(store, pool_id)
    assert answered[plain["id"]] == answered[elsewhere["id"]] == sorted(ranking[:3])
    assert answered[limited["id"]] == sorted(ranking[2:5]) and not set(barred) & set(answered[limited["id"]])
    assert crowd.state()["errors"] == 0


async def test_a_check_taken_just_before_a_kill_is_finished_by_its_checker_after_the_restart(
        tmp_path: Path, demo: Scenario, http: aiohttp.ClientSession) -> None:
    db = tmp_path / "emu.sqlite"
    store = Store(db)
    crowd = Crowd(store, seed=10, speed=SPEED, http=http)
    result = await crowd.setup(demo, T0)
    pool_id = result["pools"]["relevance"]
    org = demo.organizations[1]
    image = tmp_path / "menu.jpg"
    image.write_bytes(render_photo(PhotoMarker(f"{org.id}/imgs_menu/1", org.id, org.name, org.address, "menu",
                                               "good", True)))
    (task,) = store.create_tasks(pool_id, [{"input_values": {
        "image": image.as_uri(), "image_field": "imgs_menu", "group": "a/imgs_menu",
        "pedestrian_assignment_id": "a", "name": org.name, "address": org.address}, "overlap": 3}], T0)
    await crowd._see_new_tasks(T0)  # the crowd looks at the task ...
    chosen = crowd._chosen(store.get_task(task["id"]))
    # ... and its first checker takes it, then the emulator dies before the checker's state is saved
    taken = store.create_assignment(pool_id, chosen[0], [task["id"]], T0)
    store.close()

    store = Store(db)
    try:
        again = Crowd(store, seed=10, speed=SPEED, http=http)
        now = T0
        for _ in range(100):
            now = await _run(again, now, 1)
            if store.get_task(task["id"])["remaining_overlap"] == 0 and not store.assignments(pool_id, "ACTIVE"):
                break
        assert store.get_assignment(taken["id"])["status"] == "ACCEPTED"
        assert _answerers(store, pool_id) == {task["id"]: sorted(chosen)}
        answers = [s["output_values"]["result"] for a in store.assignments(pool_id) for s in a["solutions"]]
        assert len(answers) == 3 and again.state()["errors"] == 0
    finally:
        store.close()
