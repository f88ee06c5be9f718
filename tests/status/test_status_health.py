"""The health check: "stale" once the last tick is older than three periods, 503 on /health then."""

from __future__ import annotations

import json
import re
import signal
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from engine.snapshot import STALE_PERIODS, health, take_snapshot
from status.server import serve_status
from status.settings import StatusSettings

START = datetime(2026, 11, 30, 9, 0, 0)
PERIOD = 60.0


@pytest.mark.parametrize(
    ("last_tick_after_s", "now_after_s", "expected"),
    [
        (None, 0, "starting"),
        (None, STALE_PERIODS * PERIOD, "starting"),             # exactly three periods: not yet
        (None, STALE_PERIODS * PERIOD + 1, "stale"),            # a start-up that hangs
        (0, 1, "ok"),
        (600, 600 + PERIOD - 1, "ok"),                          # between two ticks
        (600, 600 + STALE_PERIODS * PERIOD, "ok"),
        (600, 600 + STALE_PERIODS * PERIOD + 1, "stale"),       # a tick that never ends, a stopped loop
    ],
)
def test_health_follows_the_age_of_the_last_tick(last_tick_after_s: float | None, now_after_s: float,
                                                 expected: str) -> None:
    last = None if last_tick_after_s is None else START + timedelta(seconds=last_tick_after_s)
    assert health(last, START, PERIOD, START + timedelta(seconds=now_after_s)) == expected


async def test_health_over_http_is_200_while_fresh_and_503_once_stale() -> None:
    pictures: list[dict[str, Any]] = [
        {"health": "ok", "stale": False, "now": "2026-11-30T09:01:00Z", "stale_after_seconds": 180,
         "last_tick": {"at": "2026-11-30T09:00:30Z"}},
        {"health": "stale", "stale": True, "now": "2026-11-30T09:10:00Z", "stale_after_seconds": 180,
         "last_tick": {"at": "2026-11-30T09:00:30Z"}},
        {"health": "starting", "stale": False, "now": "2026-11-30T09:00:01Z", "stale_after_seconds": 180,
         "last_tick": None},
    ]
    answers = []
    async with serve_status(lambda: pictures[len(answers)], StatusSettings(enabled=True, port=0), None) as server, \
            aiohttp.ClientSession() as session:
        for _ in pictures:
            async with session.get(f"{server.url}health") as resp:
                answers.append((resp.status, await resp.json()))
    assert [(status, body["health"]) for status, body in answers] == [(200, "ok"), (503, "stale"), (200, "starting")]
    assert answers[1][1]["last_tick"] == "2026-11-30T09:00:30Z" and answers[2][1]["last_tick"] is None


async def test_a_real_engine_snapshot_is_fresh_after_a_tick_and_stale_three_periods_later(tmp_path: Path) -> None:
    from pipelines import open_engine
    from status.prometheus import render
    from tools.harness import emulator_in_process

    token = "health-test-token"
    async with (emulator_in_process(tmp_path, seed=4, speed=1, token=token, period_seconds=5) as (_, settings),
                open_engine(settings) as daemon):
        before = take_snapshot(daemon, daemon.started_at + timedelta(seconds=1))
        assert (before["health"], before["stale"]) == ("starting", False)
        await daemon.check_pools()
        await daemon.tick()
        ticked = daemon.last_tick_at
        assert ticked is not None
        fresh = take_snapshot(daemon, ticked + timedelta(seconds=5))
        stale = take_snapshot(daemon, ticked + timedelta(seconds=3 * 5 + 1))
    assert (fresh["health"], fresh["stale"], fresh["stale_after_seconds"]) == ("ok", False, 15)
    assert (stale["health"], stale["stale"]) == ("stale", True)
    assert "pipeline_stale 1" in render(stale) and "pipeline_stale 0" in render(fresh)


def test_a_daemon_whose_tick_hangs_turns_stale_on_health_and_recovers(tmp_path: Path) -> None:
    """A live daemon: Toloka answers slowly (each request 12 s, period 1 s), the status server still
    answers, and /health says 503 stale until the ticks come back.

    A pool whose search brought nothing rests a tick, so a tick that searches nothing ends at
    once even now; the long latency keeps each searching tick stale for seconds, long enough for
    the page to be read inside it.
    """
    from tools.chromium import chromium
    from tools.harness import edit_ini, served_emulator, set_faults, start_pipeline, stop, wait_for_ticks

    def get_health(base: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(f"{base}health", timeout=10) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as refused:
            return refused.code, json.loads(refused.read())

    def wait(what: str, check: Any, timeout: float = 60) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            found = check()
            if found:
                return found
            assert proc.poll() is None and time.monotonic() < deadline, f"{what}: " + out.read_text()[-2000:]
            time.sleep(0.2)

    with served_emulator(tmp_path, seed=9, speed=1) as url:
        edit_ini(tmp_path / "toloka.ini", "Status", enabled="true", port="0")
        out = tmp_path / "pipeline.out"
        proc = start_pipeline(tmp_path)
        try:
            base = wait("the status URL", lambda: (m := re.search(r"status page: (\S+)", out.read_text()))
                        and m.group(1))
            wait_for_ticks(proc, out, 2)
            assert get_health(base)[0] == 200
            set_faults(url, {"latency_seconds": 12, "latency_rate": 1.0})
            _, body = wait("stale", lambda: (h := get_health(base))[0] == 503 and h)
            assert body["health"] == "stale" and body["stale"] is True and body["stale_after_seconds"] == 3
            # The page says so too (it kept showing "Healthy" while /health said 503).
            page = chromium(tmp_path, "--dump-dom", base)
            banner = re.search(r'<div[^>]*id="banner"[^>]*>([^<]*)<', page.stdout)
            assert 'data-loaded="yes"' in page.stdout and banner, page.stdout[-2000:]
            assert banner.group(1).startswith("Stale: no tick since"), banner.group(1)
            set_faults(url, {})
            _, body = wait("fresh again", lambda: (h := get_health(base))[0] == 200 and h)
            assert body["health"] == "ok"
        finally:
            assert stop(proc, signal.SIGTERM, timeout=60) == 0
