"""Fixtures of the crowd tests: the demo scenario, a store in a temp folder, an HTTP session."""

from __future__ import annotations

import copy
import json
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from emulator.crowd.scenario import SCENARIO_DIR, Scenario, load_scenario_file
from emulator.store import Store


@pytest.fixture
def demo() -> Scenario:
    return load_scenario_file("demo")


@pytest.fixture
def demo_doc() -> dict[str, Any]:
    """A fresh, mutable copy of the demo scenario's JSON document."""
    return copy.deepcopy(json.loads((SCENARIO_DIR / "demo.json").read_text(encoding="utf-8")))


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store(tmp_path / "emulator.sqlite")
    yield s
    s.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session
