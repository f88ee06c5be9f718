"""``python pipeline.py check`` and the daemon's start-up spec check, run as a person runs them.

Against the emulator's demo scenario (its crowd paused, so nothing moves by
itself): a good configuration passes every check and changes nothing on the
platform; swapped quality/relevance pool ids are named by ``check`` and stop
the daemon; a missing keyring entry is named; config mistakes come all at once.
Also the two start-up guarantees next to it: relative folders live next to
``toloka.ini`` whatever the working directory, and crowd-kit loads before the
first tick.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipelines import load_settings
from tools.harness import (
    REPO,
    admin,
    edit_ini,
    run_pipeline,
    served_emulator,
    set_faults,
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """The demo scenario on the emulator, its crowd paused, a toloka.ini and the token in a private keyring."""
    folder = tmp_path_factory.mktemp("check")
    with served_emulator(folder, seed=4, speed=1, crowd=False) as url:
        yield folder, url


def _copy(served: tuple[Path, str], tmp_path: Path) -> Path:
    """The served toloka.ini copied to ``tmp_path``, its daemon folders there too."""
    folder, _ = served
    config = tmp_path / "toloka.ini"
    shutil.copy(folder / "toloka.ini", config)
    edit_ini(config, "Pipeline", results_folder=str(tmp_path / "results"), saves_folder=str(tmp_path / "saves"),
             logs_folder=str(tmp_path / "logs"))
    return config


def _platform(url: str) -> tuple[dict[str, Any], dict[str, int]]:
    """The emulator's object counts and its requests so far, by route."""
    return admin(url, "/_emulator/state")["counts"], admin(url, "/_emulator/requests")["by_route"]


def _swap_quality_and_relevance(config: Path) -> tuple[str, str]:
    settings = load_settings(config)
    quality, relevance = settings.config.quality.pool_id, settings.config.relevance.pool_id
    edit_ini(config, "ValidationQuality", pool_id=relevance)
    edit_ini(config, "ValidationRelevance", pool_id=quality)
    return quality, relevance


def test_config_mistakes_are_reported_together_and_nothing_is_checked(tmp_path: Path) -> None:
    """Three mistakes in three sections: three lines, exit 2, and no check runs."""
    config = tmp_path / "toloka.ini"
    text = (REPO / "toloka.example.ini").read_text()
    text = text.replace("period_seconds = 60", "period_seconds = soon", 1)
    text = text.replace("min_overlap = 2", "min_overlap = zero", 1)
    text = text.replace("reject_comment = Low quality photos\n", "", 1)
    config.write_text(text)
    result = run_pipeline(tmp_path, "check", "--config", str(config))
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.splitlines()
    assert lines == [line for line in lines if line.startswith("pipeline: toloka.ini [")]
    assert any("[Pipeline] period_seconds" in line and "'soon'" in line for line in lines)
    assert any("[ValidationVisit] min_overlap" in line and "'zero'" in line for line in lines)
    assert any("[ValidationQuality] reject_comment" in line and "missing" in line for line in lines)
    assert len(lines) == 3 and "OK" not in result.stdout and "FAIL" not in result.stdout


def test_the_daemon_prints_every_config_mistake_one_line_each(tmp_path: Path) -> None:
    """The daemon refuses the same file with the same lines (exit 2), before touching anything."""
    config = tmp_path / "toloka.ini"
    text = (REPO / "toloka.example.ini").read_text().replace("concurrency = 8", "concurrency = 0", 1)
    config.write_text(text.replace("log_level = INFO", "log_level = LOUD", 1))
    result = run_pipeline(tmp_path, "--config", str(config), "--once")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 2 and all(line.startswith("pipeline: toloka.ini [Pipeline] ") for line in lines)
    assert not (tmp_path / "saves").exists()


