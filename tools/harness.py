"""Real processes for crash tests and tools: the emulator CLI and ``python pipeline.py``.

The daemon runs as a child process so it can be killed with SIGKILL at any
instant; the emulator runs as another child so it survives those kills. Shared
by tests/pipeline, tests/resilience and the soak and fault runners in tools/.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
TOKEN = "crash-test-token"


def keyring_env(folder: Path) -> dict[str, str]:
    """Environment of a child that keeps secrets in a plain-text keyring file under ``folder``."""
    env = dict(os.environ)
    env.update(
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        XDG_DATA_HOME=str(folder / "keyring"),
        XDG_CONFIG_HOME=str(folder / "config"),
        PYTHONUNBUFFERED="1",
    )
    return env


@contextmanager
def emulator(folder: Path, *, seed: int, speed: float, scenario: str = "demo") -> Iterator[str]:
    """``python -m emulator`` on a free port with a fresh toloka.ini in ``folder``; yields its URL."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "emulator", "--port", "0", "--db", str(folder / "emulator.sqlite"),
         "--token", TOKEN, "--scenario", scenario, "--speed", str(speed), "--seed", str(seed),
         "--config-out", str(folder / "toloka.ini")],
        cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )
    try:
        url = None
        deadline = time.monotonic() + 60
        assert proc.stdout is not None
        while url is None and time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            found = re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)
            url = found.group(1) if found else None
        if url is None:
            raise RuntimeError("the emulator did not start")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()


def edit_ini(path: Path, section: str, **values: str) -> None:
    """Set keys of one section of an INI file (comments are dropped)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(path, encoding="utf-8")
    cfg[section].update(values)
    with path.open("w", encoding="utf-8") as handle:
        cfg.write(handle)


def fast_config(folder: Path) -> Path:
    """Shorten ticks and the cursor lag, and keep every output inside ``folder``."""
    path = folder / "toloka.ini"
    edit_ini(path, "Pipeline", period_seconds="1", results_folder=str(folder / "results"),
             saves_folder=str(folder / "saves"), logs_folder=str(folder / "logs"))
    edit_ini(path, "Toloka", cursor_lag_seconds="1")
    edit_ini(path, "FileStore", local_folder=str(folder / "photos"))
    return path


def store_token(folder: Path, entry: str) -> None:
    """Put the emulator's token in the child's keyring (a real keyring file)."""
    subprocess.run(
        [sys.executable, "-c", "import keyring,sys; keyring.set_password('TOLOKA', sys.argv[1], sys.argv[2])",
         entry, TOKEN],
        env=keyring_env(folder), check=True,
    )


def start_pipeline(folder: Path, *extra: str) -> subprocess.Popen[str]:
    with (folder / "pipeline.out").open("a") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "pipeline.py", "--config", str(folder / "toloka.ini"), *extra],
            cwd=REPO, env=keyring_env(folder), stdout=log, stderr=subprocess.STDOUT, text=True,
        )


def run_pipeline(folder: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``python pipeline.py ARGS`` to the end, with the keyring of ``folder``; its output captured."""
    return subprocess.run([sys.executable, "pipeline.py", *args], cwd=REPO, env=keyring_env(folder),
                          capture_output=True, text=True, timeout=timeout)


def admin(url: str, path: str) -> Any:
    request = urllib.request.Request(f"{url}{path}", headers={"Authorization": f"OAuth {TOKEN}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def pedestrian_finished(url: str, pool_id: str, organizations: int) -> bool:
    """Every organization's pedestrian assignment is accepted or rejected on the platform.

    False when the emulator answers with an error: it may be injecting faults.
    """
    try:
        found = admin(url, f"/api/v1/assignments?pool_id={pool_id}&status=ACCEPTED,REJECTED&limit=1000")
    except (OSError, ValueError):  # urllib's HTTPError and URLError are OSErrors; a dropped answer too
        return False
    return len({a["tasks"][0]["id"] for a in found["items"]}) >= organizations


def stop(proc: subprocess.Popen[str], sig: int = signal.SIGTERM, timeout: float = 60) -> int:
    proc.send_signal(sig)
    return proc.wait(timeout)


def admin_send(url: str, method: str, path: str, body: Any) -> Any:
    """A JSON write to the emulator's admin API (faults, crowd pause)."""
    request = urllib.request.Request(
        f"{url}{path}", data=json.dumps(body).encode(), method=method,
        headers={"Authorization": f"OAuth {TOKEN}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def set_faults(url: str, faults: dict[str, Any]) -> Any:
    """Replace the emulator's fault configuration (``PUT /_emulator/faults``)."""
    return admin_send(url, "PUT", "/_emulator/faults", faults)


def pause_crowd(url: str) -> None:
    """Stop the simulated crowd, so that nothing new arrives while a run is wound up."""
    admin_send(url, "POST", "/_emulator/crowd", {"running": False})


def objects(db: Path, kind: str) -> list[dict[str, Any]]:
    """Every stored object of ``kind`` (task, assignment, bonus, ...), as the API serves it."""
    with sqlite3.connect(db) as conn:
        return [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM objects WHERE kind = ?", (kind,))]


def truth(db: Path, kind: str) -> dict[str, dict[str, Any]]:
    """The crowd's ground truth of ``kind`` (org, assignment, photo, ...)."""
    with sqlite3.connect(db) as conn:
        return {key: json.loads(doc) for key, doc in conn.execute("SELECT key, doc FROM truth WHERE kind = ?", (kind,))}
