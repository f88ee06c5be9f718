"""``python pipeline.py`` against broken surroundings: each a clear message, nothing lost.

Already covered elsewhere, not repeated here: every kind of toloka.ini mistake
(tests/engine/test_config.py, tests/pipeline/test_daemon.py), a garbage
checkpoint at start-up (tests/pipeline/test_daemon.py), truncated, flipped,
foreign or shared checkpoints in the store itself (tests/engine/test_checkpoint.py),
torn TSV tails in the table itself (tests/tables/test_tsv.py).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from pipelines import load_settings
from tools.harness import (
    edit_ini,
    pedestrian_finished,
    pipeline_process,
    run_pipeline,
    served_emulator,
    stop,
    truth,
)
from tools.outcome import check_run, read_tsv


def pipeline(folder: Path, config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pipeline(folder, "--config", str(config), *args)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """An emulator process with a quick demo crowd, and a toloka.ini whose token is in the keyring."""
    folder = tmp_path_factory.mktemp("served")
    with served_emulator(folder, seed=6, speed=300) as url:
        yield folder, url


def own_config(served: tuple[Path, str], tmp_path: Path) -> Path:
    """A copy of the served toloka.ini with this test's own saves/, logs/ and results/."""
    config = tmp_path / "toloka.ini"
    config.write_text((served[0] / "toloka.ini").read_text())
    edit_ini(config, "Pipeline", saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"),
         results_folder=str(tmp_path / "results"))
    return config


def test_a_missing_secret_is_named_and_nothing_starts(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    edit_ini(config, "Secrets", toloka_token="entry_nobody_stored")
    result = pipeline(served[0], config)
    assert result.returncode == 2
    assert "entry_nobody_stored" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "saves" / "checkpoint.pkl").exists()


@pytest.mark.parametrize("damage", ["truncated", "shared"])
def test_a_damaged_real_checkpoint_stops_start_up_naming_it(served: tuple[Path, str], tmp_path: Path, damage: str) -> None:
    config = own_config(served, tmp_path)
    assert pipeline(served[0], config, "--once").returncode == 0
    checkpoint = tmp_path / "saves" / "checkpoint.pkl"
    data = checkpoint.read_bytes()
    if damage == "truncated":
        checkpoint.write_bytes(data[: len(data) // 2])
    else:
        checkpoint.chmod(0o666)  # writable by others: anyone could plant a pickle
    before = checkpoint.read_bytes()
    result = pipeline(served[0], config, "--once")
    assert result.returncode == 2, result.stderr
    assert str(checkpoint) in result.stderr and "Traceback" not in result.stderr
    assert checkpoint.read_bytes() == before  # left in place for a person


def test_a_logs_folder_that_cannot_be_made_is_a_clear_error(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    (tmp_path / "blocker").write_text("a file where a folder should be")
    edit_ini(config, "Pipeline", logs_folder=str(tmp_path / "blocker" / "logs"))
    result = pipeline(served[0], config, "--once")
    assert result.returncode == 2 and "blocker" in result.stderr and "Traceback" not in result.stderr


def test_a_blocked_results_folder_holds_rows_until_freed_and_a_torn_tail_is_repaired(tmp_path: Path) -> None:
    # Its own emulator: the module's is shared with daemons of the other tests, which decide its work,
    # and work Toloka already holds decided is left alone (it would write no result row to hold).
    (tmp_path / "emulator").mkdir()
    with served_emulator(tmp_path / "emulator", seed=6, speed=300) as url:
        _blocked_results_folder((tmp_path / "emulator", url), tmp_path)


def _blocked_results_folder(served: tuple[Path, str], tmp_path: Path) -> None:
    folder, url = served
    config = own_config(served, tmp_path)
    results = tmp_path / "results"
    results.write_text("a file where the results folder should be")  # root ignores permission bits; this not
    settings = load_settings(config)
    organizations = len(truth(folder / "emulator.sqlite", "org"))
    out = tmp_path / "pipeline.out"
    proc = pipeline_process(folder, "--config", str(config), out=out)
    try:
        error_log = tmp_path / "logs" / "pipeline" / "error.log"
        deadline = time.monotonic() + 120
        while not (error_log.exists() and f"cannot write {results}" in error_log.read_text()):
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()[-2000:]
            time.sleep(0.5)
        assert proc.poll() is None  # still running
        results.unlink()  # a person frees the folder; the held rows follow
        while not pedestrian_finished(url, settings.config.pedestrian.pool_id, organizations):
            assert time.monotonic() < deadline and proc.poll() is None, out.read_text()[-2000:]
            time.sleep(0.5)
        time.sleep(3)
    finally:
        assert stop(proc) == 0
    decisions = tmp_path / "logs" / "decisions.tsv"
    rows_before = read_tsv(decisions)
    with decisions.open("ab") as handle:  # what a crash mid-write on another system could leave
        handle.write(b'"2026-11-22 10:00:00"\t"half a na')
    assert pipeline(folder, config, "--once").returncode == 0
    assert read_tsv(decisions)[: len(rows_before)] == rows_before and decisions.read_bytes().endswith(b"\n")
    assert "torn record" in (tmp_path / "logs" / "pipeline" / "error.log").read_text()
    # The results written late are all there: the soak's checks hold for this run as well.
    run = tmp_path / "run"
    run.mkdir()
    for name in ("logs", "results", "toloka.ini"):
        os.symlink(tmp_path / name, run / name)
    os.symlink(folder / "emulator.sqlite", run / "emulator.sqlite")
    found = check_run(run)
    assert found.missing == 0 and found.duplicates == 0, found.problems
