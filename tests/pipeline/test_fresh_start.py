"""Never start over by accident: a lost ``saves/`` is refused, ``--fresh`` doubles nothing.

One run of the demo scenario to the end against the emulator (its own
process), then ``saves/`` is deleted. Started again, the daemon refuses (exit 2,
the tables it found, what ``--fresh`` does) and changes no table. With
``--fresh`` it reads every pool from the beginning and decides everything
again: every table keeps one row per fact (the same facts as before), and
Toloka is unchanged (no new task, no second accept, reject or bonus).
"""

from __future__ import annotations

import shutil
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from handlers.tables import pedestrian_tables
from pipelines import load_settings
from tools.harness import (
    objects,
    pause_crowd,
    pedestrian_finished,
    run_pipeline,
    served_emulator,
    start_pipeline,
    stop,
    truth,
)


def tables(folder: Path) -> dict[str, Path]:
    """The pedestrian pipeline's tables in ``folder`` (as fast_config places them) by name."""
    settings = load_settings(folder / "toloka.ini")
    return {
        name: (folder / ("logs" if spec.folder == "logs" else "results") / spec.filename)
        for name, spec in pedestrian_tables(settings.config).items()
    }


def keyed_rows(folder: Path) -> dict[str, list[tuple[str, ...]]]:
    """Each table's rows as key tuples (its declared key), in file order."""
    settings = load_settings(folder / "toloka.ini")
    out: dict[str, list[tuple[str, ...]]] = {}
    for name, spec in pedestrian_tables(settings.config).items():
        path = tables(folder)[name]
        if not path.exists():
            out[name] = []
            continue
        frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
        out[name] = [tuple(row) for row in frame[list(spec.key)].itertuples(index=False)]
    return out


def toloka(db: Path) -> dict[str, Any]:
    """What the emulator holds that a second start must not change."""
    return {
        "tasks": sorted(t["id"] for t in objects(db, "task")),
        "assignments": sorted((a["id"], a["status"]) for a in objects(db, "assignment")),
        "bonuses": sorted((b.get("assignment_id"), str(b["amount"])) for b in objects(db, "bonus")),
    }


def wait_until_quiet(folder: Path, proc: Any, *, quiet_ticks: int, timeout: float) -> None:
    """Until the daemon's last ``quiet_ticks`` tick lines fetched, decided and left nothing."""
    out = folder / "pipeline.out"
    deadline = time.monotonic() + timeout
    while True:
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() < deadline, out.read_text()[-3000:]
        ticks = [line for line in out.read_text().splitlines() if " tick: " in line]
        last = ticks[-quiet_ticks:]
        if len(last) == quiet_ticks and all(
            "fetched 0, decided 0, created 0" in line and "pending effects 0," in line for line in last
        ):
            return
        time.sleep(0.5)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_lost_saves_folder_is_refused_and_a_fresh_start_doubles_nothing(tmp_path: Path) -> None:
    with served_emulator(tmp_path, seed=4, speed=120) as url:
        settings = load_settings(tmp_path / "toloka.ini")
        db = tmp_path / "emulator.sqlite"
        organizations = len(truth(db, "org"))
        config = str(tmp_path / "toloka.ini")

        proc = start_pipeline(tmp_path)
        deadline = time.monotonic() + 240
        while not pedestrian_finished(url, settings.config.pedestrian.pool_id, organizations):
            assert time.monotonic() < deadline, (tmp_path / "pipeline.out").read_text()[-3000:]
            assert proc.poll() is None, (tmp_path / "pipeline.out").read_text()[-3000:]
            time.sleep(1)
        pause_crowd(url)  # nothing new arrives: what follows only reads what is there
        wait_until_quiet(tmp_path, proc, quiet_ticks=3, timeout=120)
        assert stop(proc) == 0
        first_out = (tmp_path / "pipeline.out").read_text()
        assert "no checkpoint: starting from the beginning of the pools" in first_out

        before_rows = keyed_rows(tmp_path)
        before_bytes = {name: path.read_bytes() for name, path in tables(tmp_path).items() if path.exists()}
        before_toloka = toloka(db)
        assert before_rows["decisions"] and before_rows["answers"] and before_rows["main_tasks"]

        # A resumed start says so, with the counts of the checkpoint it found.
        resumed = run_pipeline(tmp_path, "--config", config, "--once")
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert "resumed from the checkpoint of " in resumed.stdout
        assert "0 assignments under review, 0 effects pending" in resumed.stdout
        assert f"saves:        {tmp_path / 'saves'}" in resumed.stdout

        shutil.rmtree(tmp_path / "saves")

        # Without --fresh: refused, every table named with its rows, nothing written.
        refused = run_pipeline(tmp_path, "--config", config, "--once")
        assert refused.returncode == 2, refused.stdout[-2000:] + refused.stderr[-2000:]
        message = refused.stderr
        assert f"no checkpoint in {tmp_path / 'saves'}" in message
        decisions_rows = len(before_rows["decisions"])
        assert f"{tmp_path / 'logs' / 'decisions.tsv'}: {decisions_rows} rows" in message
        assert f"{tmp_path / 'results' / 'main_tasks.tsv'}: {len(before_rows['main_tasks'])} row" in message
        assert "--fresh" in message and "beginning of the pools" in message and "not written twice" in message
        assert "Traceback" not in message
        assert not (tmp_path / "saves").exists()  # refused before anything is made: a restore can go back in place
        assert {n: p.read_bytes() for n, p in tables(tmp_path).items() if p.exists()} == before_bytes
        assert toloka(db) == before_toloka

        # With --fresh: every pool is read again; work Toloka holds decided is left alone.
        out = tmp_path / "pipeline.out"
        out.write_text("")
        proc = start_pipeline(tmp_path, "--fresh")
        wait_until_quiet(tmp_path, proc, quiet_ticks=5, timeout=180)
        assert stop(proc, signal.SIGTERM) == 0
        fresh_out = out.read_text()
        assert "no checkpoint: starting from the beginning of the pools" in fresh_out
        assert "Traceback" not in fresh_out
        ticks = [line for line in fresh_out.splitlines() if " tick: " in line]
        fetched = sum(int(line.split("fetched ")[1].split(",")[0]) for line in ticks)
        decided_again = sum(int(line.split("decided ")[1].split(",")[0]) for line in ticks)
        assert fetched > 0, "the fresh start read nothing: the test would prove nothing"
        assert decided_again == 0, "work Toloka holds accepted or rejected was decided again"
        pool_logs = (tmp_path / "logs").glob("pedestrian_*/info.log")
        assert any("on Toloka; left alone" in p.read_text() for p in pool_logs), "no pedestrian work was skipped"

        after_toloka = toloka(db)
    after_rows = keyed_rows(tmp_path)
    for name, rows in after_rows.items():
        doubled = [key for key, n in Counter(rows).items() if n > 1]
        assert doubled == [], f"{name}: facts written twice: {doubled[:5]}"
        assert set(rows) >= set(before_rows[name]), f"{name} lost rows"
    for name in ("main_tasks", "no_org", "bonus_tasks", "held", "answers"):
        assert sorted(after_rows[name]) == sorted(before_rows[name]), f"{name} changed after --fresh"
    assert after_toloka == before_toloka