def test_check_on_a_good_setup_passes_every_check_and_changes_nothing(served: tuple[Path, str], tmp_path: Path) -> None:
    """All OK, exit 0; the platform's objects are as before and every request it got was a GET."""
    folder, url = served
    config = _copy(served, tmp_path)
    counts, before = _platform(url)
    result = run_pipeline(folder, "check", "--config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    checks = [line for line in lines if line.startswith(("OK ", "FAIL"))]
    names = [re.match(r"(OK  |FAIL) ([^:]+):", line).group(2) for line in checks]  # type: ignore[union-attr]
    assert names == ["keyring [Secrets] toloka_token", "token", "pedestrian pool", "visit pool", "quality pool",
                     "relevance pool", "photo store"]
    assert all(line.startswith("OK ") for line in checks) and lines[-1] == "all 7 checks passed"
    counts_after, after = _platform(url)
    assert counts_after == counts
    new = {route: n - before.get(route, 0) for route, n in after.items() if n != before.get(route, 0)}
    assert new and all(route.split()[0] in ("GET", "HEAD") for route in new), new
    for name in ("saves", "logs", "results"):
        assert not (tmp_path / name).exists()


def test_swapped_quality_and_relevance_pools_are_named_by_check(served: tuple[Path, str], tmp_path: Path) -> None:
    """Both pools fail, each line names its section and pool_id and asks whether they are swapped."""
    folder, _ = served
    config = _copy(served, tmp_path)
    quality, relevance = _swap_quality_and_relevance(config)
    result = run_pipeline(folder, "check", "--config", str(config))
    assert result.returncode == 1, result.stdout + result.stderr
    quality_line = next(line for line in result.stdout.splitlines() if line.startswith("FAIL quality pool"))
    relevance_line = next(line for line in result.stdout.splitlines() if line.startswith("FAIL relevance pool"))
    assert f"[ValidationQuality] pool_id = {relevance}:" in quality_line
    assert "labels relevant/not_relevant, expected ok/bad" in quality_line and "swapped?" in quality_line
    assert f"[ValidationRelevance] pool_id = {quality}:" in relevance_line and "swapped?" in relevance_line
    assert "2 of 7 checks failed" in result.stdout


def test_swapped_pools_stop_the_daemon_before_any_task(served: tuple[Path, str], tmp_path: Path) -> None:
    """Start-up refuses (exit 2) naming section and key; no task is created, nothing accepted or rejected."""
    folder, url = served
    config = _copy(served, tmp_path)
    _, relevance = _swap_quality_and_relevance(config)
    counts, _ = _platform(url)
    result = run_pipeline(folder, "--config", str(config), "--once")
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    problems = [line for line in result.stderr.splitlines() if line.startswith("pipeline: ")]
    assert len(problems) == 2
    assert problems[0].startswith(f"pipeline: toloka.ini [ValidationQuality] pool_id = {relevance}: ")
    assert "are the quality and relevance pool ids swapped?" in problems[0]
    assert " tick: " not in result.stdout
    assert _platform(url)[0] == counts


def test_toloka_down_at_start_up_is_worth_a_retry_not_a_config_mistake(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    """Projects that cannot be read for a 503 are no wrong pool ids: exit 75 (the service restarts it), not 2."""
    folder, url = served
    config = _copy(served, tmp_path)
    set_faults(url, {"rate_503": 1.0, "path_prefix": "/api/v1/projects"})
    try:
        result = run_pipeline(folder, "--config", str(config), "--once")
    finally:
        set_faults(url, {})
    assert result.returncode == 75, result.stdout[-2000:] + result.stderr[-2000:]
    assert "this can pass by itself" in result.stderr and "pool_id" not in result.stderr
    assert " tick: " not in result.stdout


def test_a_missing_keyring_entry_is_named(served: tuple[Path, str], tmp_path: Path) -> None:
    """An entry that is not in the keyring fails its line and the checks that need it, naming it."""
    folder, _ = served
    config = _copy(served, tmp_path)
    edit_ini(config, "Secrets", toloka_token="token_of_another_account")
    result = run_pipeline(folder, "check", "--config", str(config))
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert any(line.startswith("FAIL keyring [Secrets] toloka_token:") and "'token_of_another_account'" in line
               for line in lines)
    assert any(line.startswith("FAIL token: not checked") for line in lines)
    assert any(line.startswith("OK   photo store") for line in lines)


def test_relative_folders_are_next_to_toloka_ini_whatever_the_working_directory(
    served: tuple[Path, str], tmp_path: Path
) -> None:
    """A --once run started elsewhere keeps saves, logs, results and photos beside its toloka.ini.

    Its log also shows crowd-kit loaded at start-up, before the first tick.
    """
    folder, _ = served
    home = tmp_path / "deployment"
    home.mkdir()
    config = home / "toloka.ini"
    shutil.copy(folder / "toloka.ini", config)
    edit_ini(config, "Pipeline", results_folder="results", saves_folder="state/saves", logs_folder="logs")
    edit_ini(config, "FileStore", local_folder="photos")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    result = run_pipeline(folder, "--config", "../deployment/toloka.ini", "--once", cwd=elsewhere, timeout=180)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert (home / "state" / "saves" / "checkpoint.pkl").exists()
    assert (home / "logs" / "pipeline" / "info.log").exists() and (home / "photos").is_dir()
    assert list(elsewhere.iterdir()) == []
    log = (home / "logs" / "pipeline" / "info.log").read_text()
    assert "the handlers' libraries are loaded" in log and " tick: " in result.stdout
    assert str(home / "state" / "saves") in result.stdout and "elsewhere" not in result.stdout  # ".." folded


def test_help_does_not_load_crowd_kit() -> None:
    """crowd-kit loads when the daemon starts, not when a person asks for --help."""
    result = subprocess.run([sys.executable, "-X", "importtime", "pipeline.py", "--help"], cwd=REPO,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 and "check" in result.stdout
    imported = {line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if "|" in line}
    assert "crowdkit" not in imported and "pandas" not in imported and "pipelines" not in imported
