"""The crash-restart soak of the pedestrian pipeline in its short CI form: 5+ SIGKILLs, every check of tools/soak.py.

The full run (30+ kills) is ``python -m tools.soak``; docs/resilience.md gives its last verdict.
The find-items pipeline's short soak is in test_res_soak_find_items.py (its own file, so that
the two run side by side under pytest-xdist's ``--dist loadfile``).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.soak import soak


def short_soak(folder: Path, pipeline: str) -> None:
    """At least 5 kills spread over the run (each daemon lives 2-4 s first), then the soak's checks."""
    line, passed = soak(folder, seed=5, speed=120, kills=5, kill_seed=7, timeout=300, pipeline=pipeline,
                        min_life_s=4.0)
    print(line)
    details = (folder / "soak-details.json").read_text()
    assert passed, f"{line}\n{details}"
    kills = int(line.split("kills=")[1].split()[0])
    assert kills >= 5 and f"pipeline={pipeline}" in line


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_short_soak_loses_nothing_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    short_soak(tmp_path, "pedestrian")
