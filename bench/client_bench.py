"""Benchmark: one assignment-cursor fetch of 5,000 new SUBMITTED assignments.

Starts the Toloka emulator in-process on 127.0.0.1, creates a pool with 5,000
tasks (through the client) and 5,000 submitted assignments (through the
emulator's store), then times one ``AssignmentCursor.fetch`` and reads the
emulator's request counters (``GET /_emulator/requests``) to report HTTP
requests per new assignment. Two layouts: distinct timestamps (2 ms apart), and
every assignment sharing one timestamp (the cursor's tie walk).

    python bench/client_bench.py [--n 5000] [--page-size 1000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from common.secrets import Secret
from emulator.app import start_emulator
from engine.cursor import AssignmentCursor
from toloka_client import TolokaClient, TolokaHttp, jsonio, operation_id_for

TOKEN = "bench-token"


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


async def admin(session: aiohttp.ClientSession, url: str, method: str, path: str, body: object = None) -> Any:
    data = jsonio.dumps(body) if body is not None else None
    headers = {"Authorization": f"OAuth {TOKEN}", "Content-Type": "application/json"}
    async with session.request(method, url + path, data=data, headers=headers) as resp:
        text = await resp.text()
        if resp.status >= 300:
            raise RuntimeError(f"{method} {path}: {resp.status} {text}")
        return jsonio.loads(text) if text else None


async def run_case(n: int, page_size: int, ties: bool) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        async with start_emulator(Path(tmp) / "bench.db", token=TOKEN, seed=0) as emu, \
                aiohttp.ClientSession() as session:
            project = await admin(session, emu.url, "POST", "/api/v1/projects", {"public_name": "bench"})
            pool = await admin(session, emu.url, "POST", "/api/v1/pools",
                               {"project_id": project["id"], "private_name": "bench",
                                "reward_per_assignment": 0.01})
            pool_id = str(pool["id"])
            async with TolokaClient(TolokaHttp(emu.url, Secret("toloka_token", TOKEN))) as client:
                tasks = [{"pool_id": pool_id, "input_values": {"n": i}, "overlap": 1} for i in range(n)]
                created = await client.create_tasks(tasks, operation_id=operation_id_for("bench", pool_id))
                base = utcnow() - timedelta(minutes=30)
                set_up = time.perf_counter()
                for i, task in enumerate(created.created):
                    at = base if ties else base + timedelta(milliseconds=2 * i)
                    a = emu.store.create_assignment(pool_id, f"w{i % 97}", [str(task.id)], at)
                    emu.store.submit_assignment(a["id"], [{"output_values": {"result": "OK"}}], at)
                set_up = time.perf_counter() - set_up

                cursor = AssignmentCursor(client, pool_id, "submitted", page_size=page_size)
                before = await admin(session, emu.url, "GET", "/_emulator/requests")
                started = time.perf_counter()
                batch = await cursor.fetch(utcnow())
                elapsed = time.perf_counter() - started
                after = await admin(session, emu.url, "GET", "/_emulator/requests")
                route = "GET /api/v1/assignments"
                counted = after["by_route"].get(route, 0) - before["by_route"].get(route, 0)
                if len(batch.events) != n or len({e.assignment.id for e in batch.events}) != n:
                    raise SystemExit(f"cursor returned {len(batch.events)} events, expected {n} distinct")
                return {"events": len(batch.events), "requests": counted, "seconds": elapsed,
                        "setup_seconds": set_up}


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=5000)
    parser.add_argument("--page-size", type=int, default=1000)
    args = parser.parse_args()
    for ties in (False, True):
        r = await run_case(args.n, args.page_size, ties)
        layout = "one shared timestamp" if ties else "distinct timestamps"
        print(f"{layout:>22}: {r['events']:.0f} events, {r['requests']:.0f} HTTP requests "
              f"({r['requests'] / r['events']:.4f} per assignment), one fetch {r['seconds']:.2f} s "
              f"(page size {args.page_size}; store set-up {r['setup_seconds']:.1f} s)")


if __name__ == "__main__":
    asyncio.run(main())
