"""The status server of a real ``python pipeline.py`` run on the demo scenario: /status, /metrics, / in Chromium."""

from __future__ import annotations

import os
import re
import shutil
from collections import Counter
from collections.abc import Iterator
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image

from tests.pipeline.processes import admin
from tools.chromium import chromium
from status_live import Live, all_decided, get, live_pipeline, status, wait_until

ORGANIZATIONS = 12  # in the demo scenario


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, dict[str, Any]]]:
    """The daemon, left running after it decided every organization, and its status at that point."""
    folder = tmp_path_factory.mktemp("live")
    with live_pipeline(folder, seed=5, speed=240) as running:
        first = wait_until(running, all_decided(ORGANIZATIONS), 120, "every organization decided")
        yield running, first


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.rstrip("Z"))


def test_status_reports_ticks_and_per_pool_counters_that_match_the_logs(live: tuple[Live, dict[str, Any]]) -> None:
    running, _ = live
    s = status(running)
    assert s["ticks"] >= 2 and s["last_tick"] is not None
    assert parse_time(s["next_tick"]) >= parse_time(s["last_tick"]["at"])
    pools = running.settings.pools()
    assert {name: p["pool_id"] for name, p in s["pools"].items()} == pools
    decisions = tsv(running.folder / "logs" / "decisions.tsv")
    for name, pool in s["pools"].items():
        written = Counter(decisions[decisions["handler"] == name]["event"])
        assert pool["decisions"] == dict(written), name
        assert pool["errors"] == 0 and pool["pending_effects"] == 0
        assert pool["answers_waiting"] == 0 and pool["groups_waiting"] == 0
    # Every fetched assignment of a verification pool is an accepted one the emulator holds.
    for name in ("visit", "quality", "relevance"):
        found = admin(running.emulator_url, f"/api/v1/assignments?pool_id={pools[name]}&status=ACCEPTED&limit=1000")
        assert 0 < s["pools"][name]["fetched"] <= len(found["items"])
    assert s["pools"]["pedestrian"]["fetched"] == ORGANIZATIONS
    assert s["near_auto_accept"] == [] and s["pending_effects"]["total"] == 0


def test_status_funnel_counts_each_assignment_once_per_stage(live: tuple[Live, dict[str, Any]]) -> None:
    running, _ = live
    s = status(running)
    decisions = tsv(running.folder / "logs" / "decisions.tsv")

    def entered(event: str, handler: str | None = None) -> int:
        rows = decisions[decisions["event"] == event]
        if handler is not None:
            rows = rows[rows["handler"] == handler]
        return rows["pedestrian_assignment_id"].nunique()

    expected = {
        "pedestrian": entered("submit"),
        "visit": entered("to visit validation"),
        "quality": entered("to quality validation"),
        "relevance": entered("to relevance validation"),
        "accepted": entered("ACCEPT assignment", "relevance"),
    }
    assert [f["stage"] for f in s["funnel"]] == list(expected)
    assert {f["stage"]: f["count"] for f in s["funnel"]} == expected
    assert expected["pedestrian"] == ORGANIZATIONS and expected["accepted"] > 0
    assert expected["pedestrian"] >= expected["visit"] >= expected["quality"] >= expected["relevance"] >= expected["accepted"]


def test_status_money_matches_what_the_emulator_paid(live: tuple[Live, dict[str, Any]]) -> None:
    running, _ = live
    m = status(running)["money"]
    pools = running.settings.pools()
    bonuses = admin(running.emulator_url, "/api/v1/user-bonuses?limit=1000")["items"]
    assert Decimal(m["bonuses"]) == sum((Decimal(str(b["amount"])) for b in bonuses), Decimal(0)) > 0
    assert m["bonuses_paid"] == len(bonuses)
    accepted = admin(running.emulator_url, f"/api/v1/assignments?pool_id={pools['pedestrian']}&status=ACCEPTED&limit=1000")
    pedestrian_rewards = sum((Decimal(str(a["reward"])) for a in accepted["items"]), Decimal(0))
    s = status(running)
    assert Decimal(s["pools"]["pedestrian"]["rewards"]) == pedestrian_rewards > 0
    verification = sum((Decimal(s["pools"][n]["rewards"]) for n in ("visit", "quality", "relevance")), Decimal(0))
    assert Decimal(m["rewards"]) == pedestrian_rewards + verification
    assert Decimal(m["spent"]) == Decimal(m["rewards"]) + Decimal(m["bonuses"])
    assert m["max_spend"] is None and m["over_budget"] is False


