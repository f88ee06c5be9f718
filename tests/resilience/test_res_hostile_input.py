"""Hostile and broken pedestrian work, fed to the running daemon next to the demo crowd's.

Each bad assignment must end in a clear message naming it in error.log, the
daemon must keep ticking, the crowd's organizations must still be decided,
and what was written must read back whole. URLs typed by a worker (in a text
field, or in place of an attachment id) must never be fetched: a trap server
on loopback counts every request it gets.

Unit-level siblings: malformed fields (tests/handlers/test_handlers.py),
hostile text in TSVs (tests/tables/test_tsv.py), non-image and missing
attachments (tests/pipeline/test_executor.py).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pandas as pd
import pytest
from aiohttp import web

from engine.runner import MAX_PHOTO_BYTES, utc_now
from pipelines import open_engine
from tables.tsv import clean
from tests.resilience.conftest import World

JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 4000
HOSTILE = (
    'tab\there, new\nline, CR\r, "double" \'single\' quotes, NUL\x00byte, '
    '=HYPERLINK("{trap}/formula","click") +1+2 -3 @SUM(A1) '
) + "long " * 20_000


@pytest.fixture
async def trap() -> AsyncIterator[tuple[str, list[str]]]:
    """An HTTP server on loopback that records every path asked of it."""
    hits: list[str] = []

    async def record(request: web.Request) -> web.Response:
        hits.append(request.path)
        return web.Response(body=JPEG, content_type="image/jpeg")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", record)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}", hits
    finally:
        await runner.cleanup()


def submit(world: World, org: dict[str, Any], output: dict[str, Any], files: dict[str, tuple[str, bytes]]) -> str:
    """A pedestrian assignment by a worker outside the crowd; ``files`` maps an output field to (name, bytes)."""
    store, pool = world.emu.store, world.settings.config.pedestrian.pool_id
    now = utc_now()
    (task,) = store.create_tasks(pool, [{"input_values": org, "overlap": 1}], now)
    assignment = store.create_assignment(pool, "hostile-walker", [task["id"]], now)
    for field, (name, data) in files.items():
        output[field] = store.add_attachment(assignment["id"], name, "image/jpeg", data, now)["id"]
    store.submit_assignment(assignment["id"], [{"output_values": output}], now)
    return str(assignment["id"])


async def test_bad_work_is_named_in_error_log_and_the_crowds_work_goes_on(
    world: World, trap: tuple[str, list[str]]
) -> None:
    url, hits = trap
    hostile = HOSTILE.format(trap=url)
    org = {"name": "Hostile Org", "address": "1 Test Street", "coordinates": "55.75,37.61",
           "segment": "cafe", "phone": "", "website": ""}
    good = {"verdict": "ok", "worker_coordinates": "55.75,37.61", "comment": ""}
    photos = {"imgs_facade": ("f.jpg", JPEG), "name_business": ("n.jpg", JPEG), "imgs_name_address": ("a.jpg", JPEG)}
    cases = {
        "mistyped": submit(world, org, {**good, "verdict": ["ok"], "imgs_facade": 12345}, {}),
        "missing fields": submit(world, org, {"comment": "no verdict, no photos"}, {}),
        "unknown attachment": submit(world, org, {**good, "imgs_facade": "0000000000--nosuchattachment000000"},
                                     {k: v for k, v in photos.items() if k != "imgs_facade"}),
        "worker-typed url": submit(world, org, {**good, "imgs_facade": f"{url}/typed.jpg"},
                                   {k: v for k, v in photos.items() if k != "imgs_facade"}),
        "not an image": submit(world, org, dict(good), {**photos, "imgs_facade": ("f.pdf", b"%PDF-1.4 " + b"x" * 500)}),
        "50 MB": submit(world, org, dict(good), {**photos, "imgs_facade": ("big.jpg", JPEG + b"\x00" * (50 << 20))}),
    }
    texty = submit(world, {**org, "name": hostile, "address": hostile},
                   {**good, "comment": hostile, "worker_coordinates": f"{url}/coords"}, photos)
    assert MAX_PHOTO_BYTES < 50 << 20

    crowd_orgs = {doc["task_id"] for doc in world.emu.store.all_truth("org").values()}
    async with open_engine(world.settings) as daemon:
        await daemon.check_pools()
        await daemon.resume()
        for _ in range(150):
            await daemon.tick()  # raising here would be the daemon crashing on bad input
            finals = [a for a in world.emu.store.assignments(pool_id=world.settings.config.pedestrian.pool_id)
                      if a["status"] in ("ACCEPTED", "REJECTED") and a["tasks"][0]["id"] in crowd_orgs]
            if len(finals) >= 3:
                break
            await asyncio.sleep(0.2)
    assert len(finals) >= 3, "the crowd's work did not go on next to the bad work"

    error_log = (world.folder / "logs" / "pipeline" / "error.log").read_text(encoding="utf-8")
    for case, assignment in cases.items():
        lines = [line for line in error_log.splitlines() if assignment in line]
        assert lines, f"{case}: {assignment} is not named in error.log"
        if case == "50 MB":
            assert any("limit" in line or "large" in line for line in lines), lines
        if case == "not an image":
            assert any("not an image" in line for line in lines), lines
    for case in ("mistyped", "missing fields"):
        assert any("held for a person" in line for line in error_log.splitlines() if cases[case] in line), case
    statuses = {a["id"]: a["status"] for a in world.emu.store.assignments(pool_id=world.settings.config.pedestrian.pool_id)}
    assert {statuses[a] for a in cases.values()} == {"SUBMITTED"}, "bad work was decided without a person"
    assert hits == [], f"a worker-typed URL was fetched: {hits}"

    decisions = pd.read_csv(world.folder / "logs" / "decisions.tsv", sep="\t", dtype=str, keep_default_na=False)
    mine = decisions[decisions["pedestrian_assignment_id"] == texty]
    assert len(mine) >= 1 and set(mine["name"]) == {clean(hostile)} and set(mine["address"]) == {clean(hostile)}
    with (world.folder / "logs" / "decisions.tsv").open(encoding="utf-8", newline="") as handle:
        records = sum(1 for _ in pd.read_csv(handle, sep="\t", dtype=str, chunksize=1))
    assert records == len(decisions)


async def test_a_chain_held_for_a_person_is_reported_once_and_tried_again_at_the_next_start(world: World) -> None:
    org = {"name": "Org", "address": "1 Test Street", "coordinates": "55.75,37.61", "segment": "", "phone": "", "website": ""}
    jpeg = ("p.jpg", JPEG)
    bad = submit(world, org, {"verdict": "ok", "worker_coordinates": "55.75,37.61", "comment": ""},
                 {"imgs_facade": ("f.pdf", b"%PDF-1.4 not a photo"), "name_business": jpeg, "imgs_name_address": jpeg})
    error_log = world.folder / "logs" / "pipeline" / "error.log"

    def reports() -> int:
        return sum(bad in line and "not an image" in line for line in error_log.read_text(encoding="utf-8").splitlines())

    async with open_engine(world.settings) as daemon:
        await daemon.check_pools()
        await daemon.resume()
        for _ in range(5):
            await daemon.tick()
        assert reports() == 1, "a chain that cannot succeed is retried (and reported) every tick"
        assert any(step.chain == bad for step in daemon.journal.pending()), "the held chain was dropped"
    async with open_engine(world.settings) as daemon:  # a person may have fixed the cause: one more try
        await daemon.check_pools()
        await daemon.resume()
        await daemon.tick()
    assert reports() == 2
