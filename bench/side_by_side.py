"""The daemon and a plain toloka-kit ``streaming`` pipeline on the same crowd: requests, CPU, memory, outcomes.

Each run starts the emulator (``python -m emulator``, its own process and folder, the scenario and
seed given) and then ONE pipeline as its own process until every organization is decided:

* ``daemon``: ``python pipeline.py`` on the emulator's toloka.ini with decision_quality.py's
  ``fixed3`` policy (overlap 3, MajorityVote), ticks of ``--period`` seconds, cursor lag 1 s;
* ``reference``: ``bench/reference_tolokakit.py`` (toloka-kit 1.2.3 ``Pipeline``,
  ``AssignmentsObserver`` per pool, crowd-kit MajorityVote at overlap 3) on the same toloka.ini.

Runs alternate (daemon, reference, reference, daemon, ...). Per pipeline it prints the medians over
runs of: requests per pedestrian assignment by route (the emulator counts every request; its own
admin routes are left out), CPU seconds of the pipeline process per 1,000 pedestrian assignments
and its own peak memory (``VmHWM``, read while it runs), the wall time from the process's start until every
organization is decided; the ratios daemon/reference; the issue's lower bound of requests computed
from the daemon's runs; and both outcomes compared organization by organization.

    python bench/side_by_side.py [--scenario realistic] [--seed 1] [--runs 3] [--speed 60] [--period 2]
        [--time-limit 900] [--json out.json] [--keep]

The figures come from pure functions (:func:`group_routes`, :func:`lower_bound`, :func:`compare_outcomes`,
:func:`counted_photos`): see tests/pipeline/test_side_by_side.py. The crowd's timing is wall-clock,
so the two pipelines see the same organizations, pedestrians and checkers but not the same
answers in the same order: some organizations may be decided differently by chance.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shlex
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# bench/ has no __init__.py: mypy (and a script run) see its files as top-level modules, as s3_outage.py does.
sys.path.insert(0, str(REPO / "bench"))

from decision_quality import POLICIES, _git_head, apply_policy  # noqa: E402  # (E402: the root is put on sys.path first)
from long_run import proc_status  # noqa: E402

from tools import harness  # noqa: E402

PIPELINES = ("daemon", "reference")
STAGES = ("visit", "quality", "relevance")
STAGE_SECTIONS = {"visit": "ValidationVisit", "quality": "ValidationQuality", "relevance": "ValidationRelevance"}

# The rows: a route (method and path without /api/v1, ids as {id}) -> the row it is counted in.
ROUTE_ROWS: dict[str, str] = {
    "GET /assignments": "GET /assignments",
    "GET /assignments/{id}": "GET /assignments/{id}",
    "GET /attachments/{id}/download": "GET /attachments/{id}/download",
    "GET /operations/{id}/log": "GET /operations/{id}/log",
    "POST /tasks": "POST /tasks",
    "GET /user-bonuses": "bonuses (GET /user-bonuses, GET /user-bonuses/{id}, POST /user-bonuses)",
    "GET /user-bonuses/{id}": "bonuses (GET /user-bonuses, GET /user-bonuses/{id}, POST /user-bonuses)",
    "POST /user-bonuses": "bonuses (GET /user-bonuses, GET /user-bonuses/{id}, POST /user-bonuses)",
    "PATCH /assignments/{id}": "PATCH /assignments/{id}",
}
ROW_ORDER = list(dict.fromkeys(ROUTE_ROWS.values()))
ADMIN_PREFIX = "/_emulator"


# ---------------------------------------------------------------------------------------------------- pure parts


def route_key(route: str) -> str | None:
    """``"GET /api/v1/assignments/{assignment_id}"`` -> ``"GET /assignments/{id}"``; None for admin routes."""
    method, _, path = route.partition(" ")
    if path.startswith(ADMIN_PREFIX):
        return None
    path = path.removeprefix("/api/v1")
    parts = ["{id}" if p.startswith("{") and p.endswith("}") else p for p in path.split("/")]
    return f"{method} {'/'.join(parts)}"


def group_routes(by_route: Mapping[str, int]) -> dict[str, int]:
    """Request counts by the issue's rows (other routes under their own name); admin routes left out."""
    out: dict[str, int] = {}
    for route, count in by_route.items():
        key = route_key(route)
        if key is None or not count:
            continue
        row = ROUTE_ROWS.get(key, key)
        out[row] = out.get(row, 0) + count
    return out


