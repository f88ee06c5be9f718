"""A crash between deciding and checkpointing writes no row twice (found by tools/soak.py).

The tick decides, makes the effects pending, then checkpoints state and
cursors. If pending effects became durable *before* that checkpoint, a crash
in between left them without the decisions behind them: the restart ran them
(rows written at one time), compacted their keys away, then fetched the same
events again and decided them anew (rows written at another time), so
decisions.tsv and answers.tsv held every row of that tick twice.
"""

from __future__ import annotations

import asyncio
import csv
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path

from engine.runner import utc_now
from pipelines import open_engine
from tests.resilience.conftest import World


class Crash(BaseException):
    """Stands for SIGKILL at one instant: nothing after it runs, and nothing is cleaned up that matters."""


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


async def test_a_crash_before_the_checkpoint_of_a_tick_writes_no_row_twice(world: World) -> None:
    readings = iter(range(10_000))

    def clock() -> datetime:  # real time plus a second per reading: a decision made again shows another time
        return utc_now() + timedelta(seconds=next(readings))

    async with open_engine(world.settings, clock=clock) as daemon:
        await daemon.check_pools()
        await daemon.resume()
        real_checkpoint = daemon.checkpoint

        async def crash_once_work_is_decided() -> int:
            if daemon.journal.pending():
                raise Crash()  # decided and pending, not yet checkpointed
            return await real_checkpoint()

        daemon.checkpoint = crash_once_work_is_decided  # type: ignore[method-assign]
        crashed = False
        for _ in range(100):
            try:
                await daemon.tick()
            except Crash:
                crashed = True
                break
            await asyncio.sleep(0.2)
        assert crashed, "the crowd submitted nothing to decide"

    async with open_engine(world.settings, clock=clock) as daemon:
        await daemon.check_pools()
        await daemon.resume()
        for _ in range(3):
            await daemon.tick()
        assert not daemon.journal.pending()

    decisions = rows(world.folder / "logs" / "decisions.tsv")
    assert decisions, "nothing was decided after the restart"
    facts = Counter((r["pedestrian_assignment_id"], r["handler"], r["group"], r["event"]) for r in decisions)
    assert [fact for fact, n in facts.items() if n > 1] == []
