"""A pool the pipeline waits on nothing from is searched only now and then (PipelineSpec.expects)."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

import probe_world
from probe_world import Clock, offline_engine, spec

from engine.spec import Decision, ObserverSpec
from engine.ticker import IDLE_SEARCH_TICKS
from handlers.state import Ledger, Work
from pipelines.pedestrian import PEDESTRIAN

T0 = datetime(2026, 5, 1, 12, 0, 0)


def test_an_idle_pool_is_searched_once_in_idle_search_ticks_and_a_busy_one_every_tick(
        tmp_path: Path, monkeypatch: Any) -> None:
    def nothing(state: Any, batch: Any, ctx: Any) -> Decision:
        return Decision()

    observers = tuple(ObserverSpec(pool, event=lambda c: "accepted", handler=nothing) for pool in ("busy", "idle"))
    pipeline = dataclasses.replace(spec(), observers=observers, expects=lambda state, pool: pool == "busy",
                                   pools=lambda c: {"busy": "1", "idle": "2"})
    plain = probe_world.settings
    monkeypatch.setattr(probe_world, "settings",
                        lambda folder: dataclasses.replace(plain(folder), pool_ids={"busy": "1", "idle": "2"}))
    engine = offline_engine(tmp_path, None, Clock(T0), pipeline)
    searched = []
    for tick in range(1, 2 * IDLE_SEARCH_TICKS + 1):
        engine.state.stats.ticks = tick
        searched.append(tuple(o.pool for o in engine._due_observers()))
    assert searched.count(("busy",)) == 2 * IDLE_SEARCH_TICKS - 2
    assert searched.count(("busy", "idle")) == 2
    engine.journal.close()


def test_the_pedestrian_pipeline_waits_on_a_checking_pool_only_while_work_is_at_its_stage() -> None:
    ledger = Ledger()
    assert [p for p in ("pedestrian", "visit", "quality", "relevance") if PEDESTRIAN.expects(ledger, p)] == [
        "pedestrian"]
    ledger.works["a"] = Work(assignment_id="a", user_id="u", submitted=None, org={}, verdict="ok",
                             worker_coordinates="", comment="", groups={})
    ledger.works["a"].stage = "quality"
    assert [p for p in ("pedestrian", "visit", "quality", "relevance") if PEDESTRIAN.expects(ledger, p)] == [
        "pedestrian", "quality"]


def test_answers_of_work_decided_meanwhile_are_not_shown_as_waiting() -> None:
    from handlers.state import Ballot
    from pipelines.pedestrian import gauges

    ledger = Ledger()
    ledger.works["open"] = Work(assignment_id="open", user_id="u", submitted=None, org={}, verdict="ok",
                                worker_coordinates="", comment="", groups={})
    box = ledger.ballots_of("quality")
    for task, work in (("t1", "open"), ("t2", "decided")):
        box[task] = [Ballot(task_id=task, assignment_id="a", worker_id="w", label="ok",
                            pedestrian_assignment_id=work, group="g", photo_id="p", image_field="f", url="u")]
    assert gauges(ledger)["quality"]["answers_waiting"] == 1


def test_a_pool_whose_search_brought_nothing_rests_one_tick(tmp_path: Path, monkeypatch: Any) -> None:
    def nothing(state: Any, batch: Any, ctx: Any) -> Decision:
        return Decision()

    observers = (ObserverSpec("busy", event=lambda c: "accepted", handler=nothing),)
    pipeline = dataclasses.replace(spec(), observers=observers, pools=lambda c: {"busy": "1"})
    plain = probe_world.settings
    monkeypatch.setattr(probe_world, "settings", lambda folder: dataclasses.replace(plain(folder), pool_ids={"busy": "1"}))
    engine = offline_engine(tmp_path, None, Clock(T0), pipeline)
    engine.state.stats.ticks = 3
    assert [o.pool for o in engine._due_observers()] == ["busy"]
    engine._quiet.add("busy")  # what a search that brought nothing leaves
    assert engine._due_observers() == []
    assert [o.pool for o in engine._due_observers()] == ["busy"]  # rested once, searched again
    engine.journal.close()
