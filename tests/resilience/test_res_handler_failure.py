"""A handler that raises half-way loses nothing, and nothing is copied to make that so.

In-process: the emulator with the demo crowd, the real engine and executor. The visit handler is
wrapped so that its first real call empties the ledger (the worst half-done decision) and raises.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd

from engine.runner import open_engine
from engine.spec import Batch, Context, Decision, ObserverSpec, PipelineSpec
from handlers.state import Ledger
from pipelines.pedestrian import PEDESTRIAN
from tests.resilience.conftest import World


class Bug(Exception):
    """What the broken handler raises."""


def breaking_once(spec: PipelineSpec[Any, Ledger], pool: str, calls: list[int]) -> PipelineSpec[Any, Ledger]:
    """``spec`` whose ``pool`` handler wipes the ledger and raises the first time it gets assignments."""

    def wrap(observer: ObserverSpec[Any, Ledger]) -> ObserverSpec[Any, Ledger]:
        if observer.pool != pool:
            return observer
        real = observer.handler

        def handler(ledger: Ledger, batch: Batch, ctx: Context[Any]) -> Decision:
            calls.append(len(batch.assignments))
            if len(calls) == 1:
                ledger.works.clear()
                ledger.ballots.clear()
                raise Bug("a bug in the visit handler")
            return real(ledger, batch, ctx)

        return dataclasses.replace(observer, handler=handler)

    return dataclasses.replace(spec, observers=tuple(wrap(o) for o in spec.observers))


async def test_a_failing_handler_is_undone_and_its_events_decided_next_tick(world: World, tmp_path: Path) -> None:
    calls: list[int] = []
    spec = breaking_once(PEDESTRIAN, "visit", calls)
    async with open_engine(spec, world.settings) as engine:
        await engine.check_pools()
        visit_cursor = None
        for _ in range(120):  # until the visit handler has had its first batch
            before = set(engine.state.state.works)
            visit_cursor = engine.cursors["visit"].state
            summary = await engine.tick()
            if calls:
                break
            await asyncio.sleep(0.1)
        assert calls, "no visit answers arrived"
        assert before, "there was work in flight to lose"
        # The tick where the handler failed: its half-done change is gone, the other observers decided,
        # the failing observer's cursor did not move (its events come again).
        assert summary.errors >= 1
        assert before <= set(engine.state.state.works)
        assert engine.cursors["visit"].state == visit_cursor
        assert engine.recent_errors and engine.recent_errors[-1].kind == "handler failed"
        decided = engine.state.stats.decided
        for _ in range(200):  # the same events again, decided this time, and the run goes on
            await engine.tick()
            if engine.state.stats.decided > decided and len(calls) > 2:
                break
            await asyncio.sleep(0.1)
        assert len(calls) > 2 and engine.state.stats.decided > decided
    decisions = pd.read_csv(world.settings.pipeline.logs_folder / "decisions.tsv", sep="\t", dtype=str,
                            keep_default_na=False)
    assert not decisions.duplicated().any()
    finals = Counter(decisions[decisions["event"].isin(["ACCEPT assignment", "REJECT assignment"])]
                     ["pedestrian_assignment_id"])
    assert all(n == 1 for n in finals.values())
