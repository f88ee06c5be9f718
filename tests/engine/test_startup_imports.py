"""What the daemon imports before its first tick: the status page's code only when the page is on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_a_daemon_without_the_status_page_does_not_import_it() -> None:
    # The page (aiohttp.web, the snapshot code) is off by default; importing it cost every start
    # about a tenth of a second of CPU. engine.runner imports it where the page is started.
    probe = ("import sys, pipelines, engine.runner; "
             "print(' '.join(m for m in ('status.server', 'aiohttp.web', 'engine.snapshot') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True)
    assert found.stdout.split() == []
