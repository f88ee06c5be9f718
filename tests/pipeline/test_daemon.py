"""``python pipeline.py`` as a person runs it: start-up errors, signals, one tick, pool failures."""

from __future__ import annotations

import configparser
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine.config import load_settings
from tests.pipeline.processes import REPO, emulator, fast_config, keyring_env, start_pipeline, stop, store_token


def pipeline(folder: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "pipeline.py", *args], cwd=REPO, env=keyring_env(folder),
        capture_output=True, text=True, timeout=timeout,
    )


def edit(path: Path, section: str, **values: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path, encoding="utf-8")
    cfg[section].update(values)
    with path.open("w", encoding="utf-8") as handle:
        cfg.write(handle)


def test_a_config_mistake_stops_start_up_with_section_key_expected_found(tmp_path: Path) -> None:
    config = tmp_path / "toloka.ini"
    config.write_text((REPO / "toloka.ini").read_text().replace("overlap = 3", "overlap = three", 1))
    result = pipeline(tmp_path, "--config", str(config))
    assert result.returncode == 2
    assert "[ValidationVisit] overlap" in result.stderr and "'three'" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_missing_config_file_is_named(tmp_path: Path) -> None:
    result = pipeline(tmp_path, "--config", str(tmp_path / "nope.ini"))
    assert result.returncode == 2 and "nope.ini" in result.stderr and "Traceback" not in result.stderr


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory):
    """An emulator with the demo scenario (its crowd paused by a slow speed) and a ready toloka.ini."""
    folder = tmp_path_factory.mktemp("served")
    with emulator(folder, seed=2, speed=1) as url:
        fast_config(folder)
        store_token(folder, load_settings(folder / "toloka.ini").secrets.toloka_token)
        yield folder, url


def test_once_runs_one_tick_prints_its_line_and_checkpoints(served: tuple[Path, str]) -> None:
    folder, _ = served
    result = pipeline(folder, "--config", str(folder / "toloka.ini"), "--once")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = [line for line in result.stdout.splitlines() if " tick: " in line]
    assert len(lines) == 1 and "fetched" in lines[0] and "errors 0" in lines[0]
    assert (folder / "saves" / "checkpoint.pkl").stat().st_mode & 0o077 == 0


def test_sigterm_finishes_the_tick_checkpoints_and_exits_zero(served: tuple[Path, str]) -> None:
    folder, _ = served
    proc = start_pipeline(folder)
    deadline = time.monotonic() + 60
    out = folder / "pipeline.out"
    while out.read_text().count(" tick: ") < 2:
        assert proc.poll() is None and time.monotonic() < deadline, out.read_text()[-2000:]
        time.sleep(0.2)
    before = (folder / "saves" / "checkpoint.pkl").stat().st_mtime_ns
    assert stop(proc, signal.SIGTERM, timeout=30) == 0
    assert "stop requested" in (folder / "logs" / "pipeline" / "info.log").read_text()
    assert (folder / "saves" / "checkpoint.pkl").stat().st_mtime_ns >= before


def test_a_second_daemon_on_the_same_saves_exits_at_once(served: tuple[Path, str]) -> None:
    folder, _ = served
    first = start_pipeline(folder)
    try:
        deadline = time.monotonic() + 60
        while not (folder / "saves" / "daemon.lock").exists() or " tick: " not in (folder / "pipeline.out").read_text():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        started = time.monotonic()
        second = pipeline(folder, "--config", str(folder / "toloka.ini"))
        assert second.returncode != 0 and time.monotonic() - started < 30
        assert str(folder / "saves") in second.stderr and str(first.pid) in second.stderr
    finally:
        assert stop(first) == 0


def test_a_corrupt_checkpoint_stops_start_up_and_is_left_in_place(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = served
    config = tmp_path / "toloka.ini"
    config.write_text((folder / "toloka.ini").read_text())
    edit(config, "Pipeline", saves_folder=str(tmp_path / "saves"))
    (tmp_path / "saves").mkdir(mode=0o700)
    damaged = tmp_path / "saves" / "checkpoint.pkl"
    damaged.write_bytes(b"PEDESTRIAN-PIPELINE-CHECKPOINT garbage \x00\x01")
    damaged.chmod(0o600)
    result = pipeline(folder, "--config", str(config))
    assert result.returncode == 2
    assert str(damaged) in result.stderr and "Traceback" not in result.stderr
    assert damaged.read_bytes().endswith(b"garbage \x00\x01")


def test_a_wrong_token_is_reported_before_any_work(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = served
    config = tmp_path / "toloka.ini"
    config.write_text((folder / "toloka.ini").read_text())
    edit(config, "Secrets", toloka_token="wrong_entry")
    edit(config, "Pipeline", saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"))
    subprocess.run([sys.executable, "-c", "import keyring; keyring.set_password('TOLOKA', 'wrong_entry', 'not-the-token')"],
                   env=keyring_env(folder), check=True)
    result = pipeline(folder, "--config", str(config))
    assert result.returncode == 2
    assert "AUTHENTICATION_ERROR" in result.stderr or "401" in result.stderr
    assert "not-the-token" not in result.stderr + result.stdout
    assert "not-the-token" not in "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))


def test_a_missing_pool_is_named_at_start_up(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, _ = served
    config = tmp_path / "toloka.ini"
    config.write_text((folder / "toloka.ini").read_text())
    edit(config, "ValidationQuality", pool_id="999999")
    edit(config, "Pipeline", saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"))
    result = pipeline(folder, "--config", str(config))
    assert result.returncode == 2
    assert "quality pool 999999" in result.stderr and "Traceback" not in result.stderr