def subtract(after: Mapping[str, int], before: Mapping[str, int]) -> dict[str, int]:
    """Requests made between two snapshots of ``/_emulator/requests``'s ``by_route``."""
    return {k: v - before.get(k, 0) for k, v in after.items() if v - before.get(k, 0)}


@dataclass(frozen=True)
class RunFacts:
    """What the lower bound needs from one run."""

    pedestrian_assignments: int  # decided (accepted or rejected)
    assignments_per_pool: Mapping[str, int]  # every pool's assignments (pedestrian and verification)
    photos: int  # counted photos of the decided pedestrian assignments (one download each)
    creation_ticks: Mapping[str, int]  # per verification pool: ticks (period windows) in which tasks were created
    bonus_ticks: int  # ticks (period windows) in which bonuses were paid


def lower_bound(f: RunFacts) -> dict[str, float]:
    """The issue's lower bound, per pedestrian assignment, by row.

    One search page per 1,000 assignments of each pool, one download per photo, one task creation
    per stage per tick that created tasks of that stage, one accept or reject, one bonus request per
    tick that paid bonuses; nothing else.
    """
    n = f.pedestrian_assignments
    if n <= 0:
        return {}
    pages = sum(count / 1000 for count in f.assignments_per_pool.values())
    creations = sum(f.creation_ticks.values())
    return {
        "GET /assignments": pages / n,
        "GET /assignments/{id}": 0.0,
        "GET /attachments/{id}/download": f.photos / n,
        "GET /operations/{id}/log": 0.0,
        "POST /tasks": creations / n,
        ROUTE_ROWS["POST /user-bonuses"]: f.bonus_ticks / n,
        "PATCH /assignments/{id}": 1.0,
    }


def ticks_with(created: Iterable[str], period_s: float) -> int:
    """Period windows (ticks) in which something was created, from ISO creation times."""
    from datetime import datetime

    return len({math.floor(datetime.fromisoformat(t).timestamp() / period_s) for t in created if t})


def counted_photos(output_values: Mapping[str, Any], main_fields: Sequence[str], bonus_fields: Sequence[str],
                   bonus_flags: Sequence[str], flag_yes: str) -> int:
    """Photos of one pedestrian solution that a pipeline downloads: every main field's, and a bonus
    field's only when its flag says yes."""

    def count(name: str) -> int:
        value = output_values.get(name)
        if not value:
            return 0
        return sum(1 for v in (value if isinstance(value, list) else [value]) if v)

    total = sum(count(name) for name in main_fields)
    total += sum(count(name) for name, flag in zip(bonus_fields, bonus_flags, strict=True)
                 if output_values.get(flag) == flag_yes)
    return total


def org_decisions(tasks: Iterable[Mapping[str, Any]], assignments: Iterable[Mapping[str, Any]], pool_id: str,
                  org_fields: Sequence[str]) -> dict[str, str]:
    """Organization (its org fields joined) -> accepted / rejected, from the pedestrian pool's documents.

    An organization with an accepted assignment is accepted; with only rejected ones, rejected.
    """
    org_of = {str(t["id"]): " | ".join(str((t.get("input_values") or {}).get(k, "")) for k in org_fields)
              for t in tasks if str(t.get("pool_id")) == pool_id}
    out: dict[str, str] = {}
    for a in assignments:
        if str(a.get("pool_id")) != pool_id or a.get("status") not in ("ACCEPTED", "REJECTED"):
            continue
        org = org_of.get(str((a.get("tasks") or [{}])[0].get("id")))
        if org is None:
            continue
        if a["status"] == "ACCEPTED" or out.get(org) != "accepted":
            out[org] = "accepted" if a["status"] == "ACCEPTED" else "rejected"
    return out


@dataclass
class Comparison:
    agree: int = 0
    both_accepted: int = 0
    both_rejected: int = 0
    disagree: list[tuple[str, str, str]] = field(default_factory=list)  # (org, daemon, reference)

    @property
    def compared(self) -> int:
        return self.agree + len(self.disagree)


def compare_outcomes(daemon: Mapping[str, str], reference: Mapping[str, str]) -> Comparison:
    """Organization by organization; one side without a decision counts as ``undecided``."""
    c = Comparison()
    for org in sorted(set(daemon) | set(reference)):
        d, r = daemon.get(org, "undecided"), reference.get(org, "undecided")
        if d == r:
            c.agree += 1
            c.both_accepted += d == "accepted"
            c.both_rejected += d == "rejected"
        else:
            c.disagree.append((org, d, r))
    return c


