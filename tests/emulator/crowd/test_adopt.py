"""Crowd-only mode: the scenario's crowd works in the pools ``pipeline.py setup`` made and on the tasks ``add`` sent.

The end-to-end test runs every part for real as a user would on a fresh account:
``python -m emulator --scenario demo --crowd-only --orgs-out``, ``python pipeline.py setup``,
``python pipeline.py add`` of the written TSV, the checking pools opened over HTTP, and the
daemon until every organization is decided. The other tests drive the crowd on a real store.
"""

from __future__ import annotations

import csv
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.crowd import adopt
from emulator.crowd.scenario import Scenario, ScenarioError
from emulator.crowd.simulator import Crowd, pedestrian_of_org
from emulator.store import Store
from engine.toloka_setup import SetupRequest
from pipelines import load_settings
from pipelines.pedestrian_toloka import pools, projects
from tools.harness import (
    REPO,
    TOKEN,
    edit_ini,
    objects,
    pedestrian_finished,
    run_pipeline,
    start_pipeline,
    stop,
    store_token,
    truth,
)

EXAMPLE = REPO / "toloka.example.ini"
T0 = datetime(2026, 1, 5, 9, 0, 0)


def example_config() -> Any:
    """The pedestrian configuration of toloka.example.ini (what setup makes its projects from)."""
    return load_settings(EXAMPLE).config


# --- recognising what setup made ------------------------------------------------------


def test_each_project_setup_makes_is_recognised_by_its_output_spec(demo: Scenario) -> None:
    made = {plan.key: adopt.pool_kind({"task_spec": plan.doc["task_spec"]}, demo.fields)
            for plan in projects(example_config())}
    assert made == {"pedestrian": "pedestrian", "visit": "visit", "quality": "quality", "relevance": "relevance"}


def test_a_project_of_other_labels_or_without_a_spec_is_no_kind(demo: Scenario) -> None:
    other = {"task_spec": {"output_spec": {"result": {"type": "string", "allowed_values": ["cat", "dog"]}}}}
    one_more = {"task_spec": {"output_spec": {"result": {"type": "string", "allowed_values": ["yes", "no", "maybe"]}}}}
    assert adopt.pool_kind(other, demo.fields) is None
    assert adopt.pool_kind(one_more, demo.fields) is None
    assert adopt.pool_kind({"public_name": "no spec"}, demo.fields) is None
    assert adopt.pool_kind(None, demo.fields) is None


def test_a_checking_pools_skill_is_the_one_its_quality_control_sets() -> None:
    request = SetupRequest(name="t", now=T0)
    skill_ids = {"visit": "501", "quality": "502", "relevance": "503"}
    found = {plan.key: adopt.skill_ids(plan.build("9", skill_ids)) for plan in pools(example_config(), request)}
    assert found == {"pedestrian": [], "visit": ["501"], "quality": ["502"], "relevance": ["503"]}


def test_the_organizations_tsv_has_the_pedestrian_sections_columns_and_every_organization(demo: Scenario) -> None:
    p = example_config().pedestrian
    rows = list(csv.DictReader(adopt.organizations_tsv(demo).splitlines(), delimiter="\t"))
    assert tuple(rows[0]) == (*p.org_fields, *p.extra_fields)
    assert [(r["name"], r["address"], r["coordinates"]) for r in rows] == \
        [(o.name, o.address, o.coordinates) for o in demo.organizations]
    assert rows[2]["website"] == ""  # an extra the organization lacks is an empty cell


# --- the crowd on a real store --------------------------------------------------------


def _make_pool(store: Store, plan_key: str, now: datetime, skill_ids: dict[str, str]) -> dict[str, Any]:
    """A project and pool as setup makes them (its own documents), straight into the store."""
    project = next(p for p in projects(example_config()) if p.key == plan_key)
    pool = next(p for p in pools(example_config(), SetupRequest(name="t", now=now)) if p.key == plan_key)
    project_id = store.create_project(dict(project.doc), now)["id"]
    return store.create_pool({**pool.build(project_id, skill_ids), "project_id": project_id}, now)


