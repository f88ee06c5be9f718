"""One tick of the real daemon with N new pedestrian assignments waiting (default 5,000).

    python bench/tick_bench.py [--assignments 5000] [--photos 3] [--concurrency 8]

The emulator runs in its own process (no simulated crowd) on a database
prepared beforehand: N submitted pedestrian assignments, each with
``--photos`` small JPEG attachments. The daemon then runs one tick in this
process: it fetches the N assignments, stores every photo in a local folder,
creates N visit tasks and writes N decision rows. Printed: the tick's wall
time, the HTTP requests it made (from the emulator's counters) per new
assignment, by route, and the checkpoint size afterwards.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOKEN = "bench-token"


def jpeg(n: int) -> bytes:
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 120), (n % 256, 80, 160)).save(out, "JPEG", quality=80)
    return out.getvalue()


def prepare(db: Path, assignments: int, photos: int) -> dict[str, str]:
    from emulator.store import Store

    now = datetime.now(timezone.utc).replace(tzinfo=None)
    past = now - timedelta(hours=1)
    store = Store(db)
    try:
        project = store.create_project({"public_name": "bench"}, past)
        pools = {}
        for name in ("pedestrian", "visit", "quality", "relevance"):
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
    text = (ROOT / "toloka.ini").read_text(encoding="utf-8")
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
    path = folder / "toloka.ini"
    path.write_text(text, encoding="utf-8")
    return path


def requests_by_route(url: str) -> dict[str, int]:
    request = urllib.request.Request(f"{url}/_emulator/requests", headers={"Authorization": f"OAuth {TOKEN}"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return dict(json.loads(response.read())["by_route"])


async def one_tick(config: Path) -> tuple[float, int, object]:
    from engine.config import load_settings
    from engine.runner import open_daemon

    settings = load_settings(config)
    async with open_daemon(settings) as daemon:
        await daemon.check_pools()
        started = time.perf_counter()
        summary = await daemon.tick()
        elapsed = time.perf_counter() - started
        size = (settings.pipeline.saves_folder / "checkpoint.pkl").stat().st_size
    return elapsed, size, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--assignments", type=int, default=5000)
    parser.add_argument("--photos", type=int, default=3)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tick-bench-") as tmp:
        folder = Path(tmp)
        os.environ["XDG_DATA_HOME"] = str(folder / "keyring")
        import keyring
        from keyrings.alt.file import PlaintextKeyring

        keyring.set_keyring(PlaintextKeyring())
        keyring.set_password("TOLOKA", "toloka_token", TOKEN)
        started = time.perf_counter()
        ids = prepare(folder / "emulator.sqlite", args.assignments, args.photos)
        print(f"prepared {args.assignments} submitted assignments x {args.photos} photos in "
              f"{time.perf_counter() - started:.1f} s")
        proc = subprocess.Popen([sys.executable, "-m", "emulator", "--port", "0", "--token", TOKEN,
                                 "--db", str(folder / "emulator.sqlite")],
                                cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        try:
            assert proc.stdout is not None
            url = None
            while url is None:
                line = proc.stdout.readline()
                if not line:
                    raise SystemExit("the emulator did not start")
                match = re.search(r"(http://127\.0\.0\.1:\d+)", line)
                url = match.group(1) if match else None
            config = write_config(folder, url, ids, args.concurrency)
            before = requests_by_route(url)
            elapsed, size, summary = asyncio.run(one_tick(config))
            after = requests_by_route(url)
        finally:
            proc.terminate()
            proc.wait(30)
            if proc.stdout is not None:
                proc.stdout.close()
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


if __name__ == "__main__":
    main()
