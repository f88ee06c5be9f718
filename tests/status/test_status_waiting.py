"""Work that waits on /status and the page, the amber "stuck" banner, and recent decisions after a restart.

A real ``python pipeline.py`` with its status server on runs against the
emulator CLI; once organizations wait at a checking pool, the crowd is paused,
so they stay waiting with the answers they have. The page is drawn by headless
Chromium. The daemon is then restarted: its recent decisions come back from
``logs/decisions.tsv`` before anything new is decided.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from PIL import Image
from status_live import Live, get, status, wait_for_status_url, wait_until

from common.errors import ConfigError
from engine.snapshot import WAITING_SHOWN, logged_decisions, waiting
from engine.spec import DecisionLog
from pipelines import load_settings
from pipelines.pedestrian import PEDESTRIAN
from tables.tsv import TsvTable
from tools.chromium import chromium
from tools.harness import (
    edit_ini,
    pause_crowd,
    served_emulator,
    start_pipeline,
    stop,
)

NOW = datetime(2026, 5, 1, 12, 0, 0)
AMBER = "banner warn"
AMBER_BACKGROUND = (0xFD, 0xEC, 0xC8)  # .warn's background


@pytest.fixture(scope="module")
def paused(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Live, dict[str, Any]]]:
    """The daemon with organizations waiting at checking pools and a crowd that no longer answers."""
    folder = tmp_path_factory.mktemp("waiting")
    with served_emulator(folder, seed=5, speed=240) as url:
        config = folder / "toloka.ini"
        edit_ini(config, "Status", enabled="true", port="0", refresh_seconds="1", stuck_after_hours="0")
        settings = load_settings(config)
        proc = start_pipeline(folder)
        live = Live(folder, url, "", settings, proc)
        try:
            live.status_url = wait_for_status_url(folder, proc)
            wait_until(live, lambda s: s["waiting"]["count"] >= 3, 60, "three organizations waiting")
            pause_crowd(url)
            ticks = status(live)["ticks"]
            settled = wait_until(live, lambda s: s["ticks"] >= ticks + 3, 60, "three ticks after the pause")
            yield live, settled
        finally:
            if live.proc.poll() is None:
                stop(live.proc)


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def test_status_lists_the_waiting_work_oldest_first_with_stage_and_answers(
    paused: tuple[Live, dict[str, Any]],
) -> None:
    live, _ = paused
    s = status(live)
    w = s["waiting"]
    rows = w["shown"]
    assert w["count"] == len(rows) >= 3  # fewer than WAITING_SHOWN: all listed
    assert [r["since"] for r in rows] == sorted(r["since"] for r in rows)
    assert w["oldest_since"] == rows[0]["since"]
    submitted = tsv(live.folder / "logs" / "decisions.tsv")
    submitted = submitted[submitted["event"] == "submit"]
    names = dict(zip(submitted["pedestrian_assignment_id"], submitted["name"], strict=True))
    for row in rows:
        assert row["id"] in names and row["label"].startswith(names[row["id"]])
        assert row["stage"] in ("visit", "quality", "relevance")
        assert isinstance(row["answers"], int) and row["answers"] >= 0
        assert row["waited_seconds"] >= 0
    # The same work the pools count: one group per organization at the visit check.
    at_visit = sum(r["stage"] == "visit" for r in rows)
    assert at_visit == s["pools"]["visit"]["groups_waiting"]
    answers = sum(p["answers_waiting"] for p in s["pools"].values())
    assert sum(r["answers"] for r in rows) == answers


def test_the_oldest_beyond_stuck_after_hours_is_stuck_and_the_page_turns_amber(
    paused: tuple[Live, dict[str, Any]], tmp_path: Path,
) -> None:
    live, _ = paused
    s = status(live)
    assert s["waiting"]["stuck"] is True and s["waiting"]["stuck_after_hours"] == 0.0
    result = chromium(tmp_path, "--dump-dom", live.status_url)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert 'data-loaded="yes"' in dom, dom[-2000:]
    banner = re.search(r'<div id="banner" class="([^"]+)">([^<]*)</div>', dom)
    assert banner is not None and banner.group(1) == AMBER, dom[-3000:]
    assert banner.group(2).startswith(f"Stuck: the oldest of {s['waiting']['count']} waiting")
    for row in s["waiting"]["shown"]:
        assert f"<td>{row['id']}</td>" in dom
    shot = tmp_path / "stuck.png"
    result = chromium(tmp_path, f"--screenshot={shot}", "--window-size=1280,900", live.status_url)
    assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
    with Image.open(shot) as image:
        colours = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
    assert AMBER_BACKGROUND in colours  # the banner is drawn amber, not just named so


def test_metrics_count_the_waiting_work_and_say_stuck(paused: tuple[Live, dict[str, Any]]) -> None:
    live, _ = paused
    code, _, body = get(live.status_url + "metrics")
    assert code == 200
    samples = dict(line.rsplit(" ", 1) for line in body.decode().splitlines() if not line.startswith("#"))
    s = status(live)["waiting"]
    assert int(samples["pipeline_waiting"]) == s["count"] > 0
    assert samples["pipeline_stuck"] == "1"
    oldest = datetime.fromisoformat(s["oldest_since"].rstrip("Z")).replace(tzinfo=UTC).timestamp()
    assert float(samples["pipeline_oldest_waiting_timestamp_seconds"]) == oldest


def test_recent_decisions_come_back_from_the_log_after_a_restart(paused: tuple[Live, dict[str, Any]]) -> None:
    live, _ = paused
    before = status(live)["recent_decisions"]
    assert before
    assert stop(live.proc) == 0
    written = len((live.folder / "pipeline.out").read_text())
    live.proc = start_pipeline(live.folder)
    live.status_url = wait_for_status_url(live.folder, live.proc, after=written)
    after = status(live)  # the crowd is paused: nothing new is decided, so all of these are read back
    log = tsv(live.folder / "logs" / "decisions.tsv").tail(50).iloc[::-1]
    expected = [(r.event, f"{r.pedestrian_assignment_id} {r.name}".strip(), r.comment, r.handler)
                for r in log.itertuples()]
    assert [(e["kind"], e["text"], e["detail"], e["pool"]) for e in after["recent_decisions"]] == expected
    assert after["recent_decisions"][0]["at"] == log.iloc[0]["date_time"].replace(" ", "T") + "Z"
    # What the page showed before the stop is shown after it. Not necessarily in the same order within
    # one round of chains: the page lists a chain's decisions when the chain ends, the log holds them
    # when they are written, and a chain that paused for a batch ends a round after its rows were written.
    shown_after = {(e["kind"], e["text"], e["pool"]) for e in after["recent_decisions"]}
    assert {(e["kind"], e["text"], e["pool"]) for e in before[:10]} <= shown_after


def test_waiting_is_bounded_and_stuck_only_past_the_age() -> None:
    rows = [{"id": f"a{i}", "label": "x", "stage": "visit", "since": NOW - timedelta(hours=i), "answers": i % 3}
            for i in range(100)]
    rows.append({"id": "no time", "since": "yesterday"})  # ignored, not a crash
    w = waiting(rows, 99.5, NOW)
    assert w["count"] == 100 and len(w["shown"]) == WAITING_SHOWN
    assert [r["id"] for r in w["shown"]] == [f"a{i}" for i in range(99, 99 - WAITING_SHOWN, -1)]
    assert w["stuck"] is False and w["shown"][0]["waited_seconds"] == 99 * 3600
    assert waiting(rows, 98.5, NOW)["stuck"] is True
    assert waiting([], 0.0, NOW) == {"count": 0, "stuck_after_hours": 0.0, "oldest_since": None, "stuck": False,
                                     "shown": []}


def test_logged_decisions_read_only_the_end_of_a_log_with_hostile_text(tmp_path: Path) -> None:
    columns = ("date_time", "name", "pedestrian_assignment_id", "handler", "event", "comment")
    table = TsvTable(tmp_path / "decisions.tsv", columns)
    table.append([{"date_time": f"2026-05-01 12:{i // 60:02d}:{i % 60:02d}", "name": f'Cafe "{i}"\n\tline',
                   "pedestrian_assignment_id": f"pa{i}", "handler": "visit", "event": "submit",
                   "comment": '"\n"' * (i % 4)} for i in range(3000)])
    with (tmp_path / "decisions.tsv").open("a") as handle:
        handle.write('"2026-05-01 13:00:00"\t"half a rec')  # the daemon is writing
    log = DecisionLog("decisions", pool_column="handler", event_column="event",
                      subject_column="pedestrian_assignment_id", label_column="name", comment_column="comment")
    events = logged_decisions(tmp_path / "decisions.tsv", log, 50)
    assert [e.text for e in events] == [f'pa{i} Cafe "{i}"\n\tline' for i in range(2950, 3000)]
    assert [e.detail for e in events] == ['"\n"' * (i % 4) for i in range(2950, 3000)]
    assert events[-1].at == datetime(2026, 5, 1, 12, 49, 59) and events[-1].pool == "visit"
    assert logged_decisions(tmp_path / "absent.tsv", log, 50) == []


def test_stuck_after_hours_is_read_and_checked(tmp_path: Path) -> None:
    config = tmp_path / "toloka.ini"
    config.write_text((Path(__file__).resolve().parents[2] / "toloka.example.ini").read_text())
    assert load_settings(config).status.stuck_after_hours == 24.0
    edit_ini(config, "Status", stuck_after_hours="1.5")
    assert load_settings(config).status.stuck_after_hours == 1.5
    edit_ini(config, "Status", stuck_after_hours="-1")
    with pytest.raises(ConfigError) as raised:
        load_settings(config)
    assert "[Status] stuck_after_hours" in str(raised.value)
    assert PEDESTRIAN.waiting is not None
