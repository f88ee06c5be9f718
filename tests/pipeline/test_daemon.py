"""``python pipeline.py`` as a person runs it: start-up errors, signals, one tick, pool failures."""

from __future__ import annotations

import signal
import time
import urllib.request
from pathlib import Path

import pytest

from pipelines import load_settings
from tools.harness import (
    REPO,
    TOKEN,
    edit_ini,
    emulator_in_process,
    run_pipeline,
    served_emulator,
    set_password,
    start_pipeline,
    stop,
    ticks,
    wait_for_ticks,
)


def test_a_config_mistake_stops_start_up_with_section_key_expected_found(tmp_path: Path) -> None:
    config = tmp_path / "toloka.ini"
    config.write_text((REPO / "toloka.example.ini").read_text().replace("min_overlap = 2", "min_overlap = three", 1))
    result = run_pipeline(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert "[ValidationVisit] min_overlap" in result.stderr and "'three'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = run_pipeline(tmp_path, "--config", str(tmp_path / "nope.ini"))
    assert result.returncode == 2 and "nope.ini" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """An emulator with the demo scenario (its crowd paused by a slow speed) and a ready toloka.ini."""
    folder = tmp_path_factory.mktemp("served")
    with served_emulator(folder, seed=2, speed=1) as url:
        yield folder, url


def test_once_runs_one_tick_prints_its_line_and_checkpoints(served: tuple[Path, str]) -> None:
    folder, _ = served
    result = run_pipeline(folder, "--config", str(folder / "toloka.ini"), "--once")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if " tick: " in line]
    assert len(lines) == 1 and "fetched" in lines[0] and "errors 0" in lines[0]
    assert (folder / "saves" / "checkpoint.pkl").stat().st_mode & 0o077 == 0


def test_sigterm_finishes_the_tick_checkpoints_and_exits_zero(served: tuple[Path, str]) -> None:
    folder, _ = served
    out = folder / "pipeline.out"
    ticks_before = len(ticks(out))
    proc = start_pipeline(folder)
    wait_for_ticks(proc, out, ticks_before + 2)
    before = (folder / "saves" / "checkpoint.pkl").stat().st_mtime_ns
    assert stop(proc, signal.SIGTERM, timeout=30) == 0
    assert "stop requested" in (folder / "logs" / "pipeline" / "info.log").read_text()
    assert (folder / "saves" / "checkpoint.pkl").stat().st_mtime_ns >= before


def test_a_second_daemon_on_the_same_saves_exits_at_once(served: tuple[Path, str]) -> None:
    folder, _ = served
    out = folder / "pipeline.out"
    ticks_before = len(ticks(out))  # earlier tests wrote there too
    first = start_pipeline(folder)
    try:
        wait_for_ticks(first, out, ticks_before + 1)  # the first daemon holds the lock by now
        started = time.monotonic()
        second = run_pipeline(folder, "--config", str(folder / "toloka.ini"))
        assert second.returncode != 0 and time.monotonic() - started < 30
        assert str(folder / "saves") in second.stderr and str(first.pid) in second.stderr
    finally:
        assert stop(first) == 0


