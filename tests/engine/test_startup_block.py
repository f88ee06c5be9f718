"""The start-up block: the folders in use, absolute, and whether (and from what) the daemon resumed."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

from engine.runner import startup_block
from engine.spec import Review
from engine.state import EngineState
from pipelines import load_settings

REPO = Path(__file__).resolve().parents[2]


def test_a_resumed_start_names_the_checkpoint_time_the_work_under_review_and_the_pending_effects() -> None:
    settings = load_settings(REPO / "toloka.example.ini")
    state: EngineState[None] = EngineState(pipeline="pedestrian", state=None)
    for n in range(3):
        state.reviews[f"a{n}"] = Review(f"a{n}", "pedestrian", Decimal("0.10"), datetime(2026, 11, 1))
    block = startup_block(settings, state, resumed=True, saved_at=datetime(2026, 11, 30, 9, 15, 2), pending=1)
    lines = block.splitlines()
    assert lines[0] == f"config file:  {(REPO / 'toloka.example.ini').absolute()}"
    assert lines[1] == f"results:      {settings.pipeline.results_folder}"
    assert lines[2] == f"saves:        {settings.pipeline.saves_folder}"
    assert lines[3] == f"logs:         {settings.pipeline.logs_folder}"
    assert settings.file_store is not None and settings.file_store.local is not None
    assert lines[4] == f"photo store:  local folder {settings.file_store.local.folder}"
    assert all(Path(line.split(maxsplit=2)[-1]).is_absolute() for line in lines[:4])
    assert lines[5] == ("resumed from the checkpoint of 2026-11-30 09:15:02 UTC: "
                        "3 assignments under review, 1 effect pending")


def test_a_start_without_a_checkpoint_says_it_starts_from_the_beginning_of_the_pools() -> None:
    settings = load_settings(REPO / "toloka.example.ini")
    state: EngineState[None] = EngineState(pipeline="pedestrian", state=None)
    block = startup_block(settings, state, resumed=False, saved_at=None, pending=0)
    assert block.splitlines()[-1] == "no checkpoint: starting from the beginning of the pools"
    assert len(block.splitlines()) == 6
