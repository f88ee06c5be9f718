"""``python pipeline.py setup`` against the emulator over HTTP: what it makes, what it writes, what it refuses."""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from common.ini_text import set_values
from engine.toloka_setup import SetupRequest, marker
from handlers.pedestrian import _visit_task, read_work
from handlers.settings import PedestrianConfig
from handlers.verification import photo_task
from pipelines import load_settings
from pipelines.pedestrian_toloka import setup_plan
from toloka_client.records import Assignment
from tools.harness import REPO, TOKEN, admin, admin_send, emulator, run_pipeline, set_faults, set_password, store_token

EXAMPLE = REPO / "toloka.example.ini"
POOL_SECTIONS = {"pedestrian": "PedestrianProject", "visit": "ValidationVisit", "quality": "ValidationQuality",
                 "relevance": "ValidationRelevance"}


@pytest.fixture(scope="module")
def emulator_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """An emulator without a scenario: an empty account, as a new requester has."""
    with emulator(tmp_path_factory.mktemp("account"), scenario=None) as url:
        yield url


def api(url: str, path: str) -> Any:
    return admin(url, f"/api/v1{path}")


def everything(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every project, skill and pool of the account."""
    projects = api(url, "/projects?limit=300")["items"]
    pools = [p for project in projects for p in api(url, f"/pools?project_id={project['id']}&limit=300")["items"]]
    return {"projects": projects, "skills": api(url, "/skills?limit=300")["items"], "pools": pools}


def setup(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pipeline(folder, "setup", "--config", str(folder / "toloka.ini"), *args, timeout=120)


def account(folder: Path) -> None:
    """A private keyring holding the emulator's token under the example's entry name."""
    store_token(folder, "toloka_token")


def test_setup_creates_the_projects_skills_and_pools_and_writes_a_toloka_ini_the_daemon_runs_on(
    emulator_url: str, tmp_path: Path,
) -> None:
    account(tmp_path)
    done = setup(tmp_path, "--environment", emulator_url, "--name", "first")
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("created ") == 11 and "found " not in done.stdout

    settings = load_settings(tmp_path / "toloka.ini")
    assert settings.toloka.environment == emulator_url
    made = everything(emulator_url)
    ours = {p["private_comment"]: p for p in made["pools"] if p["private_comment"].startswith(marker("first", ""))}
    assert {key: str(ours[marker("first", key)]["id"]) for key in POOL_SECTIONS} == dict(settings.pools())
    ped = ours[marker("first", "pedestrian")]
    assert ped["auto_accept_solutions"] is False and ped["auto_accept_period_day"] == 7
    for kind, section in list(POOL_SECTIONS.items())[1:]:
        pool = ours[marker("first", kind)]
        assert pool["auto_accept_solutions"] is True, kind
        rules = settings.config.__getattribute__(kind)
        assert rules.section == section
        skill = pool["quality_control"]["configs"][0]["rules"][0]["action"]["parameters"]["skill_id"]
        assert skill == rules.skill_id, "the pool sets the skill the daemon reads"
    projects = {p["private_comment"]: p for p in made["projects"]}
    quality = projects[marker("first", "quality")]["task_spec"]["output_spec"]
    assert quality == {"result": {"type": "string", "required": True, "allowed_values": ["ok", "bad"]}}

    # One tick of the daemon on the file written (its folders moved into the test's folder).
    config = tmp_path / "toloka.ini"
    config.write_text(set_values(config.read_text(), {
        "Pipeline": {"results_folder": str(tmp_path / "results"), "saves_folder": str(tmp_path / "saves"),
                     "logs_folder": str(tmp_path / "logs")},
        "FileStore": {"local_folder": str(tmp_path / "photos")}}))
    tick = run_pipeline(tmp_path, "--config", str(config), "--once")
    assert tick.returncode == 0, tick.stderr[-2000:]
    assert [line for line in tick.stdout.splitlines() if " tick: " in line and "errors 0" in line]


def test_a_second_run_finds_everything_changes_nothing_and_says_so(emulator_url: str, tmp_path: Path) -> None:
    account(tmp_path)
    assert setup(tmp_path, "--environment", emulator_url, "--name", "second").returncode == 0
    before = everything(emulator_url)
    written = (tmp_path / "toloka.ini").read_bytes()

    again = setup(tmp_path, "--force", "--name", "second")
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("found ") == 11 and "created " not in again.stdout
    assert "nothing created" in again.stdout and "unchanged" in again.stdout and "differ" not in again.stdout
    assert everything(emulator_url) == before
    assert (tmp_path / "toloka.ini").read_bytes() == written


def test_an_existing_toloka_ini_is_refused_without_force_before_anything_is_made(
    emulator_url: str, tmp_path: Path,
) -> None:
    account(tmp_path)
    (tmp_path / "toloka.ini").write_text(EXAMPLE.read_text())
    before = everything(emulator_url)
    done = setup(tmp_path, "--environment", emulator_url, "--name", "refused")
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and "--force" in done.stderr and "toloka.ini exists" in done.stderr
    assert (tmp_path / "toloka.ini").read_text() == EXAMPLE.read_text()
    assert everything(emulator_url) == before


def test_every_mistake_of_the_template_is_named_in_the_template_before_anything_is_made(
    emulator_url: str, tmp_path: Path,
) -> None:
    account(tmp_path)
    template = tmp_path / "shops.ini"
    template.write_text(EXAMPLE.read_text().replace("min_overlap = 2", "min_overlap = two", 1)
                        .replace("period_seconds = 60", "period_seconds = -1", 1))
    before = everything(emulator_url)
    done = setup(tmp_path, "--environment", emulator_url, "--template", str(template))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"pipeline: {template} [") for line in lines), lines
    assert not (tmp_path / "toloka.ini").exists() and everything(emulator_url) == before


def test_a_run_that_dies_half_way_is_finished_by_the_next_without_duplicates(
    emulator_url: str, tmp_path: Path,
) -> None:
    """The answer to the first pool creation is lost (the pool exists): the run stops; the rerun finds it."""
    account(tmp_path)
    set_faults(emulator_url, {"drop_after_write_rate": 1.0, "path_prefix": "/api/v1/pools"})
    try:
        first = setup(tmp_path, "--environment", emulator_url, "--name", "crash")
    finally:
        set_faults(emulator_url, {"drop_after_write_rate": 0.0, "path_prefix": "/api/v1"})
    assert first.returncode == 1 and first.stderr.strip().count("\n") == 0, first.stderr
    assert not (tmp_path / "toloka.ini").exists()

    second = setup(tmp_path, "--environment", emulator_url, "--name", "crash")
    assert second.returncode == 0, second.stderr
    assert "found pool pedestrian" in second.stdout and second.stdout.count("created pool") == 3
    made = everything(emulator_url)
    for kind in ("projects", "skills", "pools"):
        tags = [o.get("private_comment") for o in made[kind] if str(o.get("private_comment")).startswith(
            marker("crash", ""))]
        assert len(tags) == len(set(tags)) == (3 if kind == "skills" else 4), (kind, tags)


@pytest.mark.parametrize(("environment", "token", "code", "says"), [
    ("ftp://example.org", TOKEN, 2, "--environment: expected PRODUCTION, SANDBOX or an http(s):// URL"),
    (None, "not-the-token", 2, "[Secrets] toloka_token"),
    ("http://127.0.0.1:9", TOKEN, 1, "http://127.0.0.1:9"),
])
def test_a_bad_environment_or_token_gives_one_clear_line(
    emulator_url: str, tmp_path: Path, environment: str | None, token: str, code: int, says: str,
) -> None:
    set_password(tmp_path, "toloka_token", token)
    before = everything(emulator_url)
    done = setup(tmp_path, "--environment", environment or emulator_url)
    assert done.returncode == code, done.stderr
    assert done.stderr.strip().count("\n") == 0 and says in done.stderr and "Traceback" not in done.stderr
    assert token not in done.stderr + done.stdout or token == TOKEN
    assert not (tmp_path / "toloka.ini").exists()
    assert everything(emulator_url) == before


def test_a_missing_token_names_the_keyring_entry(tmp_path: Path, emulator_url: str) -> None:
    done = setup(tmp_path, "--environment", emulator_url)
    assert done.returncode == 2 and "'toloka_token'" in done.stderr and done.stderr.strip().count("\n") == 0


CONTROL = (
    "pool\tanswer\timage\timage_field\tphoto_id\tgroup\tpedestrian_assignment_id\tname\taddress\n"
    "quality\tok\thttps://example.org/sharp.jpg\timgs_facade\timgs_facade/0\tc1/main\tcontrol-1\tCafe\tMain St 1\n"
    "quality\tbad\thttps://example.org/blur.jpg\timgs_facade\timgs_facade/0\tc2/main\tcontrol-2\t\t\n"
    "relevance\tnot_relevant\thttps://example.org/cat.jpg\timgs_menu\timgs_menu/0\tc3/imgs_menu\tcontrol-3\tCafe\t\n"
)


def golden(url: str, pool_id: str) -> list[dict[str, Any]]:
    return [t for t in api(url, f"/tasks?pool_id={pool_id}&limit=1000")["items"] if t.get("known_solutions")]


def test_control_tasks_go_into_their_pools_once_and_every_suite_there_mixes_one_in(
    emulator_url: str, tmp_path: Path,
) -> None:
    account(tmp_path)
    (tmp_path / "control.tsv").write_text(CONTROL)
    done = setup(tmp_path, "--environment", emulator_url, "--name", "controls", "--control",
                 str(tmp_path / "control.tsv"))
    assert done.returncode == 0, done.stderr
    pools = load_settings(tmp_path / "toloka.ini").pools()
    quality = golden(emulator_url, pools["quality"])
    assert sorted(t["known_solutions"][0]["output_values"]["result"] for t in quality) == ["bad", "ok"]
    assert {t["input_values"]["image"] for t in quality} == {"https://example.org/sharp.jpg",
                                                             "https://example.org/blur.jpg"}
    assert all(t["infinite_overlap"] for t in quality)
    assert len(golden(emulator_url, pools["relevance"])) == 1 and golden(emulator_url, pools["visit"]) == []
    mixers = {kind: api(emulator_url, f"/pools/{pools[kind]}")["mixer_config"]["golden_tasks_count"]
              for kind in ("visit", "quality", "relevance")}
    assert mixers == {"visit": 0, "quality": 1, "relevance": 1}

    again = setup(tmp_path, "--force", "--name", "controls", "--control", str(tmp_path / "control.tsv"))
    assert again.returncode == 0, again.stderr
    assert "found control tasks quality" in again.stdout
    assert not [line for line in again.stdout.splitlines() if line.startswith("created")]
    assert len(golden(emulator_url, pools["quality"])) == 2

    # The quality pool archived and made anew: its control tasks go into the new pool, not into the old
    # pool's finished operation (one operation id per pool).
    admin_send(emulator_url, "POST", f"/api/v1/pools/{pools['quality']}/archive", {})
    anew = setup(tmp_path, "--force", "--name", "controls", "--control", str(tmp_path / "control.tsv"))
    assert anew.returncode == 0, anew.stderr
    new_quality = load_settings(tmp_path / "toloka.ini").pools()["quality"]
    assert new_quality != pools["quality"]
    assert len(golden(emulator_url, new_quality)) == 2


def test_a_pool_made_earlier_is_not_changed_and_what_differs_from_the_plan_is_named(
    emulator_url: str, tmp_path: Path,
) -> None:
    account(tmp_path)
    assert setup(tmp_path, "--environment", emulator_url, "--name", "later").returncode == 0
    pools = load_settings(tmp_path / "toloka.ini").pools()
    (tmp_path / "control.tsv").write_text(CONTROL)
    again = setup(tmp_path, "--force", "--name", "later", "--control", str(tmp_path / "control.tsv"))
    assert again.returncode == 0, again.stderr
    lines = {line.split(":")[0]: line for line in again.stdout.splitlines()}
    assert "its mixer_config differ" in lines["found pool quality"], again.stdout
    assert "differ" not in lines["found pool visit"] and "differ" not in lines["found pool pedestrian"]
    assert api(emulator_url, f"/pools/{pools['quality']}")["mixer_config"]["golden_tasks_count"] == 0
    assert len(golden(emulator_url, pools["quality"])) == 2


def test_a_project_whose_spec_no_longer_fits_the_file_is_named_not_changed(emulator_url: str, tmp_path: Path) -> None:
    account(tmp_path)
    assert setup(tmp_path, "--environment", emulator_url, "--name", "relabelled").returncode == 0
    config = tmp_path / "toloka.ini"
    config.write_text(set_values(config.read_text(), {"ValidationQuality": {"accept_label": "good"}}))
    again = setup(tmp_path, "--force", "--name", "relabelled")
    assert again.returncode == 0, again.stderr
    lines = {line.split(":")[0]: line for line in again.stdout.splitlines()}
    assert "its output_spec differ" in lines["found project quality"], again.stdout
    assert "differ" not in lines["found project relevance"] + lines["found project pedestrian"]
    assert not [line for line in again.stdout.splitlines() if line.startswith("created")]


def test_a_control_file_with_mistakes_is_refused_line_by_line_before_anything_is_made(
    emulator_url: str, tmp_path: Path,
) -> None:
    account(tmp_path)
    bad = CONTROL.replace("quality\tbad", "quality\tmaybe").replace("relevance\t", "pedestrian\t")
    bad += "quality\tok\t\timgs_facade\timgs_facade/0\tc4/main\tcontrol-4\t\t\n"
    (tmp_path / "control.tsv").write_text(bad)
    before = everything(emulator_url)
    done = setup(tmp_path, "--environment", emulator_url, "--control", str(tmp_path / "control.tsv"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert [re.findall(r"control\.tsv line (\d+)", line) for line in lines] == [["3"], ["4"], ["5"]], lines
    assert "'maybe' is not one of ok, bad" in lines[0] and "'pedestrian' takes no control tasks" in lines[1]
    assert "required inputs are empty: image" in lines[2]
    assert everything(emulator_url) == before and not (tmp_path / "toloka.ini").exists()


# --- the specs match what the handlers send and read -----------------------------------------


def _config() -> PedestrianConfig:
    config: PedestrianConfig = load_settings(EXAMPLE).config
    return config


def _plan_docs() -> dict[str, dict[str, Any]]:
    request = SetupRequest(name="spec", now=datetime(2026, 1, 1), rewards={"visit": Decimal("0.03")})
    plan = setup_plan(_config(), request)
    return {p.key: dict(p.doc) for p in plan.projects}


def test_the_pedestrian_output_spec_feeds_the_visit_task_the_visit_input_spec_expects() -> None:
    """A pedestrian answer that fills every output field is read by the handler, and the visit task it
    makes carries exactly the visit project's inputs (every required one among them)."""
    config = _config()
    docs = _plan_docs()
    p = config.pedestrian
    ped_in = docs["pedestrian"]["task_spec"]["input_spec"]
    ped_out = docs["pedestrian"]["task_spec"]["output_spec"]
    output: dict[str, Any] = {p.verdict_field: p.verdict_ok, p.worker_coordinates_field: "55.75,37.61",
                              p.comment_field: "open"}
    output.update({name: [f"att-{name}"] for name in (*p.main_fields, *p.bonus_fields)})
    output.update(dict.fromkeys(p.bonus_flags, p.bonus_flag_yes))
    assert set(output) == set(ped_out)
    task_input = {name: "55.7,37.6" if name == p.org_coordinates_field else f"{name} value" for name in ped_in}
    assignment = Assignment.from_json({
        "id": "a1", "pool_id": p.pool_id, "user_id": "w1", "status": "SUBMITTED", "submitted": "2026-01-01T10:00:00",
        "tasks": [{"id": "t1", "pool_id": p.pool_id, "input_values": task_input, "overlap": 1}],
        "solutions": [{"output_values": output}]})
    work = read_work(assignment, p)
    sent = _visit_task(work, p, config.visit).tasks[0].input_values
    visit_in = docs["visit"]["task_spec"]["input_spec"]
    assert set(sent) == set(visit_in)
    assert {k for k, spec in visit_in.items() if spec["required"]} <= {k for k, v in sent.items() if v not in ("", [])}

    group = work.groups["main"]
    photo = photo_task(work, group, group.photos[0], 2).input_values
    for kind in ("quality", "relevance"):
        spec = docs[kind]["task_spec"]["input_spec"]
        assert set(photo) == set(spec), kind
        assert all(photo[k] not in ("", None) for k, s in spec.items() if s["required"]), kind


def test_the_checking_projects_answer_with_the_labels_the_daemon_reads() -> None:
    config = _config()
    docs = _plan_docs()
    for kind in ("visit", "quality", "relevance"):
        rules = getattr(config, kind)
        out = docs[kind]["task_spec"]["output_spec"]
        assert out == {rules.answer_field: {"type": "string", "required": True,
                                            "allowed_values": [rules.accept_label, rules.reject_label]}}
        view = json.loads(docs[kind]["task_spec"]["view_spec"]["config"])
        answer = [item for item in view["view"]["items"] if item.get("data", {}).get("path") == rules.answer_field]
        assert [o["value"] for o in answer[0]["options"]] == [rules.accept_label, rules.reject_label]


def test_toloka_kit_reads_every_project_pool_and_interface_setup_sends() -> None:
    """The reference client parses what setup sends: field types, pool settings, Template Builder components."""
    toloka = pytest.importorskip("toloka.client")
    request = SetupRequest(name="kit", now=datetime(2026, 1, 1),
                           control_pools=frozenset({"visit", "quality", "relevance"}))
    plan = setup_plan(_config(), request)
    skills = {s.key: "7" for s in plan.skills}
    for project in plan.projects:
        parsed = toloka.Project.structure({**project.doc, "private_comment": "x"})
        assert set(parsed.task_spec.input_spec) == set(project.doc["task_spec"]["input_spec"])
        view = parsed.task_spec.view_spec
        assert type(view).__name__ == "TemplateBuilderViewSpec", project.key
        assert view.config.view is not None
    for pool in plan.pools:
        doc = {**pool.build("1", skills), "project_id": "1"}
        parsed_pool = toloka.Pool.structure(doc)
        assert parsed_pool.auto_accept_solutions is (pool.key != "pedestrian")
        if pool.key != "pedestrian":
            assert parsed_pool.mixer_config.golden_tasks_count == 1


def test_the_setup_page_names_every_field_and_pool_setting_setup_makes() -> None:
    """docs/toloka-setup.md is for people who make them by hand: nothing setup sends may be missing from it."""
    text = (REPO / "docs" / "toloka-setup.md").read_text()
    plan = setup_plan(_config(), SetupRequest(name="docs", now=datetime(2026, 1, 1)))
    missing = []
    for project in plan.projects:
        spec = project.doc["task_spec"]
        missing += [f"{project.key}: {name}" for name in (*spec["input_spec"], *spec["output_spec"])
                    if f"`{name}`" not in text and f"`{name}`," not in text]
    for pool in plan.pools:
        doc = pool.build("1", {s.key: "1" for s in plan.skills})
        keys = [*doc, *doc.get("mixer_config", {}), *doc.get("defaults", {})]
        missing += [f"pool {pool.key}: {key}" for key in keys if key not in text]
    assert missing == []