async def test_crowd_only_makes_nothing_then_adopts_opened_pools_and_matches_tasks_across_a_restart(
        tmp_path: Path, demo: Scenario, http: aiohttp.ClientSession, caplog: pytest.LogCaptureFixture) -> None:
    db = tmp_path / "emulator.sqlite"
    store = Store(db)
    crowd = Crowd(store, seed=2, speed=60.0, http=http)
    result = await crowd.setup(demo, T0, crowd_only=True)
    assert result["pools"] == {} and not store.projects and not store.pools and not store.tasks
    assert len(store.all_truth("org")) == len(demo.organizations)

    skill = store.create_skill("visit accuracy", T0)["id"]
    ped = _make_pool(store, "pedestrian", T0, {})
    visit = _make_pool(store, "visit", T0, {"visit": skill})
    org = demo.organizations[0]
    tasks = store.create_tasks(ped["id"], [
        {"input_values": {"name": f" {org.name.upper()} ", "address": org.address, "coordinates": org.coordinates}},
        {"input_values": {"name": "Nowhere Cafe", "address": "1 Nowhere", "coordinates": "55.7,37.6"}},
    ], T0)
    await crowd.step(T0)
    assert crowd.setup_result is not None and crowd.setup_result["pools"] == {}  # closed pools are not adopted

    store.open_pool(ped["id"], T0)
    store.open_pool(visit["id"], T0)
    caplog.set_level("INFO", logger="emulator.crowd")
    await crowd.step(T0 + timedelta(seconds=1))
    await crowd.step(T0 + timedelta(seconds=2))
    assert crowd.setup_result["pools"] == {"pedestrian": ped["id"], "visit": visit["id"]}
    assert crowd.task_org == {tasks[0]["id"]: org.id}
    assert (store.get_truth("org", org.id) or {}).get("task_id") == tasks[0]["id"]
    assert sum("Nowhere Cafe" in r.getMessage() for r in caplog.records) == 1  # logged once
    checkers = {w.user_id: w.skill for w in crowd.workers.values() if "visit" in w.checks}
    assert {d["user_id"]: float(d["exact_value"]) for d in store.user_skills.values() if d["skill_id"] == skill} \
        == checkers

    # The pedestrian dealt that organization walks there; nobody takes the other task.
    walker = pedestrian_of_org(demo, 2)[org.id]
    later = T0 + timedelta(hours=1)
    for i in range(3):
        await crowd.step(later + timedelta(seconds=i))
    assert [a["user_id"] for a in store.assignments(ped["id"])] == [walker]
    assert not store.task_assignments.get(tasks[1]["id"])

    # A restart (a new crowd on the same database) keeps the pools and finds the same match.
    store.close()
    store = Store(db)
    again = Crowd(store, seed=2, speed=60.0, http=http)
    assert await again.setup(demo, T0, crowd_only=True) == {
        "scenario": "demo", "pools": {"pedestrian": ped["id"], "visit": visit["id"]},
        "skills": {"visit": skill}, "project_ids": {"pedestrian": ped["project_id"], "visit": visit["project_id"]}}
    await again.step(later + timedelta(minutes=30))
    assert again.task_org == {tasks[0]["id"]: org.id}
    with pytest.raises(ScenarioError, match="crowd-only"):
        await Crowd(store, seed=2, speed=60.0, http=http).setup(demo, T0)  # the other mode is refused
    store.close()


async def test_a_second_pool_of_a_kind_is_left_alone(tmp_path: Path, demo: Scenario,
                                                     http: aiohttp.ClientSession) -> None:
    store = Store(tmp_path / "emulator.sqlite")
    crowd = Crowd(store, seed=2, speed=60.0, http=http)
    await crowd.setup(demo, T0, crowd_only=True)
    first, second = (_make_pool(store, "quality", T0, {}) for _ in range(2))
    store.open_pool(second["id"], T0)
    store.open_pool(first["id"], T0)
    await crowd.step(T0)
    assert crowd.setup_result is not None and crowd.setup_result["pools"] == {"quality": first["id"]}
    store.close()


# --- end to end: setup, add, daemon ---------------------------------------------------


