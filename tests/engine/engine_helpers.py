"""Helpers the engine tests import (a unique module name: tests/ folders are not packages)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
EXAMPLE_INI = REPO / "toloka.example.ini"
WORKERS = Path(__file__).resolve().parent / "engine_workers.py"


def run_worker(*args: str, env: dict[str, str] | None = None, **kwargs: object) -> subprocess.Popen[str]:
    """Start ``engine_workers.py`` with ``args`` in a child Python process."""
    child_env = dict(env or os.environ)
    child_env["PYTHONPATH"] = str(REPO)
    return subprocess.Popen(  # type: ignore[call-overload,no-any-return]
        [sys.executable, str(WORKERS), *args],
        cwd=REPO,
        env=child_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )
