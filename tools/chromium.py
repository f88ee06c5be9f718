"""Headless Chromium for the tests that look at a page as a browser draws it (the status page, sample's page).

One place for the command line: no network of its own (no background
requests, no QUIC), a fresh profile per call, and virtual time for the page's
scripts to run. Without Chromium the test fails, saying how to install it,
unless ``PIPELINE_SKIP_BROWSER=1`` switches the browser checks off on purpose.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"


def chromium(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Headless Chromium run with ``args`` (``--dump-dom URL``, ``--screenshot=...``), a new profile in ``folder``."""
    if not Path(CHROMIUM).exists():
        if os.environ.get("PIPELINE_SKIP_BROWSER") == "1":
            pytest.skip("PIPELINE_SKIP_BROWSER=1: the browser check was switched off on purpose")
        pytest.fail(f"{CHROMIUM} is missing: ./test.sh installs Debian's chromium package (apt-get install chromium)")
    profile = folder / f"profile-{len(list(folder.glob('profile-*')))}"
    command = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-dev-shm-usage", f"--user-data-dir={profile}", "--virtual-time-budget=5000", *args,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=90)