@pytest.fixture
def crowd_only_emulator(tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """``python -m emulator --scenario demo --crowd-only --orgs-out`` in ``tmp_path``; yields (folder, URL)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--db", str(tmp_path / "emulator.sqlite"), "--token", TOKEN,
         "--scenario", "demo", "--crowd-only", "--seed", "1", "--speed", "120",
         "--orgs-out", str(tmp_path / "organizations.tsv")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout is not None
        url = None
        deadline = time.monotonic() + 60
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        assert url is not None, "the emulator did not start"
        yield tmp_path, url
    finally:
        proc.terminate()
        proc.wait(10)
        if proc.stdout is not None:
            proc.stdout.close()


def open_pool(url: str, pool_id: str) -> None:
    request = urllib.request.Request(f"{url}/api/v1/pools/{pool_id}/open", data=b"", method="POST",
                                     headers={"Authorization": f"OAuth {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status in (200, 202)


@pytest.mark.slow
def test_setup_add_and_the_daemon_get_the_crowds_work_decided(crowd_only_emulator: tuple[Path, str]) -> None:
    folder, url = crowd_only_emulator
    assert not objects(folder / "emulator.sqlite", "pool")  # the emulator made no pool
    store_token(folder, "toloka_token")
    made = run_pipeline(folder, "setup", "--config", str(folder / "toloka.ini"), "--environment", url)
    assert made.returncode == 0, made.stderr
    config = folder / "toloka.ini"
    edit_ini(config, "Pipeline", period_seconds="1")
    edit_ini(config, "Toloka", cursor_lag_seconds="1")
    added = run_pipeline(folder, "add", "--config", str(config), "--open-pool", str(folder / "organizations.tsv"))
    assert added.returncode == 0, added.stdout + added.stderr
    assert "added 12, already sent 0, refused 0" in added.stdout
    settings = load_settings(config).config
    for section in (settings.visit, settings.quality, settings.relevance):
        open_pool(url, section.pool_id)

    daemon = start_pipeline(folder)
    try:
        deadline = time.monotonic() + 150
        while time.monotonic() < deadline and not pedestrian_finished(url, settings.pedestrian.pool_id, 12):
            assert daemon.poll() is None, (folder / "pipeline.out").read_text()
            time.sleep(1)
    finally:
        assert stop(daemon) == 0
    assert pedestrian_finished(url, settings.pedestrian.pool_id, 12), (folder / "pipeline.out").read_text()

    # The crowd did the work: its pedestrians submitted every organization's visit, its checkers
    # (with the skills the scenario gives them, on the skills setup made) answered the checks.
    db = folder / "emulator.sqlite"
    work = truth(db, "assignment")
    assert sorted(a["org_id"] for a in work.values()) == [f"org-{i:02d}" for i in range(1, 13)]
    skills = {d["skill_id"] for d in objects(db, "user_skill")}
    assert skills == {settings.visit.skill_id, settings.quality.skill_id, settings.relevance.skill_id}
    assert truth(db, "answer")
    # ... and the daemon decided it: one ACCEPT or REJECT per pedestrian assignment.
    with (folder / "logs" / "decisions.tsv").open(encoding="utf-8", newline="") as handle:
        decided = {row["pedestrian_assignment_id"]: row["event"] for row in csv.DictReader(handle, delimiter="\t")
                   if row["event"] in ("ACCEPT assignment", "REJECT assignment")}
    assert set(decided) == set(work)
    assert {"ACCEPT assignment", "REJECT assignment"} <= set(decided.values())
    cheat = [a["assignment_id"] for a in work.values() if a["kind"] == "cheat" and not a["visit_ok"]]
    assert cheat and all(decided[a] == "REJECT assignment" for a in cheat)


# --- refusals ---------------------------------------------------------------------------


def emulator_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "emulator", "--port", "0", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize(("args", "says"), [
    (("--crowd-only",), "--crowd-only needs --scenario"),
    (("--scenario", "demo", "--crowd-only", "--config-out", "x.ini"), "python pipeline.py setup"),
    (("--orgs-out", "x.tsv"), "--orgs-out needs --scenario"),
])
def test_options_that_do_not_go_together_are_refused_in_one_line(tmp_path: Path, args: tuple[str, ...],
                                                                 says: str) -> None:
    done = emulator_cli("--db", str(tmp_path / "e.sqlite"), *args)
    assert done.returncode == 2 and says in done.stderr
    assert not (tmp_path / "x.tsv").exists() and not (tmp_path / "x.ini").exists()


async def test_a_store_set_up_with_its_own_pools_refuses_crowd_only_in_one_line(
        tmp_path: Path, demo: Scenario, http: aiohttp.ClientSession) -> None:
    db = tmp_path / "e.sqlite"
    store = Store(db)
    await Crowd(store, seed=0, speed=60.0, http=http).setup(demo, T0)
    store.close()
    done = emulator_cli("--db", str(db), "--scenario", "demo", "--crowd-only", "--orgs-out", str(tmp_path / "o.tsv"))
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines()[-1] == (
        "emulator: scenario setup: expected the mode this store was set up in: with its own pools, "
        "found 'crowd-only'")
    assert not (tmp_path / "o.tsv").exists()
