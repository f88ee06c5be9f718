"""The status token: required on other addresses, checked on every endpoint, never logged."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import aiohttp
import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from emulator.app import start_emulator
from emulator.crowd.config_out import write_ini
from emulator.crowd.scenario import load_scenario_file
from engine.config import parse_status, read_ini
from pipelines import load_settings
from common.errors import ConfigError
from pipelines import open_engine
from tools.harness import edit_ini

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
    previous = keyring.get_keyring()
    os.environ["XDG_DATA_HOME"] = str(tmp_path / "keyring")
    keyring.set_keyring(PlaintextKeyring())
    try:
        async with start_emulator(tmp_path / "emu.sqlite", token=TOKEN, seed=4, speed=1, scenario="demo") as emu:
            config = tmp_path / "toloka.ini"
            write_ini(config, url=emu.url, setup_result=emu.setup_result, scenario=load_scenario_file("demo"),
                      period_seconds=1, cursor_lag_seconds=0, local_folder=str(tmp_path / "photos"),
                      results_folder=str(tmp_path / "results"), saves_folder=str(tmp_path / "saves"),
                      logs_folder=str(tmp_path / "logs"), status_enabled=True, status_port=0)
            edit_ini(config, "Status", token="status_token")
            settings = load_settings(config)
            keyring.set_password("TOLOKA", settings.secrets.toloka_token, TOKEN)
            keyring.set_password("TOLOKA", "status_token", STATUS_TOKEN)
            async with open_engine(settings) as daemon, aiohttp.ClientSession() as http:
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
    finally:
        keyring.set_keyring(previous)
        os.environ.pop("XDG_DATA_HOME", None)
    logged = "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert "status page at http://127.0.0.1:" in logged and "a token is required" in logged
    assert STATUS_TOKEN not in logged
