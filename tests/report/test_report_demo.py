"""``python report.py`` on the demo's logs: every chart exists and carries the demo's own numbers; partial logs.

The report is given the pedestrian spec (and what ``report.py`` declares on its behalf until the
spec carries it); tests/report/test_report_spec.py gives it a pipeline of another shape.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import sys
from collections import Counter
from decimal import Decimal
from pathlib import Path
from typing import Any

import keyring
import pandas as pd
import pytest
from PIL import Image

import demo
import pipelines
from reporting.build import Report, build_report
from reporting.charts import read_chart_data
from tests.pipeline.emulator_db import objects

REPO = Path(__file__).resolve().parents[2]
CHARTS = ("funnel", "decisions_over_time", "time_to_decision", "worker_agreement", "spend_over_time", "bonus_fields")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The demo scenario run to the end in-process, as ``python pipeline.py --demo`` does, and its summary."""
    folder = tmp_path_factory.mktemp("demo")
    previous = keyring.get_keyring()
    keyring.set_keyring(demo.FolderKeyring(folder / "keyring"))
    try:
        summary = asyncio.run(demo.rehearse(folder, seed=3, speed=240.0, period_s=1))
    finally:
        keyring.set_keyring(previous)
    assert summary is not None
    return {"folder": folder, "summary": summary}


