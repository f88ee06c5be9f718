"""The crash-restart soak of the find-items pipeline in its short CI form (see test_res_soak.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.resilience.test_res_soak import short_soak


@pytest.mark.slow
@pytest.mark.timeout(420)
def test_short_find_items_soak_loses_nothing_and_matches_an_uninterrupted_run(tmp_path: Path) -> None:
    short_soak(tmp_path, "find_items")
