"""A batch of task creations survives a crash at any point between its journal line and its answer.

The engine journals a batch (its members and its operation_id) before sending it. Killed after
Toloka created the tasks but before the journal said so, the next start sends the same batch
again: Toloka recognises the operation and nothing is created twice. Killed before it was sent,
the next start sends it: everything is created once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.actions import CreateTasks, SendBatch, Step
from toloka_client import operation_id_for

from test_tasks_existed import visit_inputs

TOKEN = "batch-replay-token"


class Killed(Exception):
    """Stands for kill -9 at the marked point."""


@pytest.mark.parametrize("dies", ["after the answer", "before the request"])
async def test_a_journalled_batch_is_sent_again_as_it_was_and_creates_each_task_once(tmp_path: Path, dies: str) -> None:
    from pipelines import open_engine
    from tools.harness import emulator_in_process

    async with emulator_in_process(tmp_path, seed=4, speed=1, token=TOKEN, crowd=False) as (emu, settings):
        visit = settings.pools()["visit"]
        before = emu.store.counts()["tasks"]
        members = [CreateTasks(visit, operation_id_for(f"batch-replay-{i}", visit), visit_inputs(emu, visit, 1))
                   for i in range(3)]

        async with open_engine(settings) as first:
            steps = [Step(f"org-{i}", m) for i, m in enumerate(members)]
            first.never_sent.update(s.key for s in first.journal.stage(steps))  # what a tick does
            await first.checkpoint()

            async def die(*_: Any) -> None:
                raise Killed

            if dies == "after the answer":
                first.settled = die  # type: ignore[method-assign]
            else:
                first.executor.send_batch = die  # type: ignore[method-assign]
            with pytest.raises(Killed):
                await first.execute_pending()
            batches = [s.action for s in first.journal.pending() if isinstance(s.action, SendBatch)]
        assert len(batches) == 1 and batches[0].members == tuple(members)
        assert emu.store.counts()["tasks"] == before + (3 if dies == "after the answer" else 0)

        async with open_engine(settings) as second:
            await second.check_pools()
            assert await second.resume() == 4  # three creations and their batch
            assert second.journal.pending() == []
            summary = await second.tick()
        assert emu.store.counts()["tasks"] == before + 3  # each task once
        found = 3 if dies == "after the answer" else 0
        assert (summary.created, summary.existed) == (3 - found, found)