def median_of(values: Iterable[float]) -> float:
    got = list(values)
    return statistics.median(got) if got else 0.0


# ---------------------------------------------------------------------------------------------------- one run


@dataclass
class Run:
    pipeline: str
    index: int
    folder: str
    exit_code: int = 0
    timed_out: bool = False
    wall_s: float = 0.0  # process start -> every organization decided
    cpu_s: float = 0.0
    maxrss_mb: float = 0.0
    pedestrian_assignments: int = 0
    requests: dict[str, int] = field(default_factory=dict)  # by row
    lower: dict[str, float] = field(default_factory=dict)
    decisions: dict[str, str] = field(default_factory=dict)

    @property
    def per_assignment(self) -> dict[str, float]:
        n = max(self.pedestrian_assignments, 1)
        return {row: count / n for row, count in self.requests.items()}

    @property
    def cpu_per_1000(self) -> float:
        return 1000 * self.cpu_s / max(self.pedestrian_assignments, 1)


def _prepare_ini(folder: Path, period: int) -> Path:
    """The emulator's toloka.ini with the fixed3 policy, ``period``-second ticks and folders inside ``folder``."""
    path = folder / "toloka.ini"
    path.write_text(apply_policy(path.read_text(encoding="utf-8"), POLICIES["fixed3"]), encoding="utf-8")
    harness.fast_config(folder)
    harness.edit_ini(path, "Pipeline", period_seconds=str(period))
    return path


def _pipeline_command(pipeline: str, ini: Path, organizations: int, period: int) -> list[str]:
    if pipeline == "daemon":
        return [sys.executable, str(REPO / "pipeline.py"), "--config", str(ini)]
    return [sys.executable, str(REPO / "bench" / "reference_tolokakit.py"), "--config", str(ini),
            "--organizations", str(organizations), "--period", str(period), "--lag", "1"]


def _read_ini(ini: Path) -> Any:
    import configparser

    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ini, encoding="utf-8")
    return cfg


def _wait(pid: int, timeout: float, peak: dict[str, int] | None = None) -> tuple[int, Any] | None:
    """(exit status, rusage) of the child once it ends, or None after ``timeout`` seconds.

    ``peak["kB"]`` follows the child's own peak resident memory (``VmHWM``, read every poll). The
    rusage's ``ru_maxrss`` will not do: it survives ``exec``, so a child started from this
    process, grown by the runs before, reports this process's size (about 190 MB by the second
    round) whatever the pipeline itself used.
    """
    deadline = time.monotonic() + timeout
    while True:
        if peak is not None:
            peak["kB"] = max(peak.get("kB", 0), proc_status(pid).get("VmHWM", 0))
        done, status, usage = os.wait4(pid, os.WNOHANG)
        if done:
            return status, usage
        if time.monotonic() > deadline:
            return None
        time.sleep(0.1)


