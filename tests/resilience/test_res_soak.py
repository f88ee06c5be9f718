"""The crash-restart soak in its short CI form: at least 5 SIGKILLs, then every check of tools/soak.py.

The full run (30+ kills) is ``python -m tools.soak``; docs/resilience.md gives its last verdict.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tools.soak import soak


@pytest.mark.slow
@pytest.mark.timeout(420)
@pytest.mark.parametrize("pipeline", ["pedestrian", "find_items"])
def test_short_soak_loses_nothing_and_matches_an_uninterrupted_run(tmp_path: Path, pipeline: str) -> None:
    line, passed = soak(tmp_path, seed=5, speed=120, kills=5, kill_seed=7, timeout=300, pipeline=pipeline,
                        min_life_s=4.0)
    print(line)
    details = (tmp_path / "soak-details.json").read_text()
    assert passed, f"{line}\n{details}"
    kills = int(line.split("kills=")[1].split()[0])
    assert kills >= 5 and f"pipeline={pipeline}" in line
