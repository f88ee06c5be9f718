"""Fixtures: the real emulator over loopback HTTP, a client pointed at it, fault control."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from client_helpers import TOKEN, Admin, Sleeper, make_client

from toloka_client import TolokaClient


@pytest.fixture
async def emu(tmp_path: Path) -> AsyncIterator[Any]:
    from emulator.app import start_emulator

    async with start_emulator(tmp_path / "emulator.db", token=TOKEN, seed=1) as emulator:
        yield emulator


@pytest.fixture
async def admin(emu: Any) -> AsyncIterator[Admin]:
    async with aiohttp.ClientSession() as session:
        yield Admin(emu, session)


@pytest.fixture
def sleeper() -> Sleeper:
    return Sleeper()


@pytest.fixture
async def client(emu: Any, sleeper: Sleeper) -> AsyncIterator[TolokaClient]:
    async with make_client(emu.url, sleeper) as c:
        yield c
