"""``pipeline.py reverse``: a real rejected assignment of a short real run, accepted after all.

The daemon runs the demo scenario against the emulator (child processes, a
private keyring) until every pedestrian assignment is decided and is stopped;
then the command is run as a person runs it and checked against the emulator's
records and the result files.
"""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from engine.actions import AppendRows, SetStatus
from handlers import flow
from handlers.pedestrian import read_work
from handlers.reversal import Operator, plan
from pipelines import load_settings
from toloka_client.records import Assignment
from tools.harness import (
    admin,
    objects,
    pedestrian_finished,
    pipeline_process,
    run_pipeline,
    served_emulator,
    set_faults,
    start_pipeline,
    stop,
)

ORGANIZATIONS = 12  # the demo scenario


def rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A finished demo run (seed 3: rejected work with bonus photos, and a rejected 'does not exist')."""
    folder = tmp_path_factory.mktemp("reverse")
    with served_emulator(folder, seed=3, speed=240) as url:
        settings = load_settings(folder / "toloka.ini")
        pools = dict(settings.pools())
        daemon = start_pipeline(folder)
        deadline = time.monotonic() + 150
        while not pedestrian_finished(url, pools["pedestrian"], ORGANIZATIONS):
            assert daemon.poll() is None and time.monotonic() < deadline, (folder / "pipeline.out").read_text()[-2000:]
            time.sleep(0.5)
        time.sleep(2)  # the rows of the last decisions
        assert stop(daemon) == 0
        rejected = {}
        for doc in objects(folder / "emulator.sqlite", "assignment"):
            if doc["pool_id"] == pools["pedestrian"] and doc["status"] == "REJECTED":
                rejected[doc["id"]] = read_work(Assignment.from_json(doc), settings.config.pedestrian)
        yield {"folder": folder, "url": url, "settings": settings, "pools": pools, "rejected": rejected}


def reverse(run: dict[str, Any], *args: str, config: Path | None = None) -> subprocess.CompletedProcess[str]:
    return run_pipeline(run["folder"], "reverse", "--config", str(config or run["folder"] / "toloka.ini"), *args)


def status(run: dict[str, Any], assignment: str) -> str:
    return str(admin(run["url"], f"/api/v1/assignments/{assignment}")["status"])


def bonuses(run: dict[str, Any], assignment: str) -> list[dict[str, Any]]:
    return [b for b in objects(run["folder"] / "emulator.sqlite", "bonus") if b["assignment_id"] == assignment]


def with_bonus(run: dict[str, Any], n: int) -> str:
    """The n-th rejected 'ok' work with bonus photos."""
    found = [aid for aid, work in sorted(run["rejected"].items()) if work.verdict == "ok" and len(work.groups) > 1]
    return found[n]


def test_reverse_accepts_pays_the_bonus_once_and_writes_the_rows(run: dict[str, Any]) -> None:
    folder, aid = run["folder"], with_bonus(run, 0)
    work = run["rejected"][aid]
    assert status(run, aid) == "REJECTED" and not bonuses(run, aid)
    result = reverse(run, aid, "--accept", "--by", "olga", "--reason", "the photos are fine")
    assert result.returncode == 0, result.stderr
    assert status(run, aid) == "ACCEPTED"
    paid = bonuses(run, aid)
    bonus_fields = [name for name in work.groups if name != "main"]
    per_field = run["settings"].config.pedestrian.bonus_per_field
    assert len(paid) == 1 and Decimal(str(paid[0]["amount"])) == per_field * len(bonus_fields)
    main = [r for r in rows(folder / "results" / "main_tasks.tsv") if r["pedestrian_assignment_id"] == aid]
    assert len(main) == 1
    photos = 0
    for name in run["settings"].config.pedestrian.main_fields:
        links, keys = json.loads(main[0][name]), json.loads(main[0][f"{name}_keys"])
        assert len(links) == len(keys)
        for link, key in zip(links, keys, strict=True):
            assert key.startswith(f"main/{aid}/") and unquote(urlparse(link).path).endswith(key)
            assert Path(unquote(urlparse(link).path)).read_bytes()[:3] == b"\xff\xd8\xff"
            photos += 1
    assert photos == len(work.groups["main"].photos)
    bonus = [r for r in rows(folder / "results" / "bonus_tasks.tsv") if r["pedestrian_assignment_id"] == aid]
    assert sorted(r["bonus_field"] for r in bonus) == sorted(bonus_fields)
    decided = [r for r in rows(folder / "logs" / "decisions.tsv") if r["pedestrian_assignment_id"] == aid]
    reversed_rows = [r for r in decided if r["event"] == flow.REVERSED]
    assert len(reversed_rows) == 1 and "olga" in reversed_rows[0]["comment"]
    assert "the photos are fine" in reversed_rows[0]["comment"]
    finals = [r for r in decided if r["event"] in flow.FINAL]
    assert finals[-1]["event"] == flow.ACCEPT and finals[-1]["handler"] == "relevance"
    assert [r["event"] for r in decided].count(flow.PAY_BONUS) == 1

    files = [folder / "results" / "main_tasks.tsv", folder / "results" / "bonus_tasks.tsv",
             folder / "logs" / "decisions.tsv"]
    before = [path.read_bytes() for path in files]
    again = reverse(run, aid, "--accept")
    assert again.returncode == 1 and "already accepted" in again.stderr and len(again.stderr.splitlines()) == 1
    assert len(bonuses(run, aid)) == 1
    assert before == [path.read_bytes() for path in files]


def test_reversing_work_that_said_the_organization_does_not_exist_writes_its_no_org_row(run: dict[str, Any]) -> None:
    folder = run["folder"]
    aid = next(a for a, work in sorted(run["rejected"].items()) if work.verdict == "no_org")
    result = reverse(run, aid, "--accept")
    assert result.returncode == 0, result.stderr
    assert status(run, aid) == "ACCEPTED" and not bonuses(run, aid)
    assert [r["pedestrian_assignment_id"] for r in rows(folder / "results" / "no_org.tsv")].count(aid) == 1
    assert aid not in {r["pedestrian_assignment_id"] for r in rows(folder / "results" / "main_tasks.tsv")}
    finals = [r for r in rows(folder / "logs" / "decisions.tsv")
              if r["pedestrian_assignment_id"] == aid and r["event"] in flow.FINAL]
    assert finals[-1]["event"] == flow.ACCEPT and finals[-1]["handler"] == "visit"


def test_a_kill_in_the_middle_and_a_rerun_pay_the_bonus_once(run: dict[str, Any]) -> None:
    """SIGKILL while the bonus is under way (the emulator answers bonus calls slowly), then run again."""
    folder, aid = run["folder"], with_bonus(run, 1)
    lost = list((folder / "photos" / "tmp").glob(f"*/{aid}"))
    assert lost
    for tmp in lost:  # an operator cleaned tmp/ (file_store.retention): the photos come from Toloka again
        shutil.rmtree(tmp)
    set_faults(run["url"], {"latency_seconds": 5.0, "latency_rate": 1.0, "path_prefix": "/api/v1/user-bonuses"})
    try:
        proc = pipeline_process(folder, "reverse", "--config", str(folder / "toloka.ini"), aid, "--accept")
        deadline = time.monotonic() + 60
        while status(run, aid) != "ACCEPTED":
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        time.sleep(1.0)  # now in the bonus look-up
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    finally:
        set_faults(run["url"], {"latency_seconds": 0.0, "latency_rate": 0.0, "path_prefix": "/api/v1"})
    assert not bonuses(run, aid)
    result = reverse(run, aid, "--accept")
    assert result.returncode == 0, result.stderr
    assert "resumed" in result.stdout
    assert len(bonuses(run, aid)) == 1
    main = [r for r in rows(folder / "results" / "main_tasks.tsv") if r["pedestrian_assignment_id"] == aid]
    assert len(main) == 1
    links = [link for name in run["settings"].config.pedestrian.main_fields for link in json.loads(main[0][name])]
    assert len(links) == len(run["rejected"][aid].groups["main"].photos)
    assert all(Path(unquote(urlparse(link).path)).read_bytes()[:3] == b"\xff\xd8\xff" for link in links)
    reversed_rows = [r for r in rows(folder / "logs" / "decisions.tsv")
                     if r["pedestrian_assignment_id"] == aid and r["event"] == flow.REVERSED]
    assert len(reversed_rows) == 1


def _unchanged(run: dict[str, Any]) -> tuple[bytes, set[str]]:
    folder = run["folder"]
    reversals = folder / "saves" / "reversals"
    return ((folder / "logs" / "decisions.tsv").read_bytes(),
            {p.name for p in reversals.iterdir()} if reversals.exists() else set())


def test_refusals_say_why_in_one_line_and_change_nothing(run: dict[str, Any]) -> None:
    folder = run["folder"]
    before = _unchanged(run)
    accepted = next(doc["id"] for doc in objects(folder / "emulator.sqlite", "assignment")
                    if doc["pool_id"] == run["pools"]["pedestrian"] and doc["status"] == "ACCEPTED"
                    and doc["id"] not in run["rejected"])
    checker = next(doc["id"] for doc in objects(folder / "emulator.sqlite", "assignment")
                   if doc["pool_id"] == run["pools"]["relevance"])
    other = folder / "other.ini"
    other.write_text((folder / "toloka.ini").read_text().replace(
        f"pool_id = {run['pools']['relevance']}", "pool_id = 999999"))
    cases = [
        ((accepted, "--accept"), None, "is already accepted"),
        (("00000186a1--6b0d415100000000000fffff", "--accept"), None, "no assignment"),
        (("../etc", "--accept"), None, "is not an assignment id"),
        ((checker, "--accept"), None, "is already accepted"),
        ((checker, "--accept"), other, "not one of this pipeline's pools"),
    ]
    for args, config, expected in cases:
        result = reverse(run, *args, config=config)
        assert result.returncode == 1, (args, result.stderr)
        assert expected in result.stderr and len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert _unchanged(run) == before


def test_it_refuses_while_the_daemon_runs(run: dict[str, Any]) -> None:
    folder = run["folder"]
    aid = sorted(a for a in run["rejected"] if status(run, a) == "REJECTED")[0]
    before = _unchanged(run)
    daemon = start_pipeline(folder)
    try:
        lock = folder / "saves" / "daemon.lock"
        deadline = time.monotonic() + 60
        while not (lock.exists() and lock.read_text().strip()):
            assert daemon.poll() is None and time.monotonic() < deadline
            time.sleep(0.2)
        result = reverse(run, aid, "--accept")
    finally:
        assert stop(daemon) == 0
    assert result.returncode == 2 and "is running" in result.stderr and "stop it" in result.stderr
    assert status(run, aid) == "REJECTED"
    assert _unchanged(run)[1] == before[1]


def test_a_still_submitted_or_skipped_assignment_is_refused(run: dict[str, Any]) -> None:
    """The refusal lines of statuses a finished run has none of."""
    from commands.reverse import _not_rejected

    assert "the daemon will decide it" in _not_rejected("a1", "pedestrian", "SUBMITTED")
    assert "nothing to accept" in _not_rejected("a1", "pedestrian", "SKIPPED")


def test_a_checkers_rejected_assignment_is_accepted_with_a_decision_row(run: dict[str, Any]) -> None:
    doc = next(d for d in objects(run["folder"] / "emulator.sqlite", "assignment")
               if d["pool_id"] == run["pools"]["visit"])
    doc = {**doc, "status": "REJECTED", "public_comment": "too fast"}
    planned = plan(Assignment.from_json(doc), "visit", run["settings"].config,
                   Operator("olga", "a good checker", "sorry"), datetime(2026, 11, 30, 10, 0))
    assert [type(a) for a in planned.actions] == [SetStatus, AppendRows]
    row = planned.actions[1].rows[0]  # type: ignore[union-attr]
    assert row["event"] == flow.REVERSED and row["handler"] == "visit"
    assert "olga" in str(row["comment"]) and "too fast" in str(row["comment"])
    assert row["pedestrian_assignment_id"] == doc["tasks"][0]["input_values"]["pedestrian_assignment_id"]


def test_work_held_for_a_person_is_named_as_such(tmp_path: Path) -> None:
    """A held work is SUBMITTED on Toloka; the refusal says it is held and why, not that the daemon decides it."""
    from types import SimpleNamespace

    from commands.reverse import _held_reason
    from handlers.base import HELD_COLUMNS
    from tables.tsv import TsvTable

    table = TsvTable(tmp_path / "held.tsv", HELD_COLUMNS)
    tools: Any = SimpleNamespace(tables={"held": table})
    assert _held_reason(tools, "a1") is None  # no file yet
    table.append([{"pedestrian_assignment_id": "a1", "stage": "visit", "reason": "visit: unsure after all answers"}])
    assert _held_reason(tools, "a1") == "held.tsv: visit: unsure after all answers"
    assert _held_reason(tools, "a2") is None


def test_a_plan_torn_by_a_power_cut_is_planned_again(run: dict[str, Any]) -> None:
    """Only a prefix of the plan reached the disk (nothing ran): the command plans afresh and finishes."""
    from engine.journal import Journal

    folder = run["folder"]
    aid = sorted(a for a in run["rejected"] if status(run, a) == "REJECTED")[0]
    doc = admin(run["url"], f"/api/v1/assignments/{aid}")
    planned = plan(Assignment.from_json(doc), "pedestrian", run["settings"].config,
                   Operator("olga", "torn", "sorry"), datetime(2026, 11, 30, 10, 0))
    with Journal.open(folder / "saves" / "reversals", None, f"{aid}.jsonl") as journal:
        journal.record(planned.actions[:2])
    result = reverse(run, aid, "--accept")
    assert result.returncode == 0, result.stderr
    assert "reversing:" in result.stdout and status(run, aid) == "ACCEPTED"
    assert len(bonuses(run, aid)) == (1 if len(run["rejected"][aid].groups) > 1 else 0)
    reversed_rows = [r for r in rows(folder / "logs" / "decisions.tsv")
                     if r["pedestrian_assignment_id"] == aid and r["event"] == flow.REVERSED]
    assert len(reversed_rows) == 1
