"""What one unit of the daemon's unavoidable work costs in CPU, each measured alone.

The side-by-side run (bench/side_by_side.py) gives one figure, CPU seconds per 1,000 pedestrian
assignments. This script splits it into unit costs, so that a target can be checked against what
the libraries cost before any of the daemon's own logic runs:

* start-up: a fresh ``python`` importing what ``python pipeline.py`` imports before its first tick
  (and ``aiohttp`` alone, for comparison);
* one HTTP request to the emulator over loopback: bare ``aiohttp`` (``session.get``), the daemon's
  ``TolokaHttp.request`` (retries, errors, auth), and ``TolokaHttp.download`` of a real ~32 KB photo;
* one worker-thread hop (``asyncio.to_thread`` of a function that does nothing), on an idle loop;
* one assignment of a search page: JSON decoding (``jsonio.loads``, Decimals) and the record
  (``Assignment.from_json``), on a page of 1,000 checker assignments shaped as the emulator serves them;
* one photo stored by ``LocalFileStore.put`` (temporary file, rename, one hop), 32 KB, and one
  copied by ``LocalFileStore.copy`` (the accepted photos go from tmp/ to main/).

CPU is this process's user plus system time (``time.process_time``, every thread), so a request
counts the client's share of loopback TCP too; the emulator's own CPU is not counted. Medians of
``--repeat`` rounds. Nothing is asserted: it prints.

    python bench/cpu_floor.py [--requests 500] [--repeat 5] [--seed 1]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import aiohttp  # noqa: E402  # (E402: the root is put on sys.path first)

from common.secrets import Secret  # noqa: E402
from file_store.local import LocalFileStore  # noqa: E402
from toloka_client import jsonio  # noqa: E402
from toloka_client.http import TolokaHttp  # noqa: E402
from toloka_client.records import Assignment  # noqa: E402
from tools import harness  # noqa: E402

#: What ``python pipeline.py`` imports before it reads its configuration (see pipeline.py's _main).
DAEMON_IMPORTS = "import pipelines, engine.runner"
PHOTO_BYTES = 32 * 1024


def child_cpu(code: str) -> float:
    """CPU seconds of a fresh interpreter running ``code`` (user plus system)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


async def per_call(action: Callable[[], Awaitable[Any]], count: int) -> float:
    """CPU microseconds per awaited call, over ``count`` calls in a row."""
    started = time.process_time()
    for _ in range(count):
        await action()
    return (time.process_time() - started) / count * 1e6


def checker_page(count: int) -> bytes:
    """A search page of ``count`` accepted quality-check assignments, shaped as the emulator serves them."""
    items = []
    for number in range(count):
        photo = f"00000186a1--6b0db0430000000000{number:06x}"
        items.append({
            "id": f"00000186a4--6b0db05e0000000000{number:06x}", "task_suite_id": f"00000186a4--{number:030x}",
            "pool_id": "100004", "user_id": f"{number % 97:032x}", "status": "ACCEPTED", "reward": 0.01,
            "bonus_ids": [],
            "tasks": [{"id": f"00000186a4--6b0db05b0000000000{number:06x}", "pool_id": "100004",
                       "input_values": {"image": f"file:///srv/photos/tmp/2026-11-30/{photo}/imgs_menu/0.jpg",
                                        "image_field": "imgs_menu", "photo_id": "imgs_menu/0",
                                        "group": f"{photo}/imgs_menu", "pedestrian_assignment_id": photo,
                                        "name": "Sunny Leaf Books", "address": "187 Tram Lane"},
                       "origin_task_id": f"00000186a4--6b0db05b0000000000{number:06x}"}],
            "mixed": False, "automerged": False, "created": "2026-11-30T17:20:30.101",
            "submitted": "2026-11-30T17:20:30.307", "accepted": "2026-11-30T17:20:30.307", "rejected": None,
            "skipped": None, "expired": None,
            "owner": {"id": "emulated-requester", "myself": True, "company_id": "emulated-company"},
            "solutions": [{"output_values": {"result": "relevant"}}],
        })
    return jsonio.dumps({"items": items, "has_more": False}).encode()


def parse_costs(repeat: int) -> tuple[float, float]:
    """Microseconds per assignment: JSON decoding, then the record."""
    page = checker_page(1000)
    decode, build = [], []
    for _ in range(repeat):
        started = time.process_time()
        items = jsonio.loads(page)["items"]
        decoded = time.process_time()
        for item in items:
            Assignment.from_json(item)
        built = time.process_time()
        decode.append((decoded - started) / len(items) * 1e6)
        build.append((built - decoded) / len(items) * 1e6)
    return statistics.median(decode), statistics.median(build)


