"""An in-process emulator with the demo crowd and a daemon configuration pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keyring
import pytest

import demo
from emulator.app import start_emulator
from emulator.crowd.config_out import write_ini
from emulator.crowd.scenario import load_scenario_file
from engine.config import Settings
from pipelines import load_settings

TOKEN = "resilience-token"


@dataclass
class World:
    folder: Path
    emu: Any
    settings: Settings


@pytest.fixture
def folder_keyring(tmp_path: Path) -> Iterator[None]:
    """A real plain-text keyring file inside the test's folder."""
    previous = keyring.get_keyring()
    keyring.set_keyring(demo.FolderKeyring(tmp_path / "keyring"))
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
async def world(tmp_path: Path, folder_keyring: None) -> AsyncIterator[World]:
    async with start_emulator(tmp_path / "emu.sqlite", token=TOKEN, seed=3, speed=600, scenario="demo") as emu:
        write_ini(tmp_path / "toloka.ini", url=emu.url, setup_result=emu.setup_result,
                  scenario=load_scenario_file("demo"), period_seconds=1, cursor_lag_seconds=0,
                  local_folder=str(tmp_path / "photos"), results_folder=str(tmp_path / "results"),
                  saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"))
        settings = load_settings(tmp_path / "toloka.ini")
        keyring.set_password("TOLOKA", settings.secrets.toloka_token, TOKEN)
        yield World(tmp_path, emu, settings)
