"""``python pipeline.py --demo`` killed with SIGKILL, then run again: it resumes and ends as an
uninterrupted demo with the same seed (the emulator dies with it: both restart from their files)."""

from __future__ import annotations

import random
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tools.harness import REPO
from tools.outcome import check_run, compare, outcome

SEED = 9


def demo(folder: Path) -> subprocess.Popen[str]:
    with (folder.parent / f"{folder.name}.out").open("a") as log:
        return subprocess.Popen(
            [sys.executable, "pipeline.py", "--demo", "--demo-dir", str(folder), "--seed", str(SEED)],
            cwd=REPO, stdout=log, stderr=subprocess.STDOUT, text=True,
        )


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_a_killed_demo_resumes_and_ends_as_an_uninterrupted_one(tmp_path: Path) -> None:
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    assert demo(reference).wait(300) == 0, (tmp_path / "reference.out").read_text()[-3000:]

    first = demo(killed)
    # Mid-run: a few seconds after the first tick that took work in (a fixed delay from the process start
    # killed it before it began on a loaded machine, where imports alone can take that long).
    deadline = time.monotonic() + 120
    while not re.search(r" tick: fetched [1-9]", (tmp_path / "killed.out").read_text()):
        assert first.poll() is None and time.monotonic() < deadline, (tmp_path / "killed.out").read_text()[-3000:]
        time.sleep(0.1)
    time.sleep(random.Random(SEED).uniform(1, 4))  # the demo's ticks take 20-30 s in all
    assert first.poll() is None, "the demo finished before it could be killed"
    first.send_signal(signal.SIGKILL)
    first.wait(30)
    assert demo(killed).wait(300) == 0, (tmp_path / "killed.out").read_text()[-3000:]

    out = (tmp_path / "killed.out").read_text()
    assert "resuming the interrupted run" in out and out.count("Demo finished") == 1
    findings = check_run(killed)
    assert findings.ok, findings.problems
    assert compare(outcome(killed), outcome(reference)) == []