def one_run(pipeline: str, index: int, root: Path, args: argparse.Namespace) -> Run:
    """The emulator and one pipeline in a fresh folder until every organization is decided."""
    folder = root / f"{index}-{pipeline}"
    folder.mkdir(parents=True)
    run = Run(pipeline, index, str(folder))
    db = folder / "emulator.sqlite"
    with harness.emulator(folder, seed=args.seed, speed=args.speed, scenario=args.scenario) as url:
        ini = _prepare_ini(folder, args.period)
        cfg = _read_ini(ini)
        ped_pool = cfg["PedestrianProject"]["pool_id"]
        pools = {"pedestrian": ped_pool, **{s: cfg[STAGE_SECTIONS[s]]["pool_id"] for s in STAGES}}
        organizations = len(harness.truth(db, "org"))
        env = harness.keyring_env(folder)
        if pipeline == "daemon":
            harness.store_token(folder, cfg["Secrets"]["toloka_token"])
        else:
            env["TOLOKA_TOKEN"] = harness.TOKEN
        before = harness.admin(url, "/_emulator/requests")["by_route"]
        with (folder / "pipeline.out").open("w") as out:
            started = time.monotonic()
            proc = subprocess.Popen(_pipeline_command(pipeline, ini, organizations, args.period), cwd=REPO,
                                    env=env, stdout=out, stderr=subprocess.STDOUT)
        ended: tuple[int, Any] | None = None
        peak: dict[str, int] = {}
        decided_at = None
        deadline = started + args.time_limit
        while decided_at is None and time.monotonic() < deadline:
            ended = _wait(proc.pid, 0.5, peak)
            if _all_decided(db, ped_pool, organizations):
                decided_at = time.monotonic()
            elif ended is not None:
                break
        run.timed_out = decided_at is None
        run.wall_s = (decided_at or time.monotonic()) - started
        # The reference stops by itself; the daemon is stopped once a tick has passed without a new bonus
        # (its last decisions' bonuses are out), so its requests after the work are hardly counted.
        bonuses = _count(db, "bonus")
        while ended is None and time.monotonic() < deadline + 60:
            ended = _wait(proc.pid, args.period + 1, peak)
            if pipeline == "daemon" and bonuses == (bonuses := _count(db, "bonus")):
                break
        if ended is None:
            os.kill(proc.pid, signal.SIGTERM)
            ended = _wait(proc.pid, 60, peak)
        if ended is None:
            os.kill(proc.pid, signal.SIGKILL)
            ended = _wait(proc.pid, 60, peak)
        assert ended is not None
        proc.returncode = os.waitstatus_to_exitcode(ended[0])  # reaped here: Popen must not wait again
        run.exit_code = proc.returncode
        usage = ended[1]
        run.cpu_s = usage.ru_utime + usage.ru_stime
        run.maxrss_mb = peak.get("kB", 0) / 1024  # the pipeline's own peak (VmHWM), see _wait
        after = harness.admin(url, "/_emulator/requests")["by_route"]
        run.requests = group_routes(subtract(after, before))
        tasks = harness.objects(db, "task")
        assignments = harness.objects(db, "assignment")
    ped = cfg["PedestrianProject"]
    decided = [a for a in assignments if a.get("pool_id") == ped_pool and a.get("status") in ("ACCEPTED", "REJECTED")]
    run.pedestrian_assignments = len(decided)
    run.decisions = org_decisions(tasks, assignments, ped_pool, [f.strip() for f in ped["org_fields"].split(",")])

    def split(key: str) -> list[str]:
        return [f.strip() for f in ped[key].split(",") if f.strip()]

    photos = sum(counted_photos((a.get("solutions") or [{}])[0].get("output_values") or {}, split("main_fields"),
                                split("bonus_fields"), split("bonus_flags"), ped["bonus_flag_yes"]) for a in decided)
    per_pool = {name: sum(1 for a in assignments if a.get("pool_id") == pid) for name, pid in pools.items()}
    creation_ticks = {s: ticks_with((str(t.get("created", "")) for t in tasks
                                     if t.get("pool_id") == pools[s] and not t.get("known_solutions")), args.period)
                      for s in STAGES}
    bonus_ticks = ticks_with((str(b.get("created", "")) for b in harness.objects(db, "bonus")), args.period)
    run.lower = lower_bound(RunFacts(len(decided), per_pool, photos, creation_ticks, bonus_ticks))
    return run


def _count(db: Path, kind: str) -> int:
    """Stored objects of ``kind`` (read from the emulator's database; -1 if the read races a write)."""
    try:
        with sqlite3.connect(db) as conn:
            return int(conn.execute("SELECT COUNT(*) FROM objects WHERE kind = ?", (kind,)).fetchone()[0])
    except sqlite3.Error:
        return -1


def _all_decided(db: Path, pool_id: str, organizations: int) -> bool:
    """Every organization's pedestrian task has an accepted or rejected assignment (read from the store)."""
    try:
        found = {a["tasks"][0]["id"] for a in harness.objects(db, "assignment")
                 if a.get("pool_id") == pool_id and a.get("status") in ("ACCEPTED", "REJECTED")}
    except (sqlite3.Error, ValueError, KeyError, IndexError):  # a read racing a write: try again next poll
        return False
    return len(found) >= organizations


