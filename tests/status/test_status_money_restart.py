"""Money and decision counts across a crash, and the budget gate, on a real journal, checkpoint and TSV table.

No Toloka client is involved: nothing here reaches the network (a held bonus never runs, and
the actions that do run only append to a TSV file).
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from engine.actions import AppendRows, CreateTasks, PayBonus, SetStatus, Step, TaskSpec
from engine.config import Settings
from engine.executor import Executor
from engine.journal import Journal
from engine.spec import Review
from engine.state import checkpoint_store, load_state
from engine.ticker import Engine
from handlers.base import DECISION_COLUMNS
from pipelines import load_settings
from pipelines.pedestrian import PEDESTRIAN
from tables.tsv import TsvTable

REPO = Path(__file__).resolve().parents[2]
NOW = datetime(2026, 5, 1, 12, 0, 0)


def settings_with(tmp_path: Path, max_spend: str | None = None) -> Settings:
    settings = load_settings(REPO / "toloka.example.ini", base_dir=tmp_path)
    limit = None if max_spend is None else Decimal(max_spend)
    return dataclasses.replace(settings, pipeline=dataclasses.replace(settings.pipeline, max_spend=limit))


def open_daemon_offline(tmp_path: Path, settings: Settings) -> Engine:
    """An engine on ``tmp_path/saves`` as a start-up builds it; no client (nothing here may call Toloka)."""
    checkpoints = checkpoint_store(tmp_path / "saves", PEDESTRIAN)
    state, _ = load_state(checkpoints, PEDESTRIAN, NOW)
    journal = Journal.open(tmp_path / "saves", state.journal)
    tables = {"decisions": TsvTable(tmp_path / "decisions.tsv", DECISION_COLUMNS)}
    executor = Executor(None, None, tables, max_photo_bytes=1, concurrency=2, clock=lambda: NOW)  # type: ignore[arg-type]
    return Engine(PEDESTRIAN, settings, None, executor, checkpoints, journal, state,  # type: ignore[arg-type]
                  clock=lambda: NOW)


def final_rows(pa: str) -> AppendRows:
    row = {"date_time": "2026-05-01 12:00:00", "name": "Cafe", "address": "Main St 1", "pedestrian_assignment_id": pa,
           "handler": "relevance", "group": f"{pa}/main", "event": "ACCEPT assignment", "comment": "Good job"}
    return AppendRows("decisions", f"{pa}/final", (row,))


async def test_effects_done_after_the_last_checkpoint_are_counted_once_after_a_crash(tmp_path: Path) -> None:
    settings = settings_with(tmp_path)
    first = open_daemon_offline(tmp_path, settings)
    first.state.reviews["pa1"] = Review("pa1", "pedestrian", Decimal("0.50"), NOW)
    accept = SetStatus("pa1", "ACCEPTED", "Good job")
    bonus = PayBonus("pa1", "w1", Decimal("0.15"), "Bonus", "Thanks", "op-1")
    rows = final_rows("pa1")
    first.journal.record([Step("pa1", accept), Step("pa1", bonus), Step("pa1", rows)])
    await first.checkpoint()  # all three pending on disk
    first.journal.mark_done([accept.key, bonus.key, rows.key])  # done ... and the process dies here
    first.journal.close()

    second = open_daemon_offline(tmp_path, settings)
    assert second.state.stats.spent == 0 and second.journal.pending() == []
    assert second.recount_after_restart() == 3
    stats = second.state.stats
    assert (stats.reward_money, stats.bonus_money, stats.spent) == (Decimal("0.50"), Decimal("0.15"), Decimal("0.65"))
    assert (stats.accepted, stats.bonuses_paid, stats.funnel) == (1, 1, {"accepted": 1})
    assert stats.pools["relevance"].decisions == {"ACCEPT assignment": 1}
    assert stats.pools["pedestrian"].rewards == Decimal("0.50") and "pa1" not in second.state.reviews
    await second.checkpoint()
    second.journal.close()

    third = open_daemon_offline(tmp_path, settings)
    assert third.recount_after_restart() == 0  # counted once, not again
    assert third.state.stats.spent == Decimal("0.65")
    third.journal.close()


async def test_a_bonus_over_the_limit_stays_pending_and_its_chain_stops_before_it(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    daemon = open_daemon_offline(tmp_path, settings_with(tmp_path, max_spend="1.00"))
    daemon.state.stats.reward_money = Decimal("0.90")
    bonus = PayBonus("pa2", "w2", Decimal("0.15"), "Bonus", "Thanks", "op-2")  # 0.90 + 0.15 > 1.00
    before = AppendRows("decisions", "pa2/quality/main", final_rows("pa2").rows)
    after = final_rows("pa2")
    daemon.journal.record([Step("pa2", before), Step("pa2", bonus), Step("pa2", after)])
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        created, failures = await daemon.execute_pending()
    assert (created, failures) == (0, 0)
    assert daemon.held == [bonus]
    assert daemon.journal.status(before.key) == "done"
    assert daemon.journal.status(bonus.key) == daemon.journal.status(after.key) == "pending"
    assert "SPENDING LIMIT" in caplog.text and "1 bonuses" in caplog.text
    assert daemon.over_budget
    daemon.journal.close()


async def test_at_the_limit_no_task_is_created(tmp_path: Path) -> None:
    daemon = open_daemon_offline(tmp_path, settings_with(tmp_path, max_spend="1.00"))
    daemon.state.stats.reward_money = Decimal("0.95")
    daemon.state.stats.bonus_money = Decimal("0.05")  # exactly the limit
    tasks = CreateTasks(daemon.settings.config.visit.pool_id, "op-4", (TaskSpec({"image": "x"}, 3),))
    daemon.journal.record([Step("pa4", tasks)])
    assert await daemon.execute_pending() == (0, 0)
    assert daemon.held == [tasks] and daemon.journal.status(tasks.key) == "pending"
    daemon.journal.close()
