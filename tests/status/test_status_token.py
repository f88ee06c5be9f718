"""The status token: required on other addresses, checked on every endpoint, never logged."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import keyring
import pytest

from common.errors import ConfigError
from engine.config import parse_status, read_ini
from pipelines import load_settings, open_engine
from tools.harness import edit_ini, emulator_in_process

TOKEN = "status-test-api-token"
STATUS_TOKEN = "s3cret-status-token-value"


def test_a_non_loopback_host_without_a_token_is_a_config_error(tmp_path: Path) -> None:
    path = tmp_path / "toloka.ini"
    path.write_text("[Status]\nenabled = true\nhost = 0.0.0.0\n")
    with pytest.raises(ConfigError) as caught:
        parse_status(read_ini(path))
    assert "[Status] token" in str(caught.value) and "0.0.0.0" in str(caught.value)
    path.write_text("[Status]\nenabled = true\nhost = 0.0.0.0\ntoken = status_token\n")
    assert parse_status(read_ini(path)).token == "status_token"
    path.write_text("[Status]\nenabled = true\nhost = ::1\n")
    assert parse_status(read_ini(path)).loopback


async def test_every_endpoint_wants_the_token_and_compares_it_exactly(tmp_path: Path) -> None:
    async with emulator_in_process(tmp_path, seed=4, speed=1, token=TOKEN, status_enabled=True, status_port=0):
        config = tmp_path / "toloka.ini"
        edit_ini(config, "Status", token="status_token")
        keyring.set_password("TOLOKA", "status_token", STATUS_TOKEN)
        async with open_engine(load_settings(config)) as daemon, aiohttp.ClientSession() as http:
            await daemon.check_pools()
            await daemon.tick()
            assert daemon.status_url is not None and daemon.status_url.startswith("http://127.0.0.1:")
            for path in ("", "status", "metrics"):
                url = daemon.status_url + path
                async with http.get(url) as resp:
                    assert resp.status == 401 and "Bearer" in resp.headers["WWW-Authenticate"]
                for wrong in ("Bearer " + STATUS_TOKEN[:-1], "Bearer " + STATUS_TOKEN + "x", "Bearer ",
                              "Basic " + STATUS_TOKEN):
                    async with http.get(url, headers={"Authorization": wrong}) as resp:
                        assert resp.status == 401, wrong
                async with http.get(url, headers={"Authorization": "Bearer " + STATUS_TOKEN}) as resp:
                    assert resp.status == 200
                async with http.get(url, params={"token": STATUS_TOKEN}) as resp:
                    assert resp.status == 200  # how the page is opened in a browser
            async with http.get(daemon.status_url + "status", params={"token": STATUS_TOKEN}) as resp:
                body = await resp.json()
            assert body["ticks"] == 1 and STATUS_TOKEN not in str(body)
            await asyncio.sleep(0)
    logged = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "status page at http://127.0.0.1:" in logged and "a token is required" in logged
    assert STATUS_TOKEN not in logged
