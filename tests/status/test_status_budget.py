"""[Pipeline] max_spend: paid effects stop at the limit, wait in the journal across a kill -9 and a restart,
and run once when the limit is raised in toloka.ini."""

from __future__ import annotations

import signal
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd

from status_live import Live, all_decided, live_pipeline, status, wait_for_status_url, wait_until
from tools.harness import admin, edit_ini, start_pipeline, stop

ORGANIZATIONS = 12
LIMIT = Decimal("5.00")  # the demo scenario spends about 9: the limit is met during the relevance checks


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def paid(live: Live) -> tuple[int, list[dict]]:
    """(tasks in the three verification pools, bonuses) as the emulator has them."""
    pools = live.settings.pools()
    tasks = sum(len(admin(live.emulator_url, f"/api/v1/tasks?pool_id={pools[n]}&limit=1000")["items"])
                for n in ("visit", "quality", "relevance"))
    return tasks, admin(live.emulator_url, "/api/v1/user-bonuses?limit=1000")["items"]


def test_spending_limit_holds_paid_effects_across_a_kill_and_a_raise_pays_each_once(tmp_path: Path) -> None:
    with live_pipeline(tmp_path, seed=5, speed=240, max_spend=str(LIMIT)) as live:
        held = wait_until(live, lambda s: Decimal(s["money"]["spent"]) >= LIMIT and s["money"]["over_budget"]
                          and s["last_tick"]["held"] > 0, 120, "the spending limit")
        tasks_then, bonuses_then = paid(live)
        assert sum(Decimal(str(b["amount"])) for b in bonuses_then) <= LIMIT
        # A few more ticks: nothing paid is created any more, and what is held stays pending.
        later = wait_until(live, lambda s: s["ticks"] >= held["ticks"] + 3, 30, "three more ticks")
        tasks_now, bonuses_now = paid(live)
        assert (tasks_now, len(bonuses_now)) == (tasks_then, len(bonuses_then))
        money = later["money"]
        assert money["held_tasks"] + money["held_bonuses"] > 0
        kinds = later["pending_effects"]["by_kind"]
        assert kinds.get("CreateTasks", 0) >= money["held_tasks"] and kinds.get("PayBonus", 0) >= money["held_bonuses"]
        assert "HELD" in (tmp_path / "pipeline.out").read_text()
        assert "SPENDING LIMIT" in (tmp_path / "logs" / "pipeline" / "error.log").read_text()
        assert stop(live.proc, signal.SIGKILL, timeout=60) == -signal.SIGKILL  # no goodbye: only saves/ remains

        # Restarted with the same limit: what is held stays held (nothing paid at start-up).
        offset = len((tmp_path / "pipeline.out").read_text())
        live.proc = start_pipeline(tmp_path)
        live.status_url = wait_for_status_url(tmp_path, live.proc, after=offset)
        again = wait_until(live, lambda s: s["ticks"] >= later["ticks"] + 3 and s["money"]["over_budget"]
                           and s["last_tick"]["held"] > 0, 60, "three ticks after the restart, still held")
        assert paid(live)[0] == tasks_then and len(paid(live)[1]) == len(bonuses_then)
        assert Decimal(again["money"]["bonuses"]) == sum(Decimal(str(b["amount"])) for b in bonuses_then)

        # Raise the limit in toloka.ini while it runs: the held effects run at the next tick, each once.
        edit_ini(tmp_path / "toloka.ini", "Pipeline", max_spend="100")
        done = wait_until(live, all_decided(ORGANIZATIONS), 120, "every organization decided after the raise")
        assert done["money"]["over_budget"] is False and done["money"]["held_tasks"] == done["money"]["held_bonuses"] == 0
        assert done["money"]["max_spend"] == "100"
        assert "max_spend changed from 5.00 to 100" in (tmp_path / "logs" / "pipeline" / "error.log").read_text()
        _, bonuses = paid(live)
        time.sleep(0.5)
        final = status(live)

    assert Counter(b["assignment_id"] for b in bonuses).most_common(1)[0][1] == 1
    owed: dict[str, Decimal] = {}
    for row in tsv(tmp_path / "results" / "bonus_tasks.tsv").itertuples():
        owed[row.pedestrian_assignment_id] = owed.get(row.pedestrian_assignment_id, Decimal(0)) + Decimal(row.bonus_amount)
    assert {b["assignment_id"]: Decimal(str(b["amount"])) for b in bonuses} == owed and len(owed) > len(bonuses_then)
    # The money counted across the stop and restart is what the emulator paid, not more.
    assert Decimal(final["money"]["bonuses"]) == sum(owed.values())
    assert final["money"]["bonuses_paid"] == len(bonuses)
    decisions = tsv(tmp_path / "logs" / "decisions.tsv")
    finals = decisions[decisions["event"].isin(["ACCEPT assignment", "REJECT assignment"])]
    assert sorted(Counter(finals["pedestrian_assignment_id"]).values()) == [1] * ORGANIZATIONS
    assert not decisions.duplicated().any()
