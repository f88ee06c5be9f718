"""Rotating the Toloka token while the daemon runs: no restart, no secret in any log.

The way a person rotates it (docs/operations.md): store the new token in the
keyring first (``python add_password.py toloka_token``), then revoke the old one
on Toloka; here the emulator's ``PUT /_emulator/token`` does the revoking.
"""

from __future__ import annotations

import logging
import signal
from pathlib import Path

from pipelines import load_settings
from tools.harness import (
    TOKEN,
    admin_send,
    emulator_in_process,
    served_emulator,
    set_password,
    start_pipeline,
    stop,
    ticks,
    wait_for_ticks,
)

NEW_TOKEN = "rotated-token-5c0ffee7"


def test_the_daemon_goes_on_with_a_rotated_token_without_a_restart(tmp_path: Path) -> None:
    with served_emulator(tmp_path, seed=6, speed=1) as url:
        entry = load_settings(tmp_path / "toloka.ini").secrets.toloka_token
        out = tmp_path / "pipeline.out"
        proc = start_pipeline(tmp_path)
        try:
            wait_for_ticks(proc, out, 2)
            set_password(tmp_path, entry, NEW_TOKEN)
            admin_send(url, "PUT", "/_emulator/token", {"token": NEW_TOKEN})  # the old token stops working
            # Counted from here: ticks printed while the keyring was being written ran on the old token.
            # The first line after may be a tick that was already under way; the next three are all on the new one.
            before = len(ticks(out)) + 1
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

    from pipelines import open_engine

    async with emulator_in_process(tmp_path, seed=4, speed=1) as (emu, settings), open_engine(settings) as daemon:
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
