"""A token rotated while the client runs: after a 401 the token is read again, once.

The emulator's accepted token is changed through its admin API (``PUT
/_emulator/token``), the way Toloka stops accepting a revoked key; the client
reads its token from a real keyrings.alt file keyring, as the daemon does.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from client_helpers import TOKEN, Admin, Sleeper

from common.secrets import SERVICE, Secret, read_secret
from toloka_client import AuthenticationError, HttpSettings, RetryPolicy, TolokaClient, TolokaHttp, operation_id_for

NEW_TOKEN = "TOKEN-r0tat3d-b41e07"
ENTRY = "toloka_token"


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A keyrings.alt plaintext keyring under ``tmp_path`` holding the emulator's token."""
    from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-untyped]  # ships no types

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    previous = keyring.get_keyring()
    keyring.set_keyring(PlaintextKeyring())
    keyring.set_password(SERVICE, ENTRY, TOKEN)
    try:
        yield
    finally:
        keyring.set_keyring(previous)


class CountingReader:
    """The daemon's token source (``read_secret``), counting how often it is asked."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> Secret:
        self.calls += 1
        return read_secret(ENTRY)


def rotating_client(url: str, sleeper: Sleeper, reader: CountingReader | None) -> TolokaClient:
    settings = HttpSettings(connect_timeout_s=5, total_timeout_s=30, retry=RetryPolicy(max_attempts=3))
    http = TolokaHttp(url, read_secret(ENTRY), settings, sleep=sleeper, rand=lambda: 0.5, reread_token=reader)
    return TolokaClient(http, sleep=sleeper, operation_poll_s=0.01)


async def rotate(admin: Admin) -> None:
    """The new token goes into the keyring first, then the platform stops accepting the old one."""
    await asyncio.to_thread(keyring.set_password, SERVICE, ENTRY, NEW_TOKEN)
    await admin.call("PUT", "/_emulator/token", {"token": NEW_TOKEN})


async def test_a_rotated_token_is_read_again_and_the_requests_go_on(
    file_keyring: None, emu: Any, admin: Admin, sleeper: Sleeper, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    pool_id = await admin.create_pool()
    reader = CountingReader()
    async with rotating_client(emu.url, sleeper, reader) as client:
        await client.get_requester()
        await rotate(admin)
        # Ten requests refused together: one keyring read, every one answered with the new token.
        pools = await asyncio.gather(*(client.get_pool(pool_id) for _ in range(10)))
        assert {p.id for p in pools} == {pool_id}
        assert reader.calls == 1 and client.http.token_changes == 1
        # A write refused with the old token is sent again, and applied once.
        admin.headers = {"Authorization": f"OAuth {NEW_TOKEN}"}
        await admin.call("PUT", "/_emulator/token", {"token": TOKEN})
        await asyncio.to_thread(keyring.set_password, SERVICE, ENTRY, TOKEN)
        tasks = [{"pool_id": pool_id, "input_values": {"n": 1}, "overlap": 1}]
        result = await client.create_tasks(tasks, operation_id=operation_id_for("rotated", pool_id))
        assert len(result.created) == 1 and reader.calls == 2
        assert emu.store.counts()["tasks"] == 1
        assert sleeper.delays == []  # a changed token is no failure to back off from
        assert TOKEN not in repr(client.http) and NEW_TOKEN not in repr(client.http)
    assert any("a changed token was read" in r.getMessage() for r in caplog.records)
    assert all(NEW_TOKEN not in r.getMessage() and TOKEN not in r.getMessage() for r in caplog.records)


async def test_an_unchanged_token_lets_the_401_surface_after_one_read(
    file_keyring: None, emu: Any, admin: Admin, sleeper: Sleeper
) -> None:
    reader = CountingReader()
    async with rotating_client(emu.url, sleeper, reader) as client:
        await client.get_requester()
        await admin.call("PUT", "/_emulator/token", {"token": NEW_TOKEN})  # revoked, keyring not updated
        with pytest.raises(AuthenticationError) as refused:
            await client.get_requester()
        assert refused.value.status == 401
        assert reader.calls == 1 and client.http.token_changes == 0
        # The next refusal reads again: the keyring may have been updated by then.
        await asyncio.to_thread(keyring.set_password, SERVICE, ENTRY, NEW_TOKEN)
        await client.get_requester()
        assert reader.calls == 2 and client.http.token_changes == 1


async def test_without_a_token_source_a_401_is_not_retried(
    file_keyring: None, emu: Any, admin: Admin, sleeper: Sleeper
) -> None:
    async with rotating_client(emu.url, sleeper, None) as client:
        await rotate(admin)
        before = emu.requests["GET /api/v1/requester"]
        with pytest.raises(AuthenticationError):
            await client.get_requester()
        assert emu.requests["GET /api/v1/requester"] == before + 1
        assert client.http.token_changes == 0


def test_the_emulator_refuses_a_blank_token(tmp_path: Path) -> None:
    async def go() -> None:
        import aiohttp

        from emulator.app import start_emulator

        async with start_emulator(tmp_path / "e.db", token=TOKEN) as emu, aiohttp.ClientSession() as session:
            headers = {"Authorization": f"OAuth {TOKEN}"}
            for body in ({"token": ""}, {"token": " x"}, {"nothing": 1}, ["x"]):
                async with session.put(f"{emu.url}/_emulator/token", json=body, headers=headers) as resp:
                    assert resp.status == 400, body
            async with session.get(f"{emu.url}/api/v1/requester", headers=headers) as resp:
                assert resp.status == 200  # unchanged

    asyncio.run(go())
