"""Real processes for crash tests and tools: the emulator CLI and ``python pipeline.py``.

The daemon runs as a child process so it can be killed with SIGKILL at any
instant; the emulator runs as another child so it survives those kills. Shared
by the tests and the soak and fault runners in tools/. For tests that drive the
engine in their own process, :func:`emulator_in_process` serves the emulator
on this event loop with the same toloka.ini and a keyring file of their own.
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
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the emulator and the engine only where the in-process helper runs
    from emulator.app import EmulatorState
    from engine.config import Settings

REPO = Path(__file__).resolve().parents[1]
TOKEN = "crash-test-token"


def compile_sources() -> None:
    """Byte-compile the repository's sources before a benchmark times them, as a first start would.

    pip compiles toloka-kit and every other installed package, and a deployed daemon writes its
    own ``__pycache__`` at its first start. Without this, a machine with ``PYTHONDONTWRITEBYTECODE``
    set (this one has it) makes the daemon compile its ~100 modules at every start, about 0.4 s
    of CPU a measured start-up should not include (bench/side_by_side.py, bench/cpu_floor.py).
    """
    import compileall

    for folder in sorted(p for p in REPO.iterdir() if p.is_dir() and (p / "__init__.py").exists()):
        compileall.compile_dir(folder, quiet=1)
    for script in [*sorted(REPO.glob("*.py")), REPO / "bench" / "reference_tolokakit.py"]:
        compileall.compile_file(script, quiet=1)


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
def emulator(folder: Path, *, seed: int = 0, speed: float = 1.0, scenario: str | None = "demo") -> Iterator[str]:
    """``python -m emulator`` on a free port with a fresh toloka.ini in ``folder``; yields its URL.

    ``scenario=None``: an empty account, as a new requester has (no crowd, no pools, no toloka.ini).
    """
    command = [sys.executable, "-m", "emulator", "--port", "0", "--db", str(folder / "emulator.sqlite"),
               "--token", TOKEN, "--speed", str(speed), "--seed", str(seed)]
    if scenario is not None:
        command += ["--scenario", scenario, "--config-out", str(folder / "toloka.ini")]
    proc = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
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


def set_password(folder: Path, entry: str, value: str, *, env: dict[str, str] | None = None) -> None:
    """Store ``value`` under ``entry`` in the keyring the children of ``folder`` read (a real keyring file).

    ``env``: another child environment to store it for (a service unit's, say), instead of ``folder``'s.
    """
    subprocess.run(
        [sys.executable, "-c", "import keyring,sys; keyring.set_password('TOLOKA', sys.argv[1], sys.argv[2])",
         entry, value],
        env=env if env is not None else keyring_env(folder), check=True,
    )


def store_token(folder: Path, entry: str) -> None:
    """Put the emulator's token in the child's keyring (a real keyring file)."""
    set_password(folder, entry, TOKEN)


@contextmanager
def served_emulator(folder: Path, *, seed: int, speed: float, crowd: bool = True) -> Iterator[str]:
    """:func:`emulator` with the demo scenario, its toloka.ini made fast (:func:`fast_config`) and the
    token stored in ``folder``'s keyring: ready for ``python pipeline.py``; yields the URL.

    ``crowd=False`` pauses the crowd first, so that nothing but the test acts on the pools.
    """
    from pipelines import load_settings

    with emulator(folder, seed=seed, speed=speed) as url:
        if not crowd:
            pause_crowd(url)
        config = fast_config(folder)
        store_token(folder, load_settings(config).secrets.toloka_token)
        yield url


def pipeline_process(folder: Path, *args: str, out: Path | None = None) -> subprocess.Popen[str]:
    """``python pipeline.py ARGS`` started with the keyring of ``folder``; its output appended to ``out``
    (dropped when None). For a run the test kills or stops itself."""
    if out is None:
        return subprocess.Popen([sys.executable, "pipeline.py", *args], cwd=REPO, env=keyring_env(folder),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
    with out.open("a") as log:  # the child keeps its own descriptor
        return subprocess.Popen([sys.executable, "pipeline.py", *args], cwd=REPO, env=keyring_env(folder),
                                stdout=log, stderr=subprocess.STDOUT, text=True)


def start_pipeline(folder: Path, *extra: str) -> subprocess.Popen[str]:
    """The daemon on ``folder``'s toloka.ini, its output appended to ``folder``/pipeline.out."""
    return pipeline_process(folder, "--config", str(folder / "toloka.ini"), *extra, out=folder / "pipeline.out")


def ticks(out: Path) -> list[str]:
    """The tick lines a daemon wrote to ``out`` so far."""
    return [line for line in out.read_text().splitlines() if " tick: " in line] if out.exists() else []


def wait_for_ticks(proc: subprocess.Popen[str], out: Path, count: int, timeout: float = 60) -> list[str]:
    """Wait until ``out`` holds ``count`` tick lines (failing if ``proc`` exits first); those lines."""
    deadline = time.monotonic() + timeout
    while len(ticks(out)) < count:
        assert proc.poll() is None, out.read_text()[-3000:]
        assert time.monotonic() < deadline, out.read_text()[-3000:]
        time.sleep(0.2)
    return ticks(out)


def run_pipeline(folder: Path, *args: str, timeout: float = 120, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    """``python pipeline.py ARGS`` to the end, with the keyring of ``folder``; its output captured.

    ``cwd``: the working directory (relative paths in ``ARGS`` are taken from it).
    """
    return subprocess.run([sys.executable, str(REPO / "pipeline.py"), *args], cwd=cwd, env=keyring_env(folder),
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


@contextmanager
def folder_keyring(folder: Path) -> Iterator[None]:
    """This process's keyring set to a real plain-text keyring file under ``folder``/keyring, then restored."""
    import keyring

    from demo import FolderKeyring

    previous = keyring.get_keyring()
    keyring.set_keyring(FolderKeyring(folder / "keyring"))
    try:
        yield
    finally:
        keyring.set_keyring(previous)


@asynccontextmanager
async def emulator_in_process(
    folder: Path, *, seed: int, speed: float, token: str = TOKEN, crowd: bool = True, **ini: Any,
) -> AsyncIterator[tuple[EmulatorState, Settings[Any]]]:
    """The emulator with the demo scenario on this event loop, a toloka.ini for it in ``folder`` (ticks of
    a second, no cursor lag, every folder inside ``folder``) and ``token`` stored in this process's keyring,
    a file under ``folder`` (:func:`folder_keyring`); yields the emulator and the loaded settings.

    ``ini``: more options of ``write_ini`` (``period_seconds=5``, ``status_enabled=True``, ...);
    ``crowd=False`` pauses the crowd as soon as it is served.
    """
    import keyring

    from emulator.app import start_emulator
    from emulator.crowd.config_out import write_ini
    from emulator.crowd.scenario import load_scenario_file
    from pipelines import load_settings

    options: dict[str, Any] = {
        "period_seconds": 1, "cursor_lag_seconds": 0, "local_folder": str(folder / "photos"),
        "results_folder": str(folder / "results"), "saves_folder": str(folder / "saves"),
        "logs_folder": str(folder / "logs"), **ini,
    }
    with folder_keyring(folder):
        async with start_emulator(folder / "emu.sqlite", token=token, seed=seed, speed=speed, scenario="demo") as emu:
            if not crowd:
                emu.crowd_running = False
            assert emu.setup_result is not None, "the demo scenario sets up its pools"
            write_ini(folder / "toloka.ini", url=emu.url, setup_result=emu.setup_result,
                      scenario=load_scenario_file("demo"), **options)
            settings = load_settings(folder / "toloka.ini")
            keyring.set_password("TOLOKA", settings.secrets.toloka_token, token)
            yield emu, settings
