"""Crash-restart soak: SIGKILL the daemon at random instants until the scenario is decided.

    python -m tools.soak --kills 30                          # the full run (a few minutes)
    python -m tools.soak --kills 30 --pipeline find_items    # the same for the second pipeline
    python -m tools.soak --kills 5 --speed 120 --min-life 4  # the short form CI runs

Two runs of one scenario with one seed, each against its own emulator process:
an uninterrupted reference run, then the soak, where ``python pipeline.py`` is
killed with SIGKILL and restarted again and again. Kill instants are of four
kinds, drawn at random each time: a random moment; the moment a checkpoint's
temp file appears or its log grows (a checkpoint write in flight); just after the journal
grows (effects recorded, being executed); the moment a photo lands in the
store (the other copies of that batch in flight). The soak goes on until at
least ``--kills`` kills were made and all the work is decided.

Then it checks the emulator and the TSVs (tools/outcome.py, or
tools/find_items_outcome.py: see tools/flows.py) and compares the outcome per
organization (per image) with the reference run. The last line is the verdict:

    SOAK PASS kills=31 restarts=32 ... duplicates=0 missing=0 ...

Exit status 0 on PASS, 1 on FAIL.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.checkpoint import DEFAULT_NAME, log_files
from pipelines import load_settings
from tools.flows import FLOWS, Flow
from tools.harness import emulator, fast_config, pause_crowd, start_pipeline, stop, store_token
from tools.outcome import Findings, compare

KINDS = ("random", "checkpoint", "effects", "photo")


@dataclass
class KillLog:
    """What the soak did to the daemon, and the traces the kills left."""

    kills: int = 0
    restarts: int = 0
    by_kind: Counter[str] = field(default_factory=Counter)
    torn_checkpoints: int = 0  # a checkpoint temp file was left behind: killed mid-write
    torn_photos: int = 0  # a photo .part file was left behind: killed mid-copy
    exits: Counter[str] = field(default_factory=Counter)  # how restarts ended before their kill


def _wait_for(condition: Callable[[], bool], limit: float, proc: subprocess.Popen[str]) -> bool:
    """Poll ``condition`` every 2 ms for up to ``limit`` seconds (False if it never held or the process ended)."""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        if condition():
            return True
        if proc.poll() is not None:
            return False
        time.sleep(0.002)
    return False


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return -1


def _photo_files(folder: Path) -> tuple[int, int]:
    """(stored files, .part files) under the local photo store."""
    stored = parts = 0
    for _, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".part"):
                parts += 1
            else:
                stored += 1
    return stored, parts


def kill_once(folder: Path, rng: random.Random, log: KillLog, min_life_s: float = 0.0,
              kinds: tuple[str, ...] = KINDS) -> None:
    """Start the daemon, let it live ``min_life_s`` at least, wait for an instant of a random kind, SIGKILL it."""
    saves, photos = folder / "saves", folder / "photos"
    proc = start_pipeline(folder)
    log.restarts += 1
    if min_life_s:
        time.sleep(rng.uniform(0.5, 1.0) * min_life_s)
    kind = rng.choice(kinds)
    limit = rng.uniform(2.0, 8.0)
    hit = False
    if kind == "random":
        time.sleep(rng.uniform(0.2, 4.0))
        hit = True
    elif kind == "checkpoint":
        # A new base goes through a temp file; a tick's record is appended to the log.
        tmp = saves / "checkpoint.pkl.tmp"

        def logged() -> int:
            return sum(_size(path) for path in log_files(saves / DEFAULT_NAME))

        before = logged()
        hit = _wait_for(lambda: tmp.exists() or logged() != before, limit, proc)
    elif kind == "effects":
        journal = saves / "journal.jsonl"
        time.sleep(0.5)  # past the start-up compaction
        base = _size(journal)
        hit = _wait_for(lambda: _size(journal) > base, limit, proc)
        if hit:
            time.sleep(rng.uniform(0.0, 0.15))
    else:
        base = _photo_files(photos)[0]

        def photo_moving() -> bool:
            stored, parts = _photo_files(photos)
            return parts > 0 or stored > base

        hit = _wait_for(photo_moving, limit, proc)
    if proc.poll() is not None:
        log.exits[f"exit {proc.returncode}"] += 1
        return
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
    log.kills += 1
    log.by_kind[kind if hit else "timeout"] += 1
    if (saves / "checkpoint.pkl.tmp").exists():
        log.torn_checkpoints += 1
    if _photo_files(photos)[1]:
        log.torn_photos += 1


def wind_up(folder: Path, url: str, proc: subprocess.Popen[str]) -> None:
    """Pause the crowd, let the daemon catch up, stop it, then one more tick for anything pending."""
    pause_crowd(url)
    time.sleep(3)  # more than the cursor lag: every submitted assignment is fetched
    code = stop(proc)
    if code != 0:
        raise RuntimeError(f"the daemon exited {code} on SIGTERM; see {folder / 'pipeline.out'}")
    once = start_pipeline(folder, "--once").wait(180)
    if once != 0:
        raise RuntimeError(f"the last --once exited {once}; see {folder / 'pipeline.out'}")


def run_to_the_end(folder: Path, url: str, flow: Flow, timeout: float,
                   before_wind_up: Callable[[], object] | None = None) -> float:
    """Run the daemon uninterrupted until all the work is decided; wind up. Returns seconds."""
    start = time.monotonic()
    proc = start_pipeline(folder)
    while not flow.finished(url, folder):
        if time.monotonic() - start > timeout:
            proc.kill()
            raise RuntimeError(f"not finished after {timeout:.0f} s; see {folder / 'pipeline.out'}")
        if proc.poll() is not None:
            raise RuntimeError(f"the daemon exited {proc.returncode}; see {folder / 'pipeline.out'}")
        time.sleep(0.5)
    elapsed = time.monotonic() - start
    if before_wind_up is not None:
        before_wind_up()
    wind_up(folder, url, proc)
    return elapsed


def reference_run(folder: Path, flow: Flow, seed: int, speed: float, timeout: float) -> dict[str, dict[str, Any]]:
    """The uninterrupted run: its outcome per organization (per image)."""
    folder.mkdir(parents=True, exist_ok=True)
    with emulator(folder, seed=seed, speed=speed, scenario=flow.scenario) as url:
        settings = load_settings(fast_config(folder))
        store_token(folder, settings.secrets.toloka_token)
        run_to_the_end(folder, url, flow, timeout)
    return flow.outcome(folder)


def soak_run(folder: Path, flow: Flow, seed: int, speed: float, kills: int, rng: random.Random,
             timeout: float, min_life_s: float = 0.0) -> KillLog:
    """Kill and restart until ``kills`` kills are made and the work is decided; then finish cleanly."""
    folder.mkdir(parents=True, exist_ok=True)
    log = KillLog()
    with emulator(folder, seed=seed, speed=speed, scenario=flow.scenario) as url:
        settings = load_settings(fast_config(folder))
        store_token(folder, settings.secrets.toloka_token)
        start = time.monotonic()
        while log.kills < kills or not flow.finished(url, folder):
            if time.monotonic() - start > timeout:
                raise RuntimeError(f"soak not finished after {timeout:.0f} s ({log.kills} kills)")
            kill_once(folder, rng, log, min_life_s, flow.kill_kinds)
        log.restarts += 1
        run_to_the_end(folder, url, flow, timeout)
    return log


def verdict(log: KillLog, found: Findings, differ: list[str], units: int, out: str, wall: float,
            flow: Flow = FLOWS["pedestrian"]) -> str:
    tracebacks = out.count("Traceback")
    passed = found.ok and not differ and tracebacks == 0 and not log.exits
    kinds = " ".join(f"{k}={log.by_kind[k]}" for k in (*KINDS, "timeout"))
    return (f"SOAK {'PASS' if passed else 'FAIL'} pipeline={flow.pipeline} kills={log.kills} "
            f"restarts={log.restarts} ({kinds}; "
            f"torn checkpoint writes={log.torn_checkpoints}, torn photo copies={log.torn_photos}) "
            f"duplicates={found.duplicates} missing={found.missing} wrong={found.wrong} "
            f"broken_links={found.broken_links} late_answers_dropped={found.late_answers} "
            f"outcome_differs={len(differ)}/{units} {flow.unit} "
            f"tracebacks={tracebacks} early_exits={sum(log.exits.values())} wall={wall:.0f}s")


def soak(folder: Path, *, seed: int, speed: float, kills: int, kill_seed: int, timeout: float,
         pipeline: str = "pedestrian", min_life_s: float = 0.0) -> tuple[str, bool]:
    """The whole soak in ``folder``: reference run, soak run, checks; returns (verdict line, passed).

    ``min_life_s`` lets each daemon live that long (half to all of it) before its kill instant is
    awaited: fewer, more spread-out kills over the same run (the short form in the tests).
    """
    flow = FLOWS[pipeline]
    start = time.monotonic()
    reference = reference_run(folder / "reference", flow, seed, speed, timeout)
    log = soak_run(folder / "soak", flow, seed, speed, kills, random.Random(kill_seed), timeout, min_life_s)
    found = flow.check_run(folder / "soak")
    differ = compare(flow.outcome(folder / "soak"), reference)
    out = (folder / "soak" / "pipeline.out").read_text(errors="replace")
    line = verdict(log, found, differ, len(reference), out, time.monotonic() - start, flow)
    details = {"problems": found.problems[:50], "outcome_differs": differ, "early_exits": dict(log.exits)}
    (folder / "soak-details.json").write_text(json.dumps(details, indent=1))
    return line, line.startswith("SOAK PASS")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=30, help="kills at least (default 30)")
    parser.add_argument("--pipeline", choices=sorted(FLOWS), default="pedestrian", help="the pipeline to soak")
    parser.add_argument("--seed", type=int, default=5, help="the crowd's seed (both runs)")
    parser.add_argument("--kill-seed", type=int, default=20261122, help="seed of the kill instants")
    parser.add_argument("--speed", type=float, default=30.0,
                        help="emulator speed (lower: longer work, more kills mid-work)")
    parser.add_argument("--folder", type=Path, help="working folder (default: a new temp folder, kept)")
    parser.add_argument("--min-life", type=float, default=0.0,
                        help="seconds each daemon lives at least before its kill (fewer, spread-out kills)")
    parser.add_argument("--timeout", type=float, default=1200.0, help="seconds per run before giving up")
    args = parser.parse_args(argv)
    folder = args.folder or Path(tempfile.mkdtemp(prefix="soak-"))
    print(f"soak: working in {folder}", flush=True)
    line, passed = soak(folder, seed=args.seed, speed=args.speed, kills=args.kills, kill_seed=args.kill_seed,
                        timeout=args.timeout, pipeline=args.pipeline, min_life_s=args.min_life)
    if not passed:
        print(f"details: {folder / 'soak-details.json'}", flush=True)
    print(line, flush=True)
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
