"""One finished demo run on the emulator, shared by the command tests of this folder (trace, sample).

The pedestrian demo scenario (a dozen organizations: honest, sloppy and cheating
pedestrians, checkers of varying accuracy) run by the real daemon to the end,
once per test session: its tables are what ``trace`` and ``sample`` read.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import keyring
import pandas as pd
import pytest

import demo

SPEED = 240.0
_RUNS: dict[int, Path] = {}


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
    return _RUNS[seed]


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
