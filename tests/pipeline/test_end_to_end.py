"""The whole pipeline against the emulator's demo scenario, checked against the emulator's records."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import keyring
import pandas as pd
import pytest

import demo
from tools.harness import objects, truth

SPEED = 240.0  # the crowd's simulated minutes pass in a quarter second


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    folder = tmp_path_factory.mktemp("e2e")
    previous = keyring.get_keyring()
    keyring.set_keyring(demo.FolderKeyring(folder / "keyring"))
    try:
        report = asyncio.run(demo.rehearse(folder, seed=7, speed=SPEED, period_s=1))
    finally:
        keyring.set_keyring(previous)
    assert report is not None
    return {"folder": folder, "report": report, "db": folder / "emulator.sqlite"}


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def test_every_organization_ends_in_exactly_one_final_decision(run: dict[str, Any]) -> None:
    decisions = tsv(run["folder"] / "logs" / "decisions.tsv")
    finals = decisions[decisions["event"].isin(["ACCEPT assignment", "REJECT assignment"])]
    per_assignment = Counter(finals["pedestrian_assignment_id"])
    assert set(per_assignment.values()) == {1}
    pedestrian = {pa for pa, doc in truth(run["db"], "assignment").items()}
    assert set(per_assignment) == pedestrian
    assert len(truth(run["db"], "org")) == len(pedestrian)


def test_result_rows_match_the_emulators_statuses(run: dict[str, Any]) -> None:
    folder = run["folder"]
    statuses = {a["id"]: a["status"] for a in objects(run["db"], "assignment") if a["id"] in truth(run["db"], "assignment")}
    main = set(tsv(folder / "results" / "main_tasks.tsv")["pedestrian_assignment_id"])
    no_org = set(tsv(folder / "results" / "no_org.tsv")["pedestrian_assignment_id"])
    decisions = tsv(folder / "logs" / "decisions.tsv")
    rejected = set(decisions[decisions["event"] == "REJECT assignment"]["pedestrian_assignment_id"])
    assert main | no_org == {pa for pa, s in statuses.items() if s == "ACCEPTED"}
    assert rejected == {pa for pa, s in statuses.items() if s == "REJECTED"}
    assert not (main & no_org) and not (main & rejected)
    for name in ("main_tasks.tsv", "no_org.tsv", "bonus_tasks.tsv"):
        frame = tsv(folder / "results" / name)
        assert not frame.duplicated().any(), name


def test_no_downstream_task_exists_twice(run: dict[str, Any]) -> None:
    tasks = objects(run["db"], "task")
    keys = Counter(
        (t["pool_id"], t["input_values"].get("pedestrian_assignment_id"), t["input_values"].get("photo_id", ""))
        for t in tasks
        if "pedestrian_assignment_id" in t["input_values"]
    )
    assert keys and max(keys.values()) == 1, [k for k, n in keys.items() if n > 1]
    assert len({pool for pool, _, _ in keys}) == 3  # visit, quality and relevance tasks were all made


def test_every_result_link_opens_to_the_photo(run: dict[str, Any]) -> None:
    folder = run["folder"]
    main = tsv(folder / "results" / "main_tasks.tsv")
    bonus = tsv(folder / "results" / "bonus_tasks.tsv")
    link_columns = [c for c in main.columns if not c.endswith("_keys")]  # X_keys: the storage keys of X's photos
    cells = [*main[link_columns].to_numpy().ravel(), *bonus["links"]]
    links = [url for cell in cells if str(cell).startswith("[") for url in json.loads(cell)]
    assert links
    for url in links:
        path = Path(unquote(urlparse(url).path))
        assert url.startswith("file://") and path.read_bytes()[:3] == b"\xff\xd8\xff", url
        assert "/main/" in url or "/main_bonus/" in url


def test_bonuses_paid_equal_bonuses_owed(run: dict[str, Any]) -> None:
    bonus_rows = tsv(run["folder"] / "results" / "bonus_tasks.tsv")
    owed: dict[str, Decimal] = {}
    for row in bonus_rows.itertuples():
        owed[row.pedestrian_assignment_id] = owed.get(row.pedestrian_assignment_id, Decimal(0)) + Decimal(row.bonus_amount)
    paid = objects(run["db"], "bonus")
    per_assignment = Counter(b["assignment_id"] for b in paid)
    assert set(per_assignment.values()) <= {1}
    assert {b["assignment_id"]: Decimal(str(b["amount"])) for b in paid} == owed


def test_decisions_are_good_against_the_ground_truth(run: dict[str, Any]) -> None:
    score = run["report"]["score"]
    assert score["undecided"] == 0 and score["unknown_ids"] == []
    assert score["cheats_caught"] == score["cheats"] > 0
    assert score["bad_photos_kept_out"] == score["bad_photos"]
    assert score["precision_accepted"] >= 0.9


def test_the_seed_readme_pandas_examples_work(run: dict[str, Any]) -> None:
    decisions = pd.read_csv(run["folder"] / "logs" / "decisions.tsv", sep="\t")
    answers = pd.read_csv(run["folder"] / "logs" / "answers.tsv", sep="\t")
    pa = decisions["pedestrian_assignment_id"].iloc[0]
    address = decisions["address"].iloc[0]
    assert len(decisions[decisions["pedestrian_assignment_id"] == pa]) >= 2
    assert len(decisions[decisions["address"] == address]) >= 2
    assert len(answers[answers["pedestrian_assignment_id"] == pa]) >= 2  # min_overlap of the recommended policy
    assert set(answers["handler"]) == {"visit", "quality", "relevance"}
    assert len(answers[(answers["pedestrian_assignment_id"] == pa) & (answers["handler"] == "visit")]) >= 2
    assert answers["confidence"].between(0.5, 1.0).all()


def test_learned_worker_quality_is_written_for_people_and_the_report(run: dict[str, Any]) -> None:
    from pipelines.pedestrian import PEDESTRIAN
    from reporting.build import build_report

    workers = tsv(run["folder"] / "logs" / "workers.tsv")
    assert set(workers["pool"]) <= {"visit", "quality", "relevance"} and len(workers) > 0
    accuracy = workers["accuracy"].astype(float)
    assert accuracy.between(0.0, 1.0).all()
    assert accuracy[workers["restricted"] == ""].is_monotonic_increasing  # worst first
    assert (workers["controls"].astype(int) >= workers["controls_right"].astype(int)).all()
    report = build_report(run["folder"] / "logs", run["folder"] / "results", run["folder"] / "report", PEDESTRIAN)
    page = report.index.read_text()
    assert "learned quality" in page and f"worker {workers['worker'].iloc[0]}" in page
