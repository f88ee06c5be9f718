"""Benchmark of the emulator's assignment search (``python bench/emulator_bench.py``).

Starts the emulator in a thread (EmulatorThread), loads 5,000 SUBMITTED
assignments into one pool through the store (as the crowd does), then measures
``GET /api/v1/assignments?pool_id=..&limit=1000&sort=submitted`` from a client in
a *separate process* (so client and server do not share a GIL), with and without
a ``submitted_gte/lte`` window, plus id paging. Every loop is bounded in count.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from emulator.app import EmulatorThread
from emulator.ids import fmt_time, utcnow

TOKEN = "bench-token"


def load(emu: EmulatorThread, count: int) -> tuple[str, list[str], list[str]]:
    """Create a pool with ``count`` submitted assignments; returns (pool, times, ids)."""

    def work() -> tuple[str, list[str], list[str]]:
        store = emu.store
        base = utcnow() - timedelta(hours=2)
        project = store.create_project({"public_name": "bench"}, base)
        pool = store.create_pool({"project_id": project["id"],
                                  "reward_per_assignment": 0.05}, base)
        store.open_pool(pool["id"], base)
        tasks = store.create_tasks(pool["id"], [
            {"input_values": {"image": f"http://photos/{i}.jpg", "name": f"Shop {i}"},
             "overlap": 1} for i in range(count)], base)
        times, ids = [], []
        for i, task in enumerate(tasks):
            at = base + timedelta(milliseconds=10 * i)
            a = store.create_assignment(pool["id"], f"worker{i % 50}", [task["id"]], at)
            done = store.submit_assignment(
                a["id"], [{"output_values": {"photo": f"att{i}", "coordinates": "55.7,37.6",
                                             "comment": "ok"}}], at + timedelta(seconds=5))
            times.append(done["submitted"])
            ids.append(done["id"])
        return pool["id"], times, ids

    return emu.call(work)


CLIENT = r"""
import asyncio, json, statistics, sys, time
import aiohttp

async def main(cfg):
    headers = {"Authorization": "OAuth " + cfg["token"]}
    out = {}
    async with aiohttp.ClientSession(cfg["url"], headers=headers) as s:
        async def one(params, sem, counter):
            async with sem:
                async with s.get("/api/v1/assignments", params=params) as r:
                    body = await r.read()
                    assert r.status == 200, body[:200]
                    counter.append(body.count(b'"task_suite_id"'))

        for name, params in cfg["cases"].items():
            for conc in cfg["concurrency"]:
                sem = asyncio.Semaphore(conc)
                await asyncio.gather(*(one(params, sem, []) for _ in range(3)))   # warm-up
                rates, items = [], []
                for _ in range(cfg["rounds"]):
                    n = cfg["requests"]
                    started = time.perf_counter()
                    await asyncio.wait_for(
                        asyncio.gather(*(one(params, sem, items) for _ in range(n))), 300)
                    rates.append(n / (time.perf_counter() - started))
                out[f"{name} x{conc}"] = {"median_rps": statistics.median(rates),
                                          "min_rps": min(rates), "max_rps": max(rates),
                                          "items_per_request": sum(items) / len(items)}
    print(json.dumps(out))

asyncio.run(main(json.loads(sys.argv[1])))
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--assignments", type=int, default=5000)
    parser.add_argument("--requests", type=int, default=40, help="requests per round (bounded)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case; median shown")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp, \
            EmulatorThread(Path(tmp) / "bench.sqlite", token=TOKEN) as emu:
        started = time.perf_counter()
        pool_id, times, ids = load(emu, args.assignments)
        print(f"loaded {args.assignments} submitted assignments in "
              f"{time.perf_counter() - started:.1f} s (pool {pool_id})")
        lte = fmt_time(utcnow())
        quarter = len(times) // 4
        cases = {
            "sort=submitted limit=1000 (first page)": {
                "pool_id": pool_id, "limit": "1000", "sort": "submitted",
                "submitted_gte": "1970-01-01T00:00:00", "submitted_lte": lte},
            "sort=submitted limit=1000 window gte/lte (1000 of 5000)": {
                "pool_id": pool_id, "limit": "1000", "sort": "submitted",
                "submitted_gte": times[quarter], "submitted_lte": times[quarter + 999]},
            "sort=id limit=1000 id_gt (middle page)": {
                "pool_id": pool_id, "limit": "1000", "sort": "id", "id_gt": ids[2 * quarter]},
            "status=SUBMITTED sort=-submitted limit=1000 (full sort path)": {
                "pool_id": pool_id, "limit": "1000", "sort": "-submitted",
                "status": "SUBMITTED"},
        }
        config = {"url": emu.url, "token": TOKEN, "cases": cases, "requests": args.requests, "rounds": args.rounds,
                  "concurrency": [1, 4]}
        proc = subprocess.run([sys.executable, "-c", CLIENT, json.dumps(config)],
                              capture_output=True, text=True, timeout=900, check=False)
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        results = json.loads(proc.stdout)
        print(f"{'case (client in another process; concurrency xN)':<66} {'median':>7} "
              f"{'min':>7} {'max':>7} {'items/s':>9}  (requests/second)")
        for name, r in results.items():
            print(f"{name:<66} {r['median_rps']:>7.1f} {r['min_rps']:>7.1f} "
                  f"{r['max_rps']:>7.1f} {r['median_rps'] * r['items_per_request']:>9.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