def test_a_corrupt_checkpoint_stops_start_up_and_is_left_in_place(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = served
    config = tmp_path / "toloka.ini"
    config.write_text((folder / "toloka.ini").read_text())
    edit_ini(config, "Pipeline", saves_folder=str(tmp_path / "saves"))
    (tmp_path / "saves").mkdir(mode=0o700)
    damaged = tmp_path / "saves" / "checkpoint.pkl"
    damaged.write_bytes(b"PEDESTRIAN-PIPELINE-CHECKPOINT garbage \x00\x01")
    damaged.chmod(0o600)
    result = run_pipeline(folder, "--config", str(config))
    assert result.returncode == 2
    assert str(damaged) in result.stderr and "Traceback" not in result.stderr
    assert damaged.read_bytes().endswith(b"garbage \x00\x01")


def test_a_wrong_token_is_reported_before_any_work(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = served
    config = tmp_path / "toloka.ini"
    config.write_text((folder / "toloka.ini").read_text())
    edit_ini(config, "Secrets", toloka_token="wrong_entry")
    edit_ini(config, "Pipeline", saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"))
    set_password(folder, "wrong_entry", "not-the-token")
    result = run_pipeline(folder, "--config", str(config))
    assert result.returncode == 2
    assert "AUTHENTICATION_ERROR" in result.stderr or "401" in result.stderr
    assert "not-the-token" not in result.stderr + result.stdout
    assert "not-the-token" not in "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))


def test_a_missing_pool_is_named_at_start_up(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = served
    config = tmp_path / "toloka.ini"
    config.write_text((folder / "toloka.ini").read_text())
    edit_ini(config, "ValidationQuality", pool_id="999999")
    edit_ini(config, "Pipeline", saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"))
    result = run_pipeline(folder, "--config", str(config))
    assert result.returncode == 2
    assert "quality pool 999999" in result.stderr and "Traceback" not in result.stderr


def test_stop_when_pools_closed_exits_once_every_pool_is_closed(tmp_path: Path) -> None:
    with served_emulator(tmp_path, seed=3, speed=1) as url:
        edit_ini(tmp_path / "toloka.ini", "Pipeline", stop_when_pools_closed="true")
        settings = load_settings(tmp_path / "toloka.ini")
        for pool_id in settings.pools().values():
            request = urllib.request.Request(f"{url}/api/v1/pools/{pool_id}/close", method="POST",
                                             headers={"Authorization": f"OAuth {TOKEN}"})
            urllib.request.urlopen(request, timeout=10).close()
        result = run_pipeline(tmp_path, "--config", str(tmp_path / "toloka.ini"), timeout=60)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count(" tick: ") == 1
    assert "every pool is closed" in (tmp_path / "logs" / "pipeline" / "info.log").read_text()


async def test_one_failing_pool_is_logged_and_the_others_go_on(tmp_path: Path) -> None:
    import asyncio

    from pipelines import open_engine
    from toloka_client.errors import TransportError

    async with emulator_in_process(tmp_path, seed=4, speed=600) as (_, settings), open_engine(settings) as daemon:
        await daemon.check_pools()

        async def broken(now: object) -> object:
            raise TransportError("GET", "/assignments", None, None, "connection refused")

        daemon.cursors["quality"].fetch = broken  # type: ignore[method-assign]
        fetched = errors = 0
        for _ in range(40):
            summary = await daemon.tick()
            fetched += summary.fetched
            errors += summary.errors
            if daemon.state.stats.tasks_created and errors >= 3:
                break
            await asyncio.sleep(0.3)
    assert errors >= 3 and fetched > 0 and daemon.state.stats.tasks_created > 0
    error_log = (tmp_path / "logs" / f"quality_{settings.config.quality.pool_id}" / "error.log").read_text()
    assert f"quality pool {settings.config.quality.pool_id}: fetch failed" in error_log
    assert daemon.cursors["quality"].state.time.startswith("1970")  # never moved past what it did not read


def test_unrestrict_lifts_the_daemons_restriction_and_logs_it(served: tuple[Path, str]) -> None:
    import json
    import urllib.request as request

    folder, url = served
    settings = load_settings(folder / "toloka.ini")
    visit_pool = settings.pools()["visit"]
    body = json.dumps({"scope": "POOL", "user_id": "poor-checker", "pool_id": visit_pool,
                       "private_comment": "visit: learned accuracy 0.41"}).encode()
    put = request.Request(f"{url}/api/v1/user-restrictions", data=body, method="PUT",
                          headers={"Authorization": f"OAuth {TOKEN}", "Content-Type": "application/json"})
    with request.urlopen(put) as response:
        restriction = json.loads(response.read())
    result = run_pipeline(folder, "unrestrict", "poor-checker", "--config", str(folder / "toloka.ini"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"lifted restriction {restriction['id']} of poor-checker on pool visit" in result.stdout
    search = request.Request(f"{url}/api/v1/user-restrictions?user_id=poor-checker",
                             headers={"Authorization": f"OAuth {TOKEN}"})
    with request.urlopen(search) as response:
        assert json.loads(response.read())["items"] == []
    decisions = (folder / "logs" / "decisions.tsv").read_text()
    assert "UNRESTRICT worker" in decisions and "worker poor-checker" in decisions
    again = run_pipeline(folder, "unrestrict", "poor-checker", "--config", str(folder / "toloka.ini"))
    assert again.returncode == 0 and "has no restriction" in again.stdout
