"""kill -9 at random instants: nothing lost, nothing done twice.

The daemon (``python pipeline.py``) runs against the emulator (another
process) and is killed with SIGKILL at random moments, then restarted, until
the demo scenario's work is decided. Then the emulator's records and the TSVs
must show exactly one decision per assignment, no task twice, at most one
bonus per assignment of the right amount, and no repeated row.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from pipelines import load_settings
from tools.harness import (
    objects,
    pedestrian_finished,
    served_emulator,
    start_pipeline,
    stop,
    truth,
)

KILLS = 6


def tsv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_repeated_sigkill_loses_nothing_and_duplicates_nothing(tmp_path: Path) -> None:
    rng = random.Random(20261122)
    with served_emulator(tmp_path, seed=5, speed=120) as url:
        settings = load_settings(tmp_path / "toloka.ini")
        organizations = len(truth(tmp_path / "emulator.sqlite", "org"))
        kills = 0
        while kills < KILLS:
            proc = start_pipeline(tmp_path)
            time.sleep(rng.uniform(1.5, 4.0))  # start-up takes about a second; then mid-tick
            proc.send_signal(signal.SIGKILL)
            proc.wait(30)
            kills += 1
        proc = start_pipeline(tmp_path)
        deadline = time.monotonic() + 240
        while not pedestrian_finished(url, settings.config.pedestrian.pool_id, organizations):
            assert time.monotonic() < deadline, "the pipeline did not finish after the kills"
            assert proc.poll() is None, (tmp_path / "pipeline.out").read_text()[-3000:]
            time.sleep(1)
        time.sleep(3)  # let the last chains (rows, bonuses) finish
        assert stop(proc) == 0
        # One more start: whatever was still pending is done now, idempotently.
        assert start_pipeline(tmp_path, "--once").wait(120) == 0
    db = tmp_path / "emulator.sqlite"
    pedestrian = set(truth(db, "assignment"))
    out = (tmp_path / "pipeline.out").read_text()
    assert out.count("Traceback") == 0, out[-3000:]

    decisions = tsv(tmp_path / "logs" / "decisions.tsv")
    finals = decisions[decisions["event"].isin(["ACCEPT assignment", "REJECT assignment"])]
    assert Counter(finals["pedestrian_assignment_id"]) == Counter(dict.fromkeys(pedestrian, 1))
    assert not decisions.duplicated().any()

    statuses = {a["id"]: a["status"] for a in objects(db, "assignment") if a["id"] in pedestrian}
    accepted = set(finals[finals["event"] == "ACCEPT assignment"]["pedestrian_assignment_id"])
    assert accepted == {pa for pa, status in statuses.items() if status == "ACCEPTED"}

    tasks = Counter(
        (t["pool_id"], t["input_values"]["pedestrian_assignment_id"], t["input_values"].get("photo_id", ""))
        for t in objects(db, "task")
        if "pedestrian_assignment_id" in t["input_values"]
    )
    assert max(tasks.values()) == 1

    answers = tsv(tmp_path / "logs" / "answers.tsv")
    assert not answers.duplicated(["task", "assignment_id"]).any()
    for name in ("main_tasks.tsv", "no_org.tsv", "bonus_tasks.tsv"):
        path = tmp_path / "results" / name
        if path.exists():
            frame = tsv(path)
            assert not frame.duplicated("pedestrian_assignment_id" if name != "bonus_tasks.tsv"
                                        else ["pedestrian_assignment_id", "bonus_field"]).any(), name

    bonuses = objects(db, "bonus")
    assert max(Counter(b["assignment_id"] for b in bonuses).values(), default=1) == 1
    owed: dict[str, Decimal] = {}
    bonus_path = tmp_path / "results" / "bonus_tasks.tsv"
    if bonus_path.exists():
        for row in tsv(bonus_path).itertuples():
            owed[row.pedestrian_assignment_id] = owed.get(row.pedestrian_assignment_id, Decimal(0)) + Decimal(row.bonus_amount)
    assert {b["assignment_id"]: Decimal(str(b["amount"])) for b in bonuses} == owed
