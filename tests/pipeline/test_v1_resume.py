"""A demo interrupted by the v1 daemon (before the engine split) resumes with this release to the same outcome.

``tests/fixtures/v1/interrupted-demo.tar.gz`` is the folder ``python pipeline.py --demo`` left when the
v1 release was SIGKILLed 17 s into the run with seed 1 (8 pedestrian assignments at the visit, quality
and relevance checks). Photo links given to the crowd are ``file://`` URLs under the folder the demo ran
in, so the archive is unpacked at that same path.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pandas as pd
import pytest

from tools.harness import REPO

ARCHIVE = REPO / "tests" / "fixtures" / "v1" / "interrupted-demo.tar.gz"
FOLDER = Path("/tmp/pipeline-v1-fixture")  # where the v1 demo ran: the crowd's photo links point there
# What the uninterrupted v1 demo printed for seed 1 (the release before the engine split).
V1_SUMMARY = (
    "  accepted (organization photographed): 5",
    "  accepted (organization does not exist): 2",
    "  rejected: 5",
    "Decision log events: ACCEPT assignment 7, BAD image 3, GOOD image 81, PAY bonus 5, REJECT assignment 5, "
    "submit 12, to quality validation 23, to relevance validation 19, to visit validation 12",
    "Money spent: rewards 6.83 + bonuses 0.55 (5 bonuses) = 7.38",
    "  decisions as expected: 10 of 12 (accuracy 0.8333)",
)


def unpack() -> None:
    """The v1 folder at its own path, its pools kept from expiring or auto-accepting while the test runs.

    The fixture was recorded on 2026-11-30; the emulator accepts pedestrian work by itself 7 days after
    submission and closes pools at ``will_expire``. Stretching both keeps a later run of this test from
    meeting Toloka's auto-accept, which is another story (tests/pipeline/test_executor.py).
    """
    shutil.rmtree(FOLDER, ignore_errors=True)
    with tarfile.open(ARCHIVE) as archive:
        archive.extractall(FOLDER.parent, filter="tar")
    with sqlite3.connect(FOLDER / "emulator.sqlite") as db:
        for key, doc in db.execute("SELECT id, doc FROM objects WHERE kind = 'pool'").fetchall():
            pool = json.loads(doc)
            if pool.get("auto_accept_period_day"):
                pool["auto_accept_period_day"] = 36500
            pool["will_expire"] = "2126-01-01T00:00:00.000"
            db.execute("UPDATE objects SET doc = ? WHERE kind = 'pool' AND id = ?", (json.dumps(pool), key))
        # This release sends fields the v1 projects lack (the photo's id to the photo checks, the
        # organization's extras to the visit check); start-up refuses a project without them, so the
        # fixture's projects get them, as an operator upgrading a v1 deployment adds them.
        for key, doc in db.execute("SELECT id, doc FROM objects WHERE kind = 'project'").fetchall():
            project = json.loads(doc)
            inputs = project["task_spec"]["input_spec"]
            added = ("photo_id",) if "image" in inputs else ("segment", "phone", "website")
            if "pedestrian_assignment_id" in inputs:
                for field in added:
                    inputs.setdefault(field, {"type": "string", "required": False})
            db.execute("UPDATE objects SET doc = ? WHERE kind = 'project' AND id = ?", (json.dumps(project), key))


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_an_interrupted_v1_demo_resumes_to_the_v1_outcome() -> None:
    unpack()
    assert json.loads((FOLDER / ".pipeline-demo.json").read_text()) == {"seed": 1, "finished": False}
    try:
        result = subprocess.run([sys.executable, "pipeline.py", "--demo", "--demo-dir", str(FOLDER)], cwd=REPO,
                                capture_output=True, text=True, timeout=280)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        out = result.stdout
        assert f"demo: resuming the interrupted run in {FOLDER}" in out
        for line in V1_SUMMARY:
            assert line in out, line
        decisions = pd.read_csv(FOLDER / "logs" / "decisions.tsv", sep="\t", dtype=str, keep_default_na=False)
        assert not decisions.duplicated().any()  # rows the v1 run wrote are not written again
        finals = decisions[decisions["event"].isin(["ACCEPT assignment", "REJECT assignment"])]
        assert finals["pedestrian_assignment_id"].is_unique and len(finals) == 12
        assert (FOLDER / "saves" / "checkpoint.pkl").read_bytes().split(b" ")[0] == b"PEDESTRIAN-PIPELINE-CHECKPOINT"
    finally:
        shutil.rmtree(FOLDER, ignore_errors=True)
