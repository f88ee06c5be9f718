"""One finished demo run on the emulator, shared by the command tests of this folder (trace, sample).

The pedestrian demo scenario (a dozen organizations: honest, sloppy and cheating
pedestrians, checkers of varying accuracy) run by the real daemon to the end,
once per test session: its tables are what ``trace`` and ``sample`` read.
"""

from __future__ import annotations

import asyncio
import shutil
from pathlib import Path
from typing import Any

import keyring
import pandas as pd
import pytest

import demo
from tools.chromium import chromium
from tools.harness import edit_ini

SPEED = 240.0
_RUNS: dict[int, Path] = {}
REPORTS: dict[Path, dict[str, Any]] = {}  # the demo's report of each run (what its summary prints)


def finished_run(factory: pytest.TempPathFactory, seed: int = 7) -> Path:
    """The folder of a finished demo run with ``seed`` (made on the first call of the session)."""
    if seed not in _RUNS:
        folder = factory.mktemp(f"demo-run-{seed}")
        previous = keyring.get_keyring()
        keyring.set_keyring(demo.FolderKeyring(folder / "keyring"))
        try:
            report = asyncio.run(demo.rehearse(folder, seed=seed, speed=SPEED, period_s=1))
        finally:
            keyring.set_keyring(previous)
        assert report is not None, "the demo run did not finish"
        _RUNS[seed] = folder
        REPORTS[folder] = report
    return _RUNS[seed]


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def editable_copy(run: Path, tmp_path: Path, tables: str) -> Path:
    """A toloka.ini in ``tmp_path`` reading the finished ``run``, with its ``tables`` folder ("results" or
    "logs") copied to ``tmp_path`` for the test to add rows to; the other folder is read where it is."""
    shutil.copytree(run / tables, tmp_path / tables)
    config = tmp_path / "toloka.ini"
    shutil.copy(run / "toloka.ini", config)
    folders = {"results_folder": str(run / "results"), "logs_folder": str(run / "logs")}
    folders[f"{tables}_folder"] = str(tmp_path / tables)
    edit_ini(config, "Pipeline", **folders)
    return config


def open_in_chromium(folder: Path, page: Path) -> tuple[str, str]:
    """``page``'s DOM once headless Chromium loaded it (and its images), and Chromium's console lines.

    Console messages (script errors, refused loads) come on stderr with Chromium's logging on.
    """
    result = chromium(folder, "--enable-logging=stderr", "--v=0", "--dump-dom", page.as_uri())
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout, "\n".join(line for line in result.stderr.splitlines() if ":CONSOLE" in line)
