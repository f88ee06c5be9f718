"""Rotating the Toloka token while the daemon runs: no restart, no secret in any log.

The way a person rotates it (docs/operations.md): store the new token in the
keyring first (``python add_password.py toloka_token``), then revoke the old one
on Toloka; here the emulator's ``PUT /_emulator/token`` does the revoking.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from pipelines import load_settings
from tools.harness import TOKEN, admin_send, emulator, fast_config, keyring_env, start_pipeline, stop, store_token

NEW_TOKEN = "rotated-token-5c0ffee7"


def ticks(out: Path) -> list[str]:
    return [line for line in out.read_text().splitlines() if " tick: " in line] if out.exists() else []


def wait_for_ticks(proc: subprocess.Popen[str], out: Path, count: int, timeout: float = 60) -> list[str]:
    deadline = time.monotonic() + timeout
    while len(ticks(out)) < count:
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() < deadline, out.read_text()[-3000:]
        time.sleep(0.2)
    return ticks(out)


def test_the_daemon_goes_on_with_a_rotated_token_without_a_restart(tmp_path: Path) -> None:
    with emulator(tmp_path, seed=6, speed=1) as url:
        config = fast_config(tmp_path)
        entry = load_settings(config).secrets.toloka_token
        store_token(tmp_path, entry)
        out = tmp_path / "pipeline.out"
        proc = start_pipeline(tmp_path)
        try:
            before = len(wait_for_ticks(proc, out, 2))
            subprocess.run(
                [sys.executable, "-c", "import keyring,sys; keyring.set_password('TOLOKA', sys.argv[1], sys.argv[2])",
                 entry, NEW_TOKEN],
                env=keyring_env(tmp_path), check=True,
            )
            admin_send(url, "PUT", "/_emulator/token", {"token": NEW_TOKEN})  # the old token stops working
            after = wait_for_ticks(proc, out, before + 3)[before:]
            assert proc.poll() is None  # the same process: no restart
        finally:
            code = stop(proc, signal.SIGTERM, timeout=30)
    assert code == 0
    assert all("errors 0" in line for line in after), after
    info = (tmp_path / "logs" / "pipeline" / "info.log").read_text()
    assert "a changed token was read from the keyring" in info
    written = out.read_text() + "".join(p.read_text() for p in (tmp_path / "logs").rglob("*.log"))
    assert NEW_TOKEN not in written and TOKEN not in written


async def test_the_redactor_learns_the_token_read_after_a_401(tmp_path: Path) -> None:
    import asyncio

    import aiohttp
    import keyring
    from keyrings.alt.file import PlaintextKeyring

    from emulator.app import start_emulator
    from emulator.crowd.config_out import write_ini
    from emulator.crowd.scenario import load_scenario_file
    from pipelines import open_engine

    previous = keyring.get_keyring()
    os.environ["XDG_DATA_HOME"] = str(tmp_path / "keyring")
    keyring.set_keyring(PlaintextKeyring())
    try:
        async with start_emulator(tmp_path / "emu.sqlite", token=TOKEN, seed=4, speed=1, scenario="demo") as emu:
            write_ini(tmp_path / "toloka.ini", url=emu.url, setup_result=emu.setup_result,
                      scenario=load_scenario_file("demo"), period_seconds=1, cursor_lag_seconds=0,
                      local_folder=str(tmp_path / "photos"), results_folder=str(tmp_path / "results"),
                      saves_folder=str(tmp_path / "saves"), logs_folder=str(tmp_path / "logs"))
            settings = load_settings(tmp_path / "toloka.ini")
            keyring.set_password("TOLOKA", settings.secrets.toloka_token, TOKEN)
            async with open_engine(settings) as daemon:
                await daemon.check_pools()
                await asyncio.to_thread(keyring.set_password, "TOLOKA", settings.secrets.toloka_token, NEW_TOKEN)
                async with aiohttp.ClientSession() as session, session.put(
                        f"{emu.url}/_emulator/token", json={"token": NEW_TOKEN},
                        headers={"Authorization": f"OAuth {TOKEN}"}) as resp:
                    assert resp.status == 200
                summary = await daemon.tick()
                assert summary.errors == 0 and daemon.client.http.token_changes == 1
                # A careless log line after the rotation: the new value is redacted in every file.
                logging.getLogger("pipeline").error("careless: %s", NEW_TOKEN)
        error_log = (tmp_path / "logs" / "pipeline" / "error.log").read_text()
        assert "careless: [REDACTED:toloka_token]" in error_log and NEW_TOKEN not in error_log
    finally:
        keyring.set_keyring(previous)
        os.environ.pop("XDG_DATA_HOME", None)
