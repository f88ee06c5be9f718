"""The real daemon's ticks: one with N new pedestrian assignments (default 5,000), then steady ticks.

    python bench/tick_bench.py [--assignments 5000] [--photos 3] [--concurrency 8]
                               [--steady-ticks 10] [--answers-per-tick 20]

The emulator (no simulated crowd) serves a database prepared beforehand: N
submitted pedestrian assignments, each with ``--photos`` small JPEG
attachments. The daemon runs in this process. First tick: it fetches the N
assignments, stores every photo in a local folder, creates N visit tasks and
writes N decision rows. Printed: the tick's wall time, the HTTP requests it
made (from the emulator's counters) per new assignment, by route, and the
checkpoint size afterwards.

Then the steady phase, the daemon's everyday life: N assignments are in
flight, and before each of ``--steady-ticks`` ticks, three checkers answer
``--answers-per-tick`` visit tasks. Printed: the daemon's own CPU per tick
(the event-loop thread's CPU time; the emulator runs in another thread), so
work proportional to the whole state per tick shows up here. The same script
runs against the release before the engine split (it falls back to that
release's imports), for before/after figures.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import sys
import tempfile
import time
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"


def jpeg(n: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 120), (n % 256, 80, 160)).save(out, "JPEG", quality=80)
    return out.getvalue()


def prepare(db: Path, assignments: int, photos: int) -> dict[str, str]:
    from emulator.crowd.scenario import load_scenario_file
    from emulator.crowd.simulator import _project_doc  # the task specs the daemon checks its pools against
    from emulator.store import Store

    now = datetime.now(UTC).replace(tzinfo=None)
    past = now - timedelta(hours=1)
    scenario = load_scenario_file("realistic")
    store = Store(db)
    try:
        pools = {}
        for name in ("pedestrian", "visit", "quality", "relevance"):
            project = store.create_project(_project_doc(scenario, name), past)  # type: ignore[arg-type]
            pool = store.create_pool({"project_id": project["id"], "private_name": name, "reward_per_assignment": 0.01,
                                      "auto_accept_solutions": name != "pedestrian", "auto_accept_period_day": 7}, past)
            store.open_pool(pool["id"], past)
            pools[name] = pool["id"]
        skills = {name: store.create_skill(name, past)["id"] for name in ("visit", "quality", "relevance")}
        items = [{"input_values": {"name": f"Org {i}", "address": f"Street {i}", "coordinates": "55.7,37.6"},
                  "overlap": 1} for i in range(assignments)]
        tasks = store.create_tasks(pools["pedestrian"], items, past)
        fields = ["imgs_facade", "name_business", "imgs_name_address", "hoo_business"][:photos]
        for i, task in enumerate(tasks):
            a = store.create_assignment(pools["pedestrian"], f"walker{i % 50}", [task["id"]], past)
            output = {"verdict": "ok", "worker_coordinates": "55.7,37.6", "comment": "fine"}
            for n, field in enumerate(fields):
                output[field] = store.add_attachment(a["id"], f"{field}.jpg", "image/jpeg", jpeg(i + n), past)["id"]
            store.submit_assignment(a["id"], [{"output_values": output}], past + timedelta(milliseconds=i))
        return {**{f"pool_{k}": v for k, v in pools.items()}, **{f"skill_{k}": v for k, v in skills.items()}}
    finally:
        store.close()


def write_config(folder: Path, url: str, ids: dict[str, str], concurrency: int) -> Path:
    text = (ROOT / "toloka.example.ini").read_text(encoding="utf-8")
    text = text.replace("environment = http://127.0.0.1:8000", f"environment = {url}")
    text = re.sub(r"(?m)^concurrency = .*$", f"concurrency = {concurrency}", text)
    for section, name in (("PedestrianProject", "pedestrian"), ("ValidationVisit", "visit"),
                          ("ValidationQuality", "quality"), ("ValidationRelevance", "relevance")):
        block = re.compile(rf"(\[{section}\][^\[]*?)pool_id = \S+", re.S)
        text = block.sub(rf"\g<1>pool_id = {ids['pool_' + name]}", text)
        if name != "pedestrian":
            text = re.compile(rf"(\[{section}\][^\[]*?)skill_id = \S+", re.S).sub(
                rf"\g<1>skill_id = {ids['skill_' + name]}", text)
    for key, value in (("results_folder", folder / "results"), ("saves_folder", folder / "saves"),
                       ("logs_folder", folder / "logs"), ("local_folder", folder / "photos")):
        text = re.sub(rf"(?m)^{key} = .*$", f"{key} = {value}", text)
    text = re.sub(r"(?m)^log_level = .*$", "log_level = WARNING", text)
    text = re.sub(r"(?m)^cursor_lag_seconds = .*$", "cursor_lag_seconds = 0", text)
    path = folder / "toloka.ini"
    path.write_text(text, encoding="utf-8")
    return path


def requests_by_route(url: str) -> dict[str, int]:
    request = urllib.request.Request(f"{url}/_emulator/requests", headers={"Authorization": f"OAuth {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read())["by_route"])


def answer_visit_tasks(store: Any, visit_pool: str, count: int, round_: int) -> int:
    """Three checkers answer ``count`` unanswered visit tasks "yes" (the pool auto-accepts). On the emulator's loop."""
    now = datetime.now(UTC).replace(tzinfo=None) - timedelta(milliseconds=5)
    answered = 0
    for task in list(store.tasks.values()):
        if answered >= count:
            break
        if task["pool_id"] != visit_pool or task.get("_bench_done"):
            continue
        task["_bench_done"] = True
        for checker in range(3):
            a = store.create_assignment(visit_pool, f"checker{round_}-{checker}", [task["id"]], now)
            store.submit_assignment(a["id"], [{"output_values": {"result": "yes"}}], now, visible_after=now)
        answered += 1
    return answered


