"""What the decisions need a person to see: alarms, the checkers' learned quality, work held for a person.

An offline engine (tests/engine/probe_world.py) with a pipeline whose hooks read
its state; the real status server serves the page and headless Chromium draws it.
"""

from __future__ import annotations

import asyncio
import re
import dataclasses
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.snapshot import take_snapshot
from file_store.local import LocalFileStore
from status.server import serve_status
from status.settings import StatusSettings
from tests.engine.probe_world import Clock, offline_engine, spec
from tests.status.test_status_photo_store import banner
from tools.chromium import chromium

T0 = datetime(2026, 5, 1, 12, 0, 0)
WORKERS = [
    {"pool": "visit", "worker": "spammer-1", "accuracy": 0.5, "sensitivity": 0.95, "specificity": 0.05,
     "scored": 40, "controls": 12, "controls_right": 6, "restricted": "yes"},
    {"pool": "quality", "worker": "good-7", "accuracy": 0.91, "sensitivity": 0.93, "specificity": 0.89,
     "scored": 55, "controls": 10, "controls_right": 10, "restricted": ""},
]


def pipeline() -> Any:
    return dataclasses.replace(
        spec(),
        alarms=lambda state: state.get("alarms", []),
        workers=lambda state: state.get("workers", []),
        held=lambda state: state.get("held", []),
    )


async def test_alarms_workers_and_held_work_reach_status_page_and_workers_tsv(tmp_path: Path) -> None:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=2)
    clock = Clock(T0)
    engine = offline_engine(tmp_path, store, clock, pipeline())
    try:
        engine.state.state.update(
            alarms=["quality pool: 90% of the last 30 verdicts negative, against a usual 20%"],
            workers=WORKERS,
            held=[{"id": "pa-17", "reason": "visit: task t1 unsure after all answers (yes 0.61)"}],
        )
        await engine.tick()
        snapshot = take_snapshot(engine, clock())
        assert snapshot["alarms"] == ["quality pool: 90% of the last 30 verdicts negative, against a usual 20%"]
        assert [w["worker"] for w in snapshot["workers"]] == ["spammer-1", "good-7"]
        assert snapshot["held"] == [{"id": "pa-17", "reason": "visit: task t1 unsure after all answers (yes 0.61)"}]
        written = (tmp_path / "logs" / "workers.tsv").read_text().splitlines()
        assert written[0].split("\t")[:3] == ['"pool"', '"worker"', '"accuracy"'] and len(written) == 3

        settings = StatusSettings(enabled=True, port=0, refresh_seconds=1)
        async with serve_status(lambda: take_snapshot(engine, clock()), settings, None) as server:
            result = await asyncio.to_thread(chromium, tmp_path, "--dump-dom", server.url)
        assert result.returncode == 0, result.stderr[-2000:]
        kind, text = banner(result.stdout)
        assert kind == "banner bad" and text.startswith("Alarm: quality pool: 90% of the last 30")
        workers_table = re.search(r"<table id=\"workers\">.*?</table>", result.stdout, re.S)
        assert workers_table, result.stdout[-3000:]
        assert "<td>spammer-1</td>" in workers_table.group(0), workers_table.group(0)
        assert "6/12" in workers_table.group(0)
        assert "<td>pa-17</td>" in result.stdout
    finally:
        engine.journal.close()
        await store.aclose()