def pedestrian_report(logs: Path, results: Path, out: Path, config_file: Path | None = None) -> Report:
    """The report as ``python report.py`` builds it: with the demo's toloka.ini, or (no config) the defaults."""
    spec = pipelines.get("pedestrian")
    config = pipelines.load_settings(config_file).config if config_file is not None else None
    return build_report(logs, results, out, spec, config=config)


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def test_report_charts_show_the_demos_numbers(demo_run: dict[str, Any], tmp_path: Path) -> None:
    folder, summary = demo_run["folder"], demo_run["summary"]
    report = pedestrian_report(folder / "logs", folder / "results", tmp_path / "report", folder / "toloka.ini")
    assert report.notes == [] and sorted(report.charts) == sorted(CHARTS)
    page = report.index.read_text()
    assert "No chart" not in page
    for name in CHARTS:
        path = tmp_path / "report" / f"{name}.png"
        assert f'src="{name}.png"' in page
        with Image.open(path) as image:
            assert image.format == "PNG" and image.size[0] >= 600
            assert len(image.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 20  # drawn, not blank

    made = summary["made"]  # the demo's own count of final decisions
    funnel = read_chart_data(report.charts["funnel"])
    assert funnel["funnel"]["pedestrian"] == sum(made.values()) == 12
    assert funnel["outcomes"]["accepted"] == funnel["funnel"]["accepted"] == made["accept"]
    assert funnel["outcomes"].get("no_org", 0) == made.get("no_org", 0)
    assert sum(v for k, v in funnel["outcomes"].items() if k.startswith("rejected")) == made.get("reject", 0)

    events = summary["events"]
    over_time = read_chart_data(report.charts["decisions_over_time"])["totals"]
    assert over_time == {e: events[e] for e in ("submit", "ACCEPT assignment", "REJECT assignment", "PAY bonus")
                         if events.get(e)}

    waits = read_chart_data(report.charts["time_to_decision"])
    assert waits["count"] == 12 and 0 <= waits["median_minutes"] <= waits["max_minutes"]

    answers = tsv(folder / "logs" / "answers.tsv")
    agreement = read_chart_data(report.charts["worker_agreement"])
    for pool in ("visit", "quality", "relevance"):
        assert agreement[pool]["workers"] == answers[answers["handler"] == pool]["worker"].nunique()

    bonus_rows = tsv(folder / "results" / "bonus_tasks.tsv")
    fields = read_chart_data(report.charts["bonus_fields"])
    assert fields == dict(Counter(bonus_rows["bonus_field"]))
    assert sum(fields.values()) == summary["rows"]["bonus_tasks.tsv"]

    # Money: bonuses as the emulator paid them; rewards never more than it paid.
    spend = read_chart_data(report.charts["spend_over_time"])
    assert Decimal(str(spend["bonuses"])) == summary["bonuses"]
    assert Decimal(str(spend["rewards"])) <= summary["rewards"]
    last = tsv(folder / "logs" / "spend.tsv").iloc[-1]
    accepted = [a for a in objects(folder / "emulator.sqlite", "assignment")
                if a["pool_id"] == objects(folder / "emulator.sqlite", "pool")[0]["id"] and a["status"] == "ACCEPTED"]
    assert Decimal(last["pedestrian_rewards"]) == sum((Decimal(str(a["reward"])) for a in accepted), Decimal(0)) > 0
    assert f"<td>spent</td><td class=\"n\">{last['spent']}</td>" in page


def test_report_on_partial_logs_says_what_is_missing_or_empty(demo_run: dict[str, Any], tmp_path: Path) -> None:
    folder = demo_run["folder"]
    logs, results = tmp_path / "logs", tmp_path / "results"
    logs.mkdir()
    results.mkdir()
    decisions = (folder / "logs" / "decisions.tsv").read_bytes()
    (logs / "decisions.tsv").write_bytes(decisions[: len(decisions) - 7])  # the daemon is mid-append
    bonus_header = (folder / "results" / "bonus_tasks.tsv").read_bytes().split(b"\n")[0] + b"\n"
    (results / "bonus_tasks.tsv").write_bytes(bonus_header)
    (results / "main_tasks.tsv").write_bytes(b"")
    out = tmp_path / "report"
    out.mkdir()
    (out / "worker_agreement.png").write_bytes(b"an old chart")

    report = pedestrian_report(logs, results, out, folder / "toloka.ini")  # which tables the pipeline writes
    notes = "\n".join(report.notes)
    assert f"{logs / 'decisions.tsv'}: an unfinished last record" in notes
    assert f"{logs / 'answers.tsv'} is missing" in notes
    assert f"{logs / 'spend.tsv'} is missing" in notes
    assert f"{results / 'bonus_tasks.tsv'} has a header but no rows yet" in notes
    assert f"{results / 'main_tasks.tsv'} is empty" in notes
    assert sorted(report.charts) == ["decisions_over_time", "funnel", "time_to_decision"]
    assert not (out / "worker_agreement.png").exists()  # a stale chart is not left to pass for a new one
    page = report.index.read_text()
    assert f"No chart: {logs / 'answers.tsv'} is missing" in page
    assert f"No chart: {results / 'bonus_tasks.tsv'} has a header but no rows yet" in page
    funnel = read_chart_data(report.charts["funnel"])["funnel"]
    assert funnel["pedestrian"] == 12  # every complete row still counts


def test_report_command_line_takes_the_folders_from_toloka_ini(demo_run: dict[str, Any], tmp_path: Path) -> None:
    folder = demo_run["folder"]
    config = tmp_path / "toloka.ini"
    shutil.copy(folder / "toloka.ini", config)
    result = subprocess.run([sys.executable, "report.py", "--config", str(config), "--out", str(tmp_path / "r")],
                            cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert f"report: {tmp_path / 'r' / 'index.html'} with 6 charts" in result.stdout
    empty = subprocess.run([sys.executable, "report.py", "--logs", str(tmp_path / "none"), "--results",
                            str(tmp_path / "none"), "--out", str(tmp_path / "e")],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert empty.returncode == 0 and "decisions.tsv is missing" in empty.stdout and "with 0 charts" in empty.stdout
    named = subprocess.run([sys.executable, "report.py", "--pipeline", "pedestrian", "--logs", str(folder / "logs"),
                            "--results", str(folder / "results"), "--out", str(tmp_path / "p")],
                           cwd=REPO, capture_output=True, text=True, timeout=120)
    assert named.returncode == 0 and f"{tmp_path / 'p' / 'index.html'} with 6 charts" in named.stdout, named.stderr
    for wrong in (["--pipeline", "no_such_pipeline"], ["--config", str(config), "--pipeline", "no_such_pipeline"]):
        refused = subprocess.run([sys.executable, "report.py", *wrong, "--out", str(tmp_path / "x")],
                                 cwd=REPO, capture_output=True, text=True, timeout=120)
        assert refused.returncode == 2 and "no_such_pipeline" in refused.stderr, refused.stderr
        assert not (tmp_path / "x").exists()