def an_attachment(db: Path, timeout_s: float) -> str:
    """The id of a photo a pedestrian has uploaded (waits for the crowd's first one)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        uploaded = harness.objects(db, "attachment")
        if uploaded:
            return str(uploaded[0]["id"])
        time.sleep(0.5)
    raise SystemExit(f"no attachment uploaded within {timeout_s:.0f} s")


async def network_costs(url: str, attachment: str, requests: int, repeat: int) -> dict[str, float]:
    """Microseconds per request of each client layer (medians of ``repeat`` rounds)."""
    rounds: dict[str, list[float]] = {"aiohttp": [], "request": [], "download": []}
    headers = {"Authorization": f"OAuth {harness.TOKEN}"}
    async with aiohttp.ClientSession() as session, TolokaHttp(url, Secret("token", harness.TOKEN)) as http:

        async def bare() -> None:
            async with session.get(f"{url}/api/v1/requester", headers=headers) as response:
                await response.read()

        async def request() -> None:
            await http.request("GET", "/requester")

        async def download() -> None:
            await http.download(f"/attachments/{attachment}/download", max_bytes=20 * 1024 * 1024)

        for action in (bare, request, download):  # warm: connections open, parsers compiled
            await per_call(action, 20)
        for _ in range(repeat):
            rounds["aiohttp"].append(await per_call(bare, requests))
            rounds["request"].append(await per_call(request, requests))
            rounds["download"].append(await per_call(download, requests))
    return {name: statistics.median(values) for name, values in rounds.items()}


async def local_costs(folder: Path, count: int, repeat: int) -> tuple[float, float, float]:
    """Microseconds per empty thread hop, per 32 KB photo put into a local store, per copy of one."""
    hops, puts, copies = [], [], []
    body = b"\xff\xd8\xff\xe0" + os.urandom(PHOTO_BYTES - 4)
    async with await LocalFileStore.open(folder, concurrency=8) as store:
        for round_number in range(repeat):
            hops.append(await per_call(lambda: asyncio.to_thread(int), count))
            # A folder per photo, as the daemon's keys have (tmp/<date>/<assignment>/<field>/0.jpg),
            # and the accepted ones copied to main/<assignment>/<field>/0.jpg, a new folder each too.
            names = [f"{round_number}/{n:06d}/imgs_menu/0.jpg" for n in range(count)]
            keys = iter(f"tmp/{name}" for name in names)
            puts.append(await per_call(functools.partial(_put_next, store, keys, body), count))
            pairs = iter((f"tmp/{name}", f"main/{name}") for name in names)
            copies.append(await per_call(functools.partial(_copy_next, store, pairs), count))
    return statistics.median(hops), statistics.median(puts), statistics.median(copies)


async def _put_next(store: LocalFileStore, keys: Iterator[str], body: bytes) -> None:
    await store.put(next(keys), body, "image/jpeg")


async def _copy_next(store: LocalFileStore, pairs: Iterator[tuple[str, str]]) -> None:
    await store.copy(*next(pairs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=500, help="calls per round of each kind (default 500)")
    parser.add_argument("--repeat", type=int, default=5, help="rounds; medians are printed (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    harness.compile_sources()  # no module is compiled on the clock (see there)
    startup = statistics.median(child_cpu(DAEMON_IMPORTS) for _ in range(args.repeat))
    aiohttp_alone = statistics.median(child_cpu("import aiohttp") for _ in range(args.repeat))
    bare_python = statistics.median(child_cpu("pass") for _ in range(args.repeat))
    decode, build = parse_costs(args.repeat)
    with tempfile.TemporaryDirectory(prefix="cpu-floor-") as name:
        folder = Path(name)
        hop, put, copy = asyncio.run(local_costs(folder / "photos", args.requests, args.repeat))
        with harness.emulator(folder, seed=args.seed, speed=60, scenario="realistic") as url:
            attachment = an_attachment(folder / "emulator.sqlite", 120)
            harness.pause_crowd(url)
            network = asyncio.run(network_costs(url, attachment, args.requests, args.repeat))

    rows = [
        ("start-up: python alone", f"{bare_python * 1000:.0f} ms"),
        ("start-up: import aiohttp", f"{aiohttp_alone * 1000:.0f} ms"),
        (f"start-up: {DAEMON_IMPORTS}", f"{startup * 1000:.0f} ms"),
        ("request: aiohttp session.get, GET /requester", f"{network['aiohttp']:.0f} us"),
        ("request: TolokaHttp.request, GET /requester", f"{network['request']:.0f} us"),
        ("request: TolokaHttp.download, one photo", f"{network['download']:.0f} us"),
        ("thread hop: asyncio.to_thread(int), idle loop", f"{hop:.0f} us"),
        ("photo: LocalFileStore.put, 32 KB", f"{put:.0f} us"),
        ("photo: LocalFileStore.copy of one, tmp/ to main/", f"{copy:.0f} us"),
        ("assignment: JSON decoding (jsonio.loads)", f"{decode:.1f} us"),
        ("assignment: record (Assignment.from_json)", f"{build:.1f} us"),
    ]
    width = max(len(name) for name, _ in rows)
    print(f"CPU per unit of work, medians of {args.repeat} rounds (this process's user + system time)")
    for name, value in rows:
        print(f"  {name:<{width}}  {value:>9}")


if __name__ == "__main__":
    main()
