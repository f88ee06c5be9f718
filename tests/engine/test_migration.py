"""Checkpoints written by the v1 (pedestrian-only) daemon load into the generic engine's state.

The fixtures in ``tests/fixtures/v1`` were written by the release before the engine split
(``checkpoint.pkl``: a demo interrupted mid-run; ``pending-effects.pkl``: the same state with
effects of every kind pending, among them a reject carrying the v1 ``context``).
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from common.errors import StateError
from engine.accounting import Stats
from engine.actions import AppendRows, CreateTasks, PayBonus, SetStatus
from engine.state import STATE_VERSION, EngineState, checkpoint_store, load_state
from handlers.state import Ledger
from pipelines.pedestrian import PEDESTRIAN

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "v1"
NOW = datetime(2026, 12, 1, 9, 0, 0)


def saves_with(tmp_path: Path, fixture: str) -> Path:
    folder = tmp_path / "saves"
    folder.mkdir(mode=0o700)
    shutil.copy(FIXTURES / fixture, folder / "checkpoint.pkl")
    (folder / "checkpoint.pkl").chmod(0o600)
    return folder


def test_an_interrupted_v1_run_becomes_version_2_with_everything_it_knew(tmp_path: Path) -> None:
    store = checkpoint_store(saves_with(tmp_path, "checkpoint.pkl"), PEDESTRIAN)
    state, found = load_state(store, PEDESTRIAN, NOW)
    assert found and isinstance(state, EngineState) and state.version == STATE_VERSION
    assert state.pipeline == "pedestrian" and isinstance(state.state, Ledger) and isinstance(state.stats, Stats)
    ledger = state.state
    assert len(ledger.works) == 8 and {w.stage for w in ledger.works.values()} == {"visit", "quality", "relevance"}
    assert set(state.cursors) == {"pedestrian", "visit", "quality", "relevance"}  # observer keys = v1 handler names
    assert state.stats.funnel == {"pedestrian": 10, "visit": 10, "quality": 4, "relevance": 1}
    # Every work under review is known to the engine, with the pedestrian reward owed once it is accepted.
    assert set(state.reviews) == set(ledger.works)
    assert all(r.pool == "pedestrian" and r.reward == Decimal("0.50") for r in state.reviews.values())
    # Written back, it is a version-2 checkpoint that loads as it is.
    store.write(store.encode(state))
    again, _ = load_state(store, PEDESTRIAN, NOW)
    assert again.version == STATE_VERSION and set(again.state.works) == set(ledger.works)
    assert again.stats == state.stats and again.cursors == state.cursors


def test_pending_v1_effects_survive_and_a_reject_keeps_its_auto_accepted_row(tmp_path: Path) -> None:
    state, _ = load_state(checkpoint_store(saves_with(tmp_path, "pending-effects.pkl"), PEDESTRIAN), PEDESTRIAN, NOW)
    kinds = [type(step.action).__name__ for step in state.journal.pending]
    assert kinds == ["StorePhoto", "CreateTasks", "CopyPhoto", "SetStatus", "PayBonus", "AppendRows"]
    [chain] = {step.chain for step in state.journal.pending}
    status = next(s.action for s in state.journal.pending if isinstance(s.action, SetStatus))
    assert status.status == "REJECTED" and status.context == {}
    assert isinstance(status.if_overtaken, AppendRows) and status.if_overtaken.table == "decisions"
    [row] = status.if_overtaken.rows
    assert row["event"] == "auto-accepted" and row["handler"] == "relevance"
    assert row["comment"] == "wanted REJECTED: Not relevant photos" and row["pedestrian_assignment_id"] == chain
    assert row["date_time"] == "2026-12-01 09:00:00" and row["name"] == state.state.works[chain].name
    assert state.reviews[chain].reward == Decimal("0.30")  # the owed reward the v1 state held
    others = [s.action for s in state.journal.pending if not isinstance(s.action, SetStatus)]
    assert any(isinstance(a, CreateTasks) for a in others) and any(isinstance(a, PayBonus) for a in others)


def test_a_pipeline_that_cannot_adopt_v1_refuses_and_leaves_the_file(tmp_path: Path) -> None:
    folder = saves_with(tmp_path, "checkpoint.pkl")
    other = replace(PEDESTRIAN, name="other", migrate_v1=None)
    before = (folder / "checkpoint.pkl").read_bytes()
    with pytest.raises(StateError, match="cannot adopt it"):
        load_state(checkpoint_store(folder, other), other, NOW)
    assert (folder / "checkpoint.pkl").read_bytes() == before


def test_a_checkpoint_of_another_pipeline_is_refused(tmp_path: Path) -> None:
    folder = tmp_path / "saves"
    store = checkpoint_store(folder, PEDESTRIAN)
    store.write(store.encode(EngineState(pipeline="pedestrian", state=Ledger())))
    other = replace(PEDESTRIAN, name="other")
    with pytest.raises(StateError, match="written by the 'pedestrian' pipeline"):
        load_state(checkpoint_store(folder, other), other, NOW)
