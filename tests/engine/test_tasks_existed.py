"""The tick line tells tasks created from tasks an earlier try had created: "created N tasks (M already existed)".

A daemon dies after Toloka created its tasks but before the journal said so;
the next start finds the operation on Toloka (nothing is created twice) and its
first tick line says so, instead of claiming it created them.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from engine.actions import CreateTasks, Step, TaskSpec
from engine.ticker import TickSummary
from toloka_client import operation_id_for

TOKEN = "existed-test-token"


def test_the_tick_line_counts_found_tasks_apart() -> None:
    from datetime import datetime

    line = TickSummary(fetched=4, decided=2, created=3, existed=28, pending=1).line(datetime(2026, 11, 30, 9, 0))
    assert "created 3 tasks (28 already existed), errors 0, pending effects 1" in line
    assert "created 0 tasks (0 already existed)" in TickSummary().line(datetime(2026, 11, 30, 9, 0))


def visit_inputs(emu: Any, pool_id: str, n: int) -> tuple[TaskSpec, ...]:
    """Tasks the visit project accepts: the required fields of its input spec filled."""
    project_id = emu.store.pools[pool_id]["project_id"]
    spec: Mapping[str, Any] = emu.store.projects[project_id]["task_spec"]["input_spec"]
    required = [name for name, field in spec.items() if field.get("required", True)]
    return tuple(TaskSpec({name: f"{name}-{i}" for name in required}, 1) for i in range(n))


async def test_tasks_created_before_a_crash_are_found_once_and_shown_as_existing(tmp_path: Path) -> None:
    from pipelines import open_engine
    from tools.harness import emulator_in_process

    # The crowd paused: only this test's tasks are created.
    async with emulator_in_process(tmp_path, seed=4, speed=1, token=TOKEN, crowd=False) as (emu, settings):
        visit = settings.pools()["visit"]
        before = emu.store.counts()["tasks"]
        earlier = CreateTasks(visit, operation_id_for("existed-test-1", visit), visit_inputs(emu, visit, 2))

        async with open_engine(settings) as first:
            first.journal.record([Step("org-1", earlier)])
            await first.checkpoint()  # pending on disk
            await first.executor.run(earlier)  # Toloka creates the tasks ... and the process dies here
        assert emu.store.counts()["tasks"] == before + 2

        fresh = CreateTasks(visit, operation_id_for("existed-test-2", visit), visit_inputs(emu, visit, 1))
        async with open_engine(settings) as second:
            await second.check_pools()
            assert await second.resume() == 1
            second.journal.record([Step("org-2", fresh)])
            summary = await second.tick()
            tasks_created = second.state.stats.tasks_created
        line = summary.line(second.clock())
        assert (summary.created, summary.existed) == (1, 2), line
        assert "created 1 tasks (2 already existed)" in line
        assert emu.store.counts()["tasks"] == before + 3  # nothing created twice
        assert tasks_created == 3
