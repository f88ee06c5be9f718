"""An in-process emulator with the demo crowd and a daemon configuration pointing at it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from engine.config import Settings
from tools.harness import emulator_in_process

TOKEN = "resilience-token"


@dataclass
class World:
    folder: Path
    emu: Any
    settings: Settings


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with emulator_in_process(tmp_path, seed=3, speed=600, token=TOKEN) as (emu, settings):
        yield World(tmp_path, emu, settings)
