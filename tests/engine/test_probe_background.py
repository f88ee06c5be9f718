"""The photo store probe between ticks, and no task created while photo links do not serve.

A tick can wait minutes on effects held up by a stalled store; the background
probe must still see the stall. An offline engine (tests/engine/probe_world.py)
probes a real local store whose probe folder is blocked by a file.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from pathlib import Path

from engine.actions import CreateTasks, Step, TaskSpec
from engine.probe import ProbeResult
from file_store.local import LocalFileStore
from tests.engine.probe_world import Clock, offline_engine

T0 = datetime(2026, 5, 1, 12, 0, 0)


def block(photos: Path) -> None:
    (photos / "probe" / "daemon-probe.jpg").unlink()
    (photos / "probe").rmdir()
    (photos / "probe").write_text("in the way")


async def test_the_background_probe_opens_a_window_without_a_tick(tmp_path: Path) -> None:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=2)
    clock = Clock(T0)
    engine = offline_engine(tmp_path, store, clock)
    try:
        await engine.tick()  # a first probe that serves: the window will start here
        block(tmp_path / "photos")
        clock.now = T0 + timedelta(minutes=1)
        prober = asyncio.create_task(engine.probe_forever(0.05))
        for _ in range(100):
            if engine.store_out:
                break
            await asyncio.sleep(0.05)
        prober.cancel()
        assert engine.store_out
        assert engine.state.outages[-1].start == T0 and engine.state.outages[-1].end is None
        assert engine.recent_errors and "photo store outage" in engine.recent_errors[-1].kind
    finally:
        engine.journal.close()
        await store.aclose()


async def test_no_task_is_created_while_the_store_is_out_and_it_waits_in_the_journal(tmp_path: Path) -> None:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=2)
    clock = Clock(T0)
    engine = offline_engine(tmp_path, store, clock)
    try:
        await engine.tick()
        block(tmp_path / "photos")
        clock.now = T0 + timedelta(minutes=1)
        await engine.tick()
        assert engine.store_out
        create = CreateTasks("p1", "op-1", (TaskSpec({"image": "x"}, 2),))
        engine.journal.stage([Step("pa", create)])
        await engine.checkpoint()
        await engine.execute_pending()
        assert engine.held_for_store == [create]
        pending = [step.action for step in engine.journal.pending()]
        assert create in pending  # not lost: it runs once links serve again
    finally:
        engine.journal.close()
        await store.aclose()


async def test_the_background_probe_waits_while_ticks_probe(tmp_path: Path) -> None:
    """Ticks that probe often enough leave the background probe idle; once they stop, it probes."""
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=2)
    engine = offline_engine(tmp_path, store, Clock(T0))
    assert engine.probe is not None
    checks: list[datetime] = []
    check = engine.probe.check

    async def counted(now: datetime) -> ProbeResult:
        checks.append(now)
        return await check(now)

    engine.probe.check = counted  # type: ignore[method-assign]
    prober = asyncio.create_task(engine.probe_forever(1.0))
    try:
        for _ in range(25):  # 2.5 s of a tick every 0.1 s, each probing: far inside the background's 1 s
            await engine.tick()
            await asyncio.sleep(0.1)
        assert len(checks) == 25  # the ticks' probes, and no background probe among them
        await asyncio.sleep(1.5)  # no tick now: the background probe takes over
        assert 26 <= len(checks) <= 27
    finally:
        prober.cancel()
        engine.journal.close()
        await store.aclose()
