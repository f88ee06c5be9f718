"""The photo store outage on /status, /metrics and the page (headless Chromium), from a real probe.

An offline engine (tests/engine/probe_world.py: no Toloka) probes a real local
store; the probe's folder is blocked by a file to make links fail, and freed
again. The page is served by the real status server and drawn by Chromium.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from engine.probe import PROBE_KEY
from engine.snapshot import take_snapshot
from engine.ticker import Engine
from file_store.local import LocalFileStore
from status.prometheus import render
from status.server import serve_status
from status.settings import StatusSettings
from tests.engine.probe_world import Clock, offline_engine
from tools.chromium import chromium

T0 = datetime(2026, 5, 1, 12, 0, 0)
MINUTE = timedelta(minutes=1)
RED_BANNER = (0xFD, 0xE2, 0xE1)  # .bad's background


@dataclass
class World:
    engine: Engine[None, Any]
    clock: Clock
    photos: Path

    def snapshot(self) -> dict[str, Any]:
        return take_snapshot(self.engine, self.clock())

    async def tick_at(self, minutes: int) -> None:
        self.clock.now = T0 + minutes * MINUTE
        await self.engine.tick()

    def block_links(self) -> None:
        (self.photos / PROBE_KEY).unlink()
        (self.photos / "probe").rmdir()
        (self.photos / "probe").write_text("in the way")  # the probe can neither write nor read its photo

    def free_links(self) -> None:
        (self.photos / "probe").unlink()


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=4)
    clock = Clock(T0)
    engine = offline_engine(tmp_path, store, clock)
    yield World(engine, clock, tmp_path / "photos")
    engine.journal.close()


def metric(text: str, name: str) -> float:
    found = re.search(rf"^{name} (\S+)$", text, re.MULTILINE)
    assert found, text
    return float(found.group(1))


async def test_status_and_metrics_show_an_outage_while_it_is_open_and_keep_it_after(world: World) -> None:
    await world.tick_at(0)
    healthy = world.snapshot()
    assert healthy["photo_store"] == {"probed": True, "ok": True, "since": None,
                                      "detail": "links serve the probe photo", "checked": "2026-05-01T12:00:00Z"}
    assert healthy["outages"] == [] and metric(render(healthy), "pipeline_photo_store_ok") == 1

    world.block_links()
    await world.tick_at(1)
    await world.tick_at(2)
    out = world.snapshot()
    store = out["photo_store"]
    assert store["ok"] is False and store["since"] == "2026-05-01T12:00:00Z"  # the last good probe
    assert "cannot read" in store["detail"] and store["checked"] == "2026-05-01T12:02:00Z"
    assert out["outages"] == [{"start": "2026-05-01T12:00:00Z", "end": None, "detail": store["detail"]}]
    assert metric(render(out), "pipeline_photo_store_ok") == 0
    assert [e["kind"] for e in out["recent_errors"]] == ["photo store outage"]  # once, not once per tick
    assert out["recent_errors"][0]["text"].startswith("photo store: links do not serve since 2026-05-01 12:00:00")

    world.free_links()
    await world.tick_at(3)
    back = world.snapshot()
    assert back["photo_store"]["ok"] is True and back["photo_store"]["since"] == "2026-05-01T12:03:00Z"
    assert back["outages"] == [{"start": "2026-05-01T12:00:00Z", "end": "2026-05-01T12:03:00Z",
                                "detail": store["detail"]}]
    assert metric(render(back), "pipeline_photo_store_ok") == 1


async def test_an_engine_without_a_file_store_shows_the_store_as_not_probed(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path, None, Clock(T0))
    await engine.tick()
    snapshot = take_snapshot(engine, T0)
    assert snapshot["photo_store"] == {"probed": False, "ok": True, "since": None,
                                       "detail": "no file store to probe", "checked": None}
    assert metric(render(snapshot), "pipeline_photo_store_ok") == 1
    engine.journal.close()


def banner(dom: str) -> tuple[str, str]:
    found = re.search(r'<div id="banner" class="([^"]*)">([^<]*)</div>', dom)
    assert found, dom[-3000:]
    return found.group(1), found.group(2)


async def test_page_turns_red_and_says_why_while_the_store_is_out(world: World, tmp_path: Path) -> None:
    await world.tick_at(0)
    world.block_links()
    await world.tick_at(1)
    settings = StatusSettings(enabled=True, port=0, refresh_seconds=1)
    async with serve_status(world.snapshot, settings, None) as server:
        result = await asyncio.to_thread(chromium, tmp_path, "--dump-dom", server.url)
        assert result.returncode == 0, result.stderr[-2000:]
        dom = result.stdout
        assert 'data-loaded="yes"' in dom, dom[-2000:]
        kind, text = banner(dom)
        assert kind == "banner bad" and "Healthy" not in text
        assert text.startswith("Photo store outage: photo links do not open for checkers since 2026-05-01 12:00:00 UTC")
        assert "cannot read" in text and "Negative answers from this window will be voided and asked again." in text
        assert "OUTAGE since 2026-05-01 12:00:00 UTC" in dom and "still out" in dom

        shot = tmp_path / "outage.png"
        result = await asyncio.to_thread(chromium, tmp_path, f"--screenshot={shot}", "--window-size=1280,900",
                                         "--hide-scrollbars", server.url)
        assert result.returncode == 0 and shot.exists(), result.stderr[-2000:]
        with Image.open(shot) as image:
            colours = {rgb for _, rgb in image.convert("RGB").getcolors(maxcolors=1 << 20) or []}
        assert RED_BANNER in colours

        world.free_links()
        await world.tick_at(2)
        result = await asyncio.to_thread(chromium, tmp_path, "--dump-dom", server.url)
        assert result.returncode == 0, result.stderr[-2000:]
        kind, text = banner(result.stdout)
        assert kind == "banner ok" and text.startswith("Healthy")
        assert "links open again since 2026-05-01 12:02:00 UTC" in result.stdout
        assert "<td>2026-05-01 12:00:00 UTC</td><td>2026-05-01 12:02:00 UTC</td>" in result.stdout
