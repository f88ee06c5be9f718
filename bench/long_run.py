"""Is the daemon's memory flat over a long run? A 2,000-organization run, sampled every 100 decided.

The emulator runs a scaled copy of the ``realistic`` scenario (``--organizations`` generated,
pedestrians and checkers scaled with them), the daemon runs ``python pipeline.py`` on the
emulator's recommended ``toloka.ini`` (2 s ticks). Every time another 100 organizations are
decided (their pedestrian assignment accepted or rejected), one line shows the work submitted and
not yet decided (what the daemon must hold in its state), the daemon's resident
memory (VmRSS from /proc), its peak so far (VmHWM), the size of ``saves/checkpoint.pkl`` with its log and of
``saves/journal.jsonl``, and the daemon's CPU seconds so far. Nothing is asserted: it prints.

    python bench/long_run.py [--organizations 2000] [--seed 1] [--speed 60] [--period 2] [--time-limit 3600]

The run ends when every organization is decided or nothing was decided for ``--idle-stop``
seconds (work held for a person is never decided), with a last "(end)" row.
"""

from __future__ import annotations

import argparse
import configparser
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.checkpoint import DEFAULT_NAME, log_files  # noqa: E402
from tools import harness  # noqa: E402

SCENARIO = REPO / "emulator" / "crowd" / "scenarios" / "realistic.json"


def scaled_scenario(organizations: int) -> dict[str, object]:
    """The realistic scenario with ``organizations`` organizations; pedestrians and checkers grow alike."""
    scenario: dict[str, Any] = json.loads(SCENARIO.read_text(encoding="utf-8"))
    base = scenario["organizations"]["generate"]
    factor = organizations / base
    scenario["name"] = f"realistic_x{factor:g}"
    scenario["description"] = f"bench/long_run.py: realistic with {organizations} organizations"
    scenario["organizations"]["generate"] = organizations
    scenario["pedestrians"] = {kind: max(1, math.ceil(n * factor)) for kind, n in scenario["pedestrians"].items()}
    for pool in scenario["verification"].values():
        pool["workers"] = max(1, math.ceil(pool["workers"] * min(factor, 4)))  # the emulator's CPU is shared
    return scenario


def proc_status(pid: int) -> dict[str, int]:
    """VmRSS and VmHWM of a process, in kB (empty once it has ended)."""
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return {}
    return {line.split(":")[0]: int(line.split()[1]) for line in text.splitlines()
            if line.startswith(("VmRSS:", "VmHWM:"))}


def cpu_seconds(pid: int) -> float:
    """User plus system CPU seconds of a running process."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def count(db: Path, pool_id: str, statuses: tuple[str, ...]) -> int:
    """Assignments of ``pool_id`` in one of ``statuses`` (-1 if the read races a write)."""
    marks = ", ".join("?" * len(statuses))
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute(
                "SELECT COUNT(*) FROM objects WHERE kind = 'assignment' AND json_extract(doc, '$.pool_id') = ? "
                f"AND json_extract(doc, '$.status') IN ({marks})", (pool_id, *statuses)).fetchone()[0])
    except sqlite3.Error:
        return -1


def decided(db: Path, pool_id: str) -> int:
    """Pedestrian assignments accepted or rejected so far."""
    return count(db, pool_id, ("ACCEPTED", "REJECTED"))


def waiting(db: Path, pool_id: str) -> int:
    """Pedestrian assignments submitted and not yet accepted or rejected."""
    return count(db, pool_id, ("SUBMITTED",))


def size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def checkpoint_size(saves: Path) -> int:
    """The checkpoint's base and its log together."""
    base = saves / DEFAULT_NAME
    return size(base) + sum(size(log) for log in log_files(base))


def run(args: argparse.Namespace, folder: Path) -> int:
    scenario = folder / "scenario.json"
    scenario.write_text(json.dumps(scaled_scenario(args.organizations), indent=1), encoding="utf-8")
    with harness.emulator(folder, seed=args.seed, speed=args.speed, scenario=str(scenario)):
        ini = harness.fast_config(folder)
        harness.edit_ini(ini, "Pipeline", period_seconds=str(args.period))
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(ini, encoding="utf-8")
        pool = cfg["PedestrianProject"]["pool_id"]
        harness.store_token(folder, cfg["Secrets"]["toloka_token"])
        saves = folder / "saves"
        print("organizations decided | submitted, undecided | RSS MB | peak RSS MB | checkpoint KB | journal KB | "
              "CPU s | wall s")
        print("--- | --- | --- | --- | --- | --- | --- | ---")
        with (folder / "pipeline.out").open("w") as out:
            started = time.monotonic()
            proc = subprocess.Popen([sys.executable, str(REPO / "pipeline.py"), "--config", str(ini)], cwd=REPO,
                                    env=harness.keyring_env(folder), stdout=out, stderr=subprocess.STDOUT)
        next_row, done, last_change = 100, 0, time.monotonic()

        def row(label: str) -> None:
            mem = proc_status(proc.pid)
            print(f"{label} | {waiting(folder / 'emulator.sqlite', pool)} | "
                  f"{mem.get('VmRSS', 0) / 1024:.0f} | {mem.get('VmHWM', 0) / 1024:.0f} | "
                  f"{checkpoint_size(saves) / 1024:.0f} | {size(saves / 'journal.jsonl') / 1024:.0f} | "
                  f"{cpu_seconds(proc.pid):.1f} | {time.monotonic() - started:.0f}", flush=True)

        try:
            while time.monotonic() - started < args.time_limit and proc.poll() is None:
                time.sleep(1.0)
                now_done = decided(folder / "emulator.sqlite", pool)
                if now_done > done:
                    done, last_change = now_done, time.monotonic()
                while done >= next_row:
                    row(str(next_row))
                    next_row += 100
                # Work held for a person is never decided: stop once nothing moved for a while.
                if done >= args.organizations or time.monotonic() - last_change > args.idle_stop:
                    row(f"{done} (end)")
                    break
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(120)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    if done < args.organizations * 0.9:
        print(f"stopped with {done} of {args.organizations} organizations decided "
              f"(exit {proc.returncode}); the daemon's output is in {folder / 'pipeline.out'}")
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--organizations", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--speed", type=float, default=60.0)
    parser.add_argument("--period", type=int, default=2)
    parser.add_argument("--time-limit", type=float, default=3600.0)
    parser.add_argument("--idle-stop", type=float, default=90.0,
                        help="stop once no organization was decided for this many seconds (held work never is)")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (printed at the end)")
    args = parser.parse_args(argv)
    print("command: python bench/long_run.py " + " ".join(argv if argv is not None else sys.argv[1:]))
    folder = Path(tempfile.mkdtemp(prefix="long-run-"))
    try:
        return run(args, folder)
    finally:
        if args.keep:
            print(f"run folder: {folder}")
        else:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
