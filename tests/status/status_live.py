"""A real ``python pipeline.py`` with its status server on, against the emulator CLI (both child processes)."""

from __future__ import annotations

import json
import re
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from subprocess import Popen
from typing import Any

from engine.config import Settings
from pipelines import load_settings
from tools.harness import edit_ini, served_emulator, start_pipeline, stop


@dataclass
class Live:
    folder: Path
    emulator_url: str
    status_url: str
    settings: Settings
    proc: Popen[str]


def wait_for_status_url(folder: Path, proc: Popen[str], timeout: float = 60, after: int = 0) -> str:
    """The URL ``python pipeline.py`` prints when its status server is up (in its output past ``after``)."""
    deadline = time.monotonic() + timeout
    out = folder / "pipeline.out"
    while time.monotonic() < deadline:
        found = re.search(r"status page: (http://127\.0\.0\.1:\d+/)", out.read_text()[after:] if out.exists() else "")
        if found:
            return found.group(1)
        if proc.poll() is not None:
            raise AssertionError(f"pipeline exited {proc.returncode}: {out.read_text()[-2000:]}")
        time.sleep(0.1)
    raise AssertionError(f"no status URL printed: {out.read_text()[-2000:]}")


def get(url: str, *, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """One real HTTP GET: (status, headers, body); error statuses are returned, not raised."""
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def status(live: Live) -> dict[str, Any]:
    code, _, body = get(live.status_url + "status")
    assert code == 200, body
    return json.loads(body)


def wait_until(live: Live, check: Any, timeout: float, what: str) -> dict[str, Any]:
    """Poll ``/status`` until ``check(snapshot)`` holds; the snapshot."""
    deadline = time.monotonic() + timeout
    while True:
        snapshot = status(live)
        if check(snapshot):
            return snapshot
        if live.proc.poll() is not None or time.monotonic() > deadline:
            out = (live.folder / "pipeline.out").read_text()[-3000:]
            raise AssertionError(f"{what} did not happen: {json.dumps(snapshot)[:3000]}\n{out}")
        time.sleep(0.3)


def all_decided(organizations: int) -> Any:
    """A check: every organization has its final decision and nothing is left to do."""

    def check(s: dict[str, Any]) -> bool:
        t = s["totals"]
        return (t["accepted"] + t["rejected"] >= organizations and s["under_review"] == 0
                and s["pending_effects"]["total"] == 0 and s["last_tick"] is not None)

    return check


@contextmanager
def live_pipeline(folder: Path, *, seed: int, speed: float, **pipeline: str) -> Iterator[Live]:
    """Emulator + daemon with ``[Status] enabled`` on a free port; ``pipeline`` edits ``[Pipeline]``."""
    with served_emulator(folder, seed=seed, speed=speed) as url:
        config = folder / "toloka.ini"
        edit_ini(config, "Status", enabled="true", port="0", refresh_seconds="1")
        if pipeline:
            edit_ini(config, "Pipeline", **pipeline)
        settings = load_settings(config)
        proc = start_pipeline(folder)
        live = Live(folder, url, "", settings, proc)
        try:
            live.status_url = wait_for_status_url(folder, proc)
            yield live
        finally:
            if live.proc.poll() is None:  # the test may have restarted it
                stop(live.proc)
            if proc.poll() is None:
                stop(proc)
