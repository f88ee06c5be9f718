"""What the pedestrian pipeline loads at start-up depends on its configuration (PipelineSpec.prepare)."""

from __future__ import annotations

import configparser
import subprocess
import sys
from pathlib import Path

import pytest

from tools.harness import REPO

PROBE = ("import sys; from pipelines import load_settings; from pipelines.pedestrian import PEDESTRIAN; "
         "PEDESTRIAN.prepare(load_settings(sys.argv[1]).config); print('crowdkit' in sys.modules)")


def loads_crowd_kit(config: Path) -> bool:
    done = subprocess.run([sys.executable, "-c", PROBE, str(config)], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=True)
    return done.stdout.strip() == "True"


@pytest.mark.parametrize("fixed, method", [(False, "MajorityVote"), (True, "MajorityVote"), (True, "Wawa")])
def test_crowd_kit_is_loaded_only_where_a_pool_keeps_a_fixed_overlap_with_a_model(tmp_path: Path, fixed: bool,
                                                                                   method: str) -> None:
    """Only DawidSkene and Wawa aggregate with crowd-kit: a restart need not pay seconds to import it otherwise."""
    config = tmp_path / "toloka.ini"
    config.write_text((REPO / "toloka.example.ini").read_text())
    if fixed:  # the quality pool alone goes back to "overlap = 3" (the policy's keys removed)
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(config, encoding="utf-8")
        for key in ("min_overlap", "max_overlap", "confidence", "reject_confidence", "fallback"):
            cfg.remove_option("ValidationQuality", key)
        cfg["ValidationQuality"]["overlap"] = "3"
        cfg["ValidationQuality"]["aggregation"] = method
        with config.open("w", encoding="utf-8") as handle:
            cfg.write(handle)
    assert loads_crowd_kit(config) is (method != "MajorityVote")