def test_decisions_without_a_checkpoint_refuse_to_start_and_fresh_starts(tmp_path: Path) -> None:
    with served_emulator(tmp_path, seed=2, speed=1):
        config = str(tmp_path / "toloka.ini")
        decisions = tmp_path / "logs" / "decisions.tsv"
        decisions.parent.mkdir()
        header = "\t".join(f'"{c}"' for c in ("date_time", "name", "address", "pedestrian_assignment_id",
                                                 "handler", "group", "event", "comment"))
        record = '"2026-11-01 10:00:00"\t"Cafe"\t"Main st 1"\t"a1"\t"relevance"\t"a1/main"\t"ACCEPT assignment"\t""'
        decisions.write_text(f"{header}\n{record}\n")
        (tmp_path / "saves").mkdir(mode=0o700)  # empty, as after a lost checkpoint

        refused = run_pipeline(tmp_path, "--config", config, "--once")
        assert refused.returncode == 2
        assert refused.stderr.startswith(f"pipeline: no checkpoint in {tmp_path / 'saves'}, but earlier runs left")
        assert f"{decisions}: 1 row\n" in refused.stderr
        assert "add --fresh: the cursors start from the beginning of the pools" in refused.stderr
        assert "existing rows are kept and not written twice" in refused.stderr
        assert " tick: " not in refused.stdout and not (tmp_path / "saves" / "checkpoint.pkl").exists()
        assert decisions.read_text() == f"{header}\n{record}\n"

        started = run_pipeline(tmp_path, "--config", config, "--once", "--fresh")
        assert started.returncode == 0, started.stderr[-3000:]
        # The block is printed once (stdout, not again by the console log) and logged to the files.
        assert started.stdout.startswith(f"config file:  {tmp_path / 'toloka.ini'}\n")
        assert "\nno checkpoint: starting from the beginning of the pools\n" in started.stdout
        assert "no checkpoint" not in started.stderr
        info = (tmp_path / "logs" / "pipeline" / "info.log").read_text()
        assert "start-up:\nconfig file:" in info and "no checkpoint: starting from the beginning" in info
        assert started.stdout.count(" tick: ") == 1
        assert (tmp_path / "saves" / "checkpoint.pkl").exists()
        assert decisions.read_text().startswith(f"{header}\n{record}\n")

        again = run_pipeline(tmp_path, "--config", config, "--once")  # a checkpoint now: no --fresh needed
        assert again.returncode == 0, again.stderr[-3000:]
        assert "resumed from the checkpoint of " in again.stdout
