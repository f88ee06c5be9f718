"""State survives an emulator restart on the same database; the CLI starts and stops cleanly."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import EmulatorThread, start_emulator
from emulator.ids import utcnow
from emulator.store import json_dumps, json_loads

API = "/api/v1"
REPO = Path(__file__).resolve().parents[2]


async def _get(url: str, token: str, path: str) -> tuple[int, Any]:
    async with aiohttp.ClientSession(url, headers={"Authorization": f"OAuth {token}"}) as s:
        async with s.get(path) as r:
            return r.status, json_loads(await r.read())


async def _post(url: str, token: str, path: str, body: Any) -> tuple[int, Any]:
    async with aiohttp.ClientSession(url, headers={"Authorization": f"OAuth {token}",
                                                   "Content-Type": "application/json"}) as s:
        async with s.post(path, data=json_dumps(body)) as r:
            return r.status, json_loads(await r.read())


async def test_restart_on_the_same_db_keeps_every_object(tmp_path: Path, token: str) -> None:
    db = tmp_path / "emu.sqlite"
    async with start_emulator(db, token=token) as emu:
        _, project = await _post(emu.url, token, API + "/projects", {"public_name": "P"})
        _, pool = await _post(emu.url, token, API + "/pools", {"project_id": project["id"]})
        _, op = await _post(emu.url, token, f"{API}/pools/{pool['id']}/open", None)
        _, tasks = await _post(emu.url, token, API + "/tasks?async_mode=false", [
            {"pool_id": pool["id"], "input_values": {"i": n}, "overlap": 1} for n in range(3)])
        task_ids = [tasks["items"][str(n)]["id"] for n in range(3)]
        a = emu.store.create_assignment(pool["id"], "w1", [task_ids[0]], utcnow())
        att = emu.store.add_attachment(a["id"], "p.jpg", "image/jpeg", b"jpeg!", utcnow())
        emu.store.submit_assignment(a["id"], [{"output_values": {"photo": att["id"]}}], utcnow())
        _, bonus = await _post(emu.url, token, API + "/user-bonuses", {
            "user_id": "w1", "amount": Decimal("0.25"), "assignment_id": a["id"],
            "without_message": True})
        _, before = await _get(emu.url, token, f"{API}/assignments/{a['id']}")

    async with start_emulator(db, token=token) as emu:
        assert (await _get(emu.url, token, f"{API}/pools/{pool['id']}"))[1]["status"] == "OPEN"
        assert (await _get(emu.url, token, f"{API}/operations/{op['id']}"))[1] == op
        _, found = await _get(emu.url, token, f"{API}/tasks?pool_id={pool['id']}&sort=id")
        assert [t["id"] for t in found["items"]] == task_ids
        assert (await _get(emu.url, token, f"{API}/assignments/{a['id']}"))[1] == before
        _, got = await _get(emu.url, token, f"{API}/user-bonuses/{bonus['id']}")
        assert got["amount"] == Decimal("0.25")
        async with aiohttp.ClientSession(emu.url, headers={"Authorization": f"OAuth {token}"}) as s:
            async with s.get(f"{API}/attachments/{att['id']}/download") as r:
                assert await r.read() == b"jpeg!"
        _, more = await _post(emu.url, token, API + "/tasks", {
            "pool_id": pool["id"], "input_values": {"i": 9}, "overlap": 1})
        assert more["id"] > task_ids[-1]                     # ids keep their order
        _, pool2 = await _post(emu.url, token, API + "/pools", {"project_id": project["id"]})
        assert int(pool2["id"]) > int(pool["id"])


def test_emulator_thread_serves_sync_callers(tmp_path: Path, token: str) -> None:
    with EmulatorThread(tmp_path / "t.sqlite", token=token) as emu:
        status, body = asyncio.run(_get(emu.url, token, API + "/requester"))
        assert status == 200 and body["balance"] > 0
        project = emu.call(emu.store.create_project, {"public_name": "x"}, utcnow())
        assert asyncio.run(_get(emu.url, token, f"{API}/projects/{project['id']}"))[0] == 200


async def _start_cli(*args: str) -> tuple[asyncio.subprocess.Process, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "emulator", *args, cwd=REPO,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.stdout is not None
    while True:
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert line, "the emulator exited before it printed its URL"
        found = re.search(r"listening on (http://127\.0\.0\.1:\d+) \(API under /api/v1\)", line)
        if found:
            return proc, found.group(1)


async def _stop_cli(proc: asyncio.subprocess.Process, sig: int) -> bytes:
    proc.send_signal(sig)
    rest, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    return rest


async def test_cli_with_demo_scenario_restarts_without_loading_it_twice(
        tmp_path: Path, token: str) -> None:
    db, ini = tmp_path / "cli.sqlite", tmp_path / "toloka.ini"
    common = ["--port", "0", "--db", str(db), "--token", token, "--scenario", "demo",
              "--speed", "50", "--seed", "1"]
    proc, url = await _start_cli(*common, "--config-out", str(ini))
    _, state = await _get(url, token, "/_emulator/state")
    counts = state["counts"]
    assert counts["pools"] >= 1 and counts["projects"] >= 1
    assert url in ini.read_text()
    assert b"stopped" in await _stop_cli(proc, signal.SIGTERM)

    proc, url = await _start_cli(*common)
    _, state = await _get(url, token, "/_emulator/state")
    assert state["counts"]["pools"] == counts["pools"]
    assert state["counts"]["projects"] == counts["projects"]
    assert state["counts"]["skills"] == counts["skills"]
    await _stop_cli(proc, signal.SIGINT)


async def test_cli_without_scenario(tmp_path: Path, token: str) -> None:
    proc, url = await _start_cli("--port", "0", "--db", str(tmp_path / "x.sqlite"),
                                 "--token", token)
    status, body = await _get(url, token, API + "/requester")
    assert status == 200
    assert (await _get(url, "wrong", API + "/requester"))[0] == 401
    await _stop_cli(proc, signal.SIGTERM)


async def test_cli_with_the_find_items_scenario_writes_its_ini(tmp_path: Path, token: str) -> None:
    db, ini = tmp_path / "find.sqlite", tmp_path / "toloka.ini"
    proc, url = await _start_cli("--port", "0", "--db", str(db), "--token", token, "--scenario", "find_items",
                                 "--seed", "2", "--config-out", str(ini))
    _, state = await _get(url, token, "/_emulator/state")
    assert state["counts"]["pools"] == 3 and state["crowd"]["kind"] == "find_items"
    text = ini.read_text()
    assert f"environment = {url}" in text and "definition = find_items" in text
    assert "[FindItemsComparison]" in text and "[PedestrianProject]" not in text
    await _stop_cli(proc, signal.SIGTERM)
