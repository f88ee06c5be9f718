"""What the soak and the fault run need to know of each pipeline, by ``[Pipeline] definition``.

A :class:`Flow` names the emulator scenario that exercises the pipeline, when a
run of it is finished, and how a finished run is checked and summarized
(``tools/outcome.py`` for pedestrian, ``tools/find_items_outcome.py`` for
find_items), so tools/soak.py and tools/faults.py take the pipeline as a
parameter and stay the same for both.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipelines import load_settings
from tools import find_items_outcome, outcome
from tools.harness import pedestrian_finished, truth


def _pedestrian_finished(url: str, folder: Path) -> bool:
    settings = load_settings(folder / "toloka.ini")
    organizations = len(truth(folder / "emulator.sqlite", "org"))
    return pedestrian_finished(url, settings.config.pedestrian.pool_id, organizations)


@dataclass(frozen=True)
class Flow:
    """One pipeline as the crash and fault tools drive it."""

    pipeline: str
    scenario: str  # the emulator's built-in scenario
    unit: str  # what the outcome is compared per (organization, image)
    finished: Callable[[str, Path], bool]  # (emulator URL, run folder): is every unit decided?
    check_run: Callable[[Path], outcome.Findings]
    outcome: Callable[[Path], dict[str, dict[str, Any]]]
    # The soak's kill instants that exist in this pipeline (find_items stores no photos).
    kill_kinds: tuple[str, ...] = ("random", "checkpoint", "effects", "photo")


FLOWS = {
    "pedestrian": Flow("pedestrian", "demo", "orgs", _pedestrian_finished, outcome.check_run, outcome.outcome),
    "find_items": Flow("find_items", "find_items", "images", find_items_outcome.finished,
                       find_items_outcome.check_run, find_items_outcome.outcome,
                       kill_kinds=("random", "checkpoint", "effects")),
}