def test_status_lists_recent_decisions_newest_first(live: tuple[Live, dict[str, Any]]) -> None:
    running, _ = live
    recent = status(running)["recent_decisions"]
    assert 0 < len(recent) <= 50
    times = [r["at"] for r in recent]
    assert times == sorted(times, reverse=True)
    decisions = tsv(running.folder / "logs" / "decisions.tsv")
    assert recent[0]["kind"] in set(decisions["event"])
    assert status(running)["recent_errors"] == []


SAMPLE = re.compile(r'^[a-z_]+(\{[a-z_]+="[^"]*"(,[a-z_]+="[^"]*")*\})? -?[0-9.e+-]+$')


def test_metrics_are_prometheus_text_with_the_same_counters(live: tuple[Live, dict[str, Any]]) -> None:
    running, _ = live
    code, headers, body = get(running.status_url + "metrics")
    assert code == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    samples: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith("#"):
            assert re.match(r"^# (HELP|TYPE) [a-z_]+ ", line), line
            continue
        assert SAMPLE.match(line), line
        name, value = line.rsplit(" ", 1)
        samples[name] = float(value)
    s = status(running)
    for name, pool in s["pools"].items():
        labels = f'{{pool="{name}",pool_id="{pool["pool_id"]}"}}'
        assert samples[f"pipeline_assignments_fetched_total{labels}"] == pool["fetched"]
        assert samples[f"pipeline_errors_total{labels}"] == 0
        for event, n in pool["decisions"].items():
            assert samples[f'pipeline_decisions_total{{pool="{name}",event="{event}"}}'] == n
    for stage in s["funnel"]:
        assert samples[f'pipeline_funnel_total{{stage="{stage["stage"]}"}}'] == stage["count"]
    assert samples["pipeline_money_spent"] == pytest.approx(float(Decimal(s["money"]["spent"])))
    assert samples["pipeline_bonuses_paid_total"] == s["money"]["bonuses_paid"]
    assert samples["pipeline_over_budget"] == 0
    assert samples["pipeline_ticks_total"] >= 2


def test_page_is_self_contained_html_that_forbids_other_origins(live: tuple[Live, dict[str, Any]]) -> None:
    running, _ = live
    code, headers, body = get(running.status_url)
    assert code == 200 and headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert "<script>" in page and "fetch(\"status\"" in page
    assert not re.search(r"(https?:)?//[a-z0-9]", page.replace("http-equiv", "")), "the page names another origin"
    assert "connect-src 'self'" in headers["Content-Security-Policy"]
    assert "default-src 'none'" in headers["Content-Security-Policy"]


def test_page_in_chromium_draws_the_funnel_money_and_decisions(live: tuple[Live, dict[str, Any]],
                                                               tmp_path: Path) -> None:
    running, _ = live
    # The daemon goes on after every organization is decided (late checker answers still earn their
    # reward), so the page is compared with a status that did not change while Chromium drew it.
    for _ in range(5):
        before = status(running)
        result = chromium(tmp_path, "--dump-dom", running.status_url)
        after = status(running)
        if (before["money"], before["funnel"]) == (after["money"], after["funnel"]):
            break
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'data-loaded="yes"' in dom, dom[-2000:]  # the script ran and drew a status
    drawn = dict(re.findall(r'data-stage="([a-z]+)"><span class="label">[a-z]+</span><span class="bar"[^>]*></span>'
                            r'<span class="n">(\d+)</span>', dom))
    assert {stage: int(n) for stage, n in drawn.items()} == {f["stage"]: f["count"] for f in before["funnel"]}
    assert f"<td class=\"num\">{before['money']['spent']}</td>" in dom
    assert "Healthy" in dom and "no errors" in dom
    for name in before["pools"]:
        assert f"<td>{name}</td>" in dom
    assert before["recent_decisions"][-1]["kind"] in dom

    shot = tmp_path / "status-page.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,1000", "--hide-scrollbars",
                      running.status_url)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        assert image.size == (1280, 1000)
        colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
        assert len(colours) > 50  # text, bars and tables, not a blank or error page
        assert any(rgb == (0x3B, 0x6F, 0xD8) for _, rgb in colours)  # the funnel's bars
    keep = os.environ.get("STATUS_SCREENSHOT")
    if keep:
        shutil.copy(shot, keep)
    print(f"screenshot: {shot}")