async def run_ticks(config: Path, emu: Any, visit_pool: str, steady: int, per_tick: int
                    ) -> tuple[float, int, object, list[tuple[float, float]]]:
    try:
        from pipelines import load_settings, open_engine
    except ImportError:  # the release before the engine split
        # Kept so the bench can time that release too; its names differ from today's, hence the ignores.
        from engine.config import load_settings  # type: ignore[assignment]  # that release's signature
        from engine.runner import open_daemon as open_engine  # type: ignore[attr-defined,no-redef]  # that release's

    settings = load_settings(config)
    steady_ticks: list[tuple[float, float]] = []
    async with open_engine(settings) as daemon:
        await daemon.check_pools()
        started = time.perf_counter()
        summary = await daemon.tick()
        elapsed = time.perf_counter() - started
        size = (settings.pipeline.saves_folder / "checkpoint.pkl").stat().st_size
        for round_ in range(steady):
            emu.call(answer_visit_tasks, emu.store, visit_pool, per_tick, round_)
            await asyncio.sleep(0.01)
            cpu, wall = time.thread_time(), time.perf_counter()
            await daemon.tick()
            steady_ticks.append((time.thread_time() - cpu, time.perf_counter() - wall))
    return elapsed, size, summary, steady_ticks


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=5000)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--steady-ticks", type=int, default=10)
    parser.add_argument("--answers-per-tick", type=int, default=20)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tick-bench-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_DATA_HOME"] = str(folder / "keyring")
        import keyring
        from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-untyped]  # keyrings.alt ships no types

        keyring.set_keyring(PlaintextKeyring())
        keyring.set_password("TOLOKA", "toloka_token", TOKEN)
        started = time.perf_counter()
        ids = prepare(folder / "emulator.sqlite", args.assignments, args.photos)
        print(f"prepared {args.assignments} submitted assignments x {args.photos} photos in "
              f"{time.perf_counter() - started:.1f} s")
        from emulator.app import EmulatorThread

        with EmulatorThread(folder / "emulator.sqlite", token=TOKEN) as emu:
            config = write_config(folder, emu.url, ids, args.concurrency)
            before = requests_by_route(emu.url)
            elapsed, size, summary, steady = asyncio.run(
                run_ticks(config, emu, ids["pool_visit"], args.steady_ticks, args.answers_per_tick))
            after = requests_by_route(emu.url)
        delta = {route: after.get(route, 0) - before.get(route, 0) for route in after}
        delta = {route: n for route, n in delta.items() if n and not route.startswith("GET /_emulator")}
        total = sum(delta.values())
        print(f"one tick: {elapsed:.1f} s for {args.assignments} new assignments "
              f"({args.assignments / elapsed:.0f} assignments/s), concurrency {args.concurrency}")
        print(f"summary: {summary}")
        print(f"HTTP requests: {total} = {total / args.assignments:.2f} per new assignment")
        for route, n in sorted(delta.items(), key=lambda item: -item[1]):
            print(f"  {n:7d}  {n / args.assignments:5.2f}/assignment  {route}")
        print(f"checkpoint after the tick: {size / 1024:.1f} KiB")
        if steady:
            cpu = sorted(c for c, _ in steady)
            wall = sorted(w for _, w in steady)
            print(f"steady ticks with {args.assignments} assignments in flight, {args.answers_per_tick} visit tasks "
                  f"answered before each ({len(steady)} ticks): daemon CPU per tick median "
                  f"{cpu[len(cpu) // 2] * 1000:.1f} ms (min {cpu[0] * 1000:.1f}, max {cpu[-1] * 1000:.1f}); "
                  f"wall median {wall[len(wall) // 2] * 1000:.1f} ms")


if __name__ == "__main__":
    main()