# ---------------------------------------------------------------------------------------------------- report


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (readable as plain text too)."""
    lines = ["| " + " | ".join(header) + " |", "| " + " | ".join("---" for _ in header) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b else "-"


def report(runs: Sequence[Run]) -> str:
    by = {p: [r for r in runs if r.pipeline == p] for p in PIPELINES}
    med = {p: {row: median_of(r.per_assignment.get(row, 0.0) for r in rs)
               for row in {k for r in rs for k in r.requests}} for p, rs in by.items()}
    lower = {row: median_of(r.lower.get(row, 0.0) for r in by["daemon"]) for row in ROW_ORDER}
    rows_seen = [*ROW_ORDER, *sorted({k for m in med.values() for k in m} - set(ROW_ORDER))]
    out = [f"runs per pipeline: {', '.join(f'{p} {len(rs)}' for p, rs in by.items())}; medians over runs", ""]
    table = []
    for row in rows_seen:
        d, r = med["daemon"].get(row, 0.0), med["reference"].get(row, 0.0)
        lb = f"{lower[row]:.2f}" if row in lower else "0"
        table.append([row, f"{d:.2f}", f"{r:.2f}", _ratio(d, r), lb])
    td, tr = sum(med["daemon"].values()), sum(med["reference"].values())
    table.append(["**total**", f"{td:.2f}", f"{tr:.2f}", _ratio(td, tr), f"{sum(lower.values()):.2f}"])
    out.append(_table(["requests per pedestrian assignment", "daemon", "reference", "daemon/reference",
                       "lower bound"], table))
    out.append("")

    def m(p: str, attr: str) -> float:
        return median_of(getattr(r, attr) for r in by[p])

    figures = [("pedestrian assignments decided", "pedestrian_assignments", "{:.0f}"),
               ("CPU s per 1,000 pedestrian assignments", "cpu_per_1000", "{:.1f}"),
               ("CPU s of the process", "cpu_s", "{:.1f}"), ("peak memory, MB (VmHWM)", "maxrss_mb", "{:.0f}"),
               ("wall s to drain", "wall_s", "{:.1f}")]
    out.append(_table(["figure", "daemon", "reference", "daemon/reference"],
                      [[name, fmt.format(m("daemon", a)), fmt.format(m("reference", a)),
                        _ratio(m("daemon", a), m("reference", a))] for name, a, fmt in figures]))
    out.append("")
    for n, (d_run, r_run) in enumerate(zip(by["daemon"], by["reference"], strict=False), 1):
        c = compare_outcomes(d_run.decisions, r_run.decisions)
        out.append(f"outcomes, run pair {n}: {c.compared} organizations, {c.agree} agree ({c.both_accepted} both "
                   f"accepted, {c.both_rejected} both rejected), {len(c.disagree)} disagree")
        out += [f"  {org}: daemon {dd}, reference {rr}" for org, dd, rr in c.disagree]
    bad = [r for r in runs if r.timed_out or r.exit_code not in (0, -signal.SIGTERM, 128 + signal.SIGTERM)]
    out += [f"WARNING: {r.pipeline} run {r.index} {'timed out' if r.timed_out else f'exited {r.exit_code}'} "
            f"(see {r.folder}/pipeline.out)" for r in bad]
    return "\n".join(out)


def command_line(args: argparse.Namespace) -> str:
    parts = ["python", "bench/side_by_side.py", "--scenario", args.scenario, "--seed", str(args.seed),
             "--runs", str(args.runs), "--speed", f"{args.speed:g}", "--period", str(args.period),
             "--time-limit", f"{args.time_limit:g}"]
    return shlex.join(parts)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", default="realistic", help="built-in scenario (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="the emulator's seed (default: %(default)s)")
    parser.add_argument("--runs", type=int, default=3, help="runs per pipeline, alternating (default: %(default)s)")
    parser.add_argument("--speed", type=float, default=60.0, help="emulator speed (default: %(default)g)")
    parser.add_argument("--period", type=int, default=2, help="tick period of both pipelines, s (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="per run, s (default: %(default)g)")
    parser.add_argument("--json", type=Path, help="write every run's record here")
    parser.add_argument("--keep", action="store_true", help="keep the run folders")
    args = parser.parse_args(argv)
    print(f"command: {command_line(args)}", flush=True)
    print(f"code: {REPO} at {_git_head()}", flush=True)  # the daemon runs from this working tree
    harness.compile_sources()
    root = Path(tempfile.mkdtemp(prefix="side-by-side-"))
    runs: list[Run] = []
    try:
        for index in range(args.runs):
            order = PIPELINES if index % 2 == 0 else PIPELINES[::-1]
            for pipeline in order:
                run = one_run(pipeline, index, root, args)
                runs.append(run)
                print(f"run {index + 1} {pipeline}: {run.pedestrian_assignments} pedestrian assignments, "
                      f"{'TIMED OUT after' if run.timed_out else 'decided in'} {run.wall_s:.1f} s, "
                      f"CPU {run.cpu_s:.1f} s, peak {run.maxrss_mb:.0f} MB, "
                      f"{sum(run.requests.values())} requests, exit {run.exit_code}", flush=True)
    finally:
        if args.keep:
            print(f"run folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(report(runs))
    if args.json:
        args.json.write_text(json.dumps({"command": command_line(args), "runs": [asdict(r) for r in runs]}, indent=1))
    return 0 if all(not r.timed_out for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
