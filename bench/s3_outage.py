"""The S3-outage case: the photo store freezes for minutes mid-run; is any honest work rejected, is it reported?

Issue 11 asks that "the S3-outage case (the store frozen for several minutes mid-run) ends with
no honest work rejected and the outage reported". This script runs that case end to end:

- moto's S3 server is started (a child process on a free loopback port) and a bucket created;
- the Toloka emulator with a built-in pedestrian scenario (``demo`` by default) and the real
  daemon run in one process, as in ``python pipeline.py --demo``, but with ``[FileStore]
  backend = s3`` and ``[S3] url`` pointing at a proxy in front of moto
  (``tests/file_store/fs_proxy.py``'s ``FlakyProxy``). Presigned links name the proxy too, so
  the simulated checkers' photo fetches go through it, as a real checker's browser goes to S3;
- once the first quality tasks exist (or at ``--outage-start`` seconds) the proxy stalls every
  request (``--mode stall``: held until the outage ends, as a frozen store holds them) or answers
  each with S3's 503 (``--mode refuse``) for ``--outage-seconds``, then serves again; the run
  goes on until every organization is decided (or held for a person) and the daemon has seen the
  store serve again;
- the emulator's crowd opens a task's links once, when the task appears, and shows every later
  checker what it saw then; a task that appeared during the outage would stay photo-less for
  good. With ``--relook`` (the default) the crowd looks again at such tasks once the store serves,
  as a real checker's browser would; ``--no-relook`` keeps the emulator's per-task memory.

The same scenario and seed also run without any outage (``--compare``, the default), at the same
time in another process. Then the daemon's decisions are scored against the crowd's truth with
``bench/decision_quality.py``'s metric functions and this is printed: the outage as injected, the
windows the daemon recorded (checkpointed engine state and the status JSON), the negative answers
it voided (the pool logs' WARNING lines), the answers checkers gave without seeing the photo,
honest work rejected (by reason) with and without the outage, bad work accepted, decisions right,
and whether ``logs/pipeline/error.log`` names the outage.

    python bench/s3_outage.py [--scenario demo|realistic] [--seed 1] [--speed 60] [--period 1]
        [--outage-start auto|SECONDS] [--outage-seconds 180] [--mode stall|refuse] [--no-relook]
        [--no-compare] [--time-limit 900] [--json out.json] [--keep]

Exit code 0 when no honest work was rejected because of the outage (honest rejections with it
<= without it; with ``--no-compare``: no honest rejection whose negative answers include one
given without seeing the photo) and the outage was reported (a window recorded over the injected
interval and named in error.log); 1 otherwise, also when a run failed or timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import logging
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
# bench/ has no __init__.py: mypy (and a script run) see its files as top-level modules, so the
# decision-quality benchmark's metric functions are imported as ``decision_quality``.
sys.path.insert(0, str(REPO / "bench"))

import keyring  # noqa: E402  # (E402: the repository root is put on sys.path first)
from decision_quality import (  # noqa: E402
    VERIFICATION_POOLS,
    _all_settled,
    _git_head,
    _held_ids,
    read_tsv,
    score_decisions,
    write_config,
)

from common.errors import PipelineError  # noqa: E402
from common.secrets import SERVICE  # noqa: E402
from demo import FolderKeyring  # noqa: E402
from emulator.app import EmulatorState, start_emulator  # noqa: E402
from emulator.crowd import simulator  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.runner import RunOptions, run  # noqa: E402
from engine.snapshot import take_snapshot  # noqa: E402
from engine.ticker import Engine  # noqa: E402
from file_store.testing import ChildServer, start_moto_process  # noqa: E402
from handlers import flow  # noqa: E402
from pipelines.pedestrian import PEDESTRIAN  # noqa: E402
from tests.file_store.fs_proxy import FlakyProxy  # noqa: E402

TOKEN = "s3-outage-bench-token"
BUCKET = "outage-photos"
S3_KEY_ID = "AKIAS3OUTAGEBENCH001"  # moto accepts any credentials; these never leave this machine
S3_SECRET = "s3-outage-bench-secret-access-key-0123456789"
RESULT_FILE = "result.json"
AUTO_START_CAP_S = 40.0  # --outage-start auto: at the latest this long after the daemon started
S3_UNAVAILABLE = ('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>ServiceUnavailable</Code>'
                  "<Message>Please reduce your request rate.</Message></Error>")
OUTAGE_REPORTED = "photo store: links do not serve since"
SERVES_AGAIN = "photo store: links serve again since"
VOID_LINE = re.compile(r"task (\S+): (\d+) negative answer\(s\) sent while photo links did not serve are void")
REJECT_WAITS: str = getattr(flow, "REJECT_WAITS", "rejection waits")
TIME_FORMAT = "%Y-%m-%dT%H:%M:%S"
# What the crowd saw in a task (emulator/crowd/simulator.py); --relook resets the unreadable ones.
SEEN_PREFIX: str = getattr(simulator, "_SEEN_PREFIX", "crowd/t/")
# How long after the outage tasks settled as unreadable are still reset: longer than the crowd's
# looks at one task (UNREADABLE_LOOKS fetches of up to FETCH_TIMEOUT_SECONDS each, a second apart).
RELOOK_FOR_S = simulator.UNREADABLE_LOOKS * (simulator.FETCH_TIMEOUT_SECONDS + 1.0) + 5.0


# ---------------------------------------------------------------------------------------------------- the outage


class OutageProxy(FlakyProxy):
    """``FlakyProxy`` that can also stall: while stalled, every request waits until :meth:`end`."""

    def __init__(self, target: str) -> None:
        super().__init__(target)
        self._serving = asyncio.Event()
        self._serving.set()
        self.held = 0  # requests that arrived during a stall
        self.abandoned = 0  # ... whose client was gone when it ended, or that broke off later

    def begin(self, mode: str) -> None:
        """Stop serving: hold every request (``stall``) or answer it with S3's 503 (``refuse``)."""
        if mode == "refuse":
            self.fail_next(10**9, status=503, body=S3_UNAVAILABLE)
        else:
            self._serving.clear()

    def end(self) -> None:
        """Serve again; held requests go on to moto (their clients may have given up long ago)."""
        self.fail_next(0)
        self._serving.set()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if not self._serving.is_set():
            self.held += 1
            await self._serving.wait()
            if request.transport is None or request.transport.is_closing():
                self.abandoned += 1  # its client gave up during the stall: nobody to answer
                return web.Response(status=502)
        try:
            return await super()._handle(request)
        except (ConnectionError, aiohttp.ClientError) as exc:
            # A client that gave up while its body was still being read; not the daemon's business,
            # and aiohttp would log it at ERROR into the same process's logs/pipeline/error.log.
            self.abandoned += 1
            return web.Response(status=502, text=f"proxy: {type(exc).__name__}")


@dataclass(frozen=True)
class OutagePlan:
    """When (None: once the first quality tasks exist, at the latest AUTO_START_CAP_S) and how long.

    ``relook``: once the store serves again, the crowd forgets what it saw in tasks whose links did
    not open (see :func:`forget_dead_links`).
    """

    start_s: float | None
    seconds: float
    mode: str
    relook: bool = True


@dataclass
class Injected:
    """The outage as it was injected (naive UTC, as the daemon's windows and Toloka's times)."""

    start: str | None = None
    end: str | None = None
    trigger: str = ""  # why it started when it did
    started_after_s: float | None = None  # seconds after the daemon started
    held_requests: int = 0
    abandoned_requests: int = 0
    refused_requests: int = 0
    relooked_tasks: int = 0  # tasks the crowd looked at again after the outage (--relook)


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _stamp(at: datetime) -> str:
    return at.strftime(TIME_FORMAT) + f".{at.microsecond // 1000:03d}"


def _quality_tasks(emu: EmulatorState) -> int:
    """Quality tasks the daemon created (the pool's control tasks left out)."""
    assert emu.setup_result is not None  # set up before the daemon ran
    pool = str(emu.setup_result["pools"]["quality"])
    return sum(1 for t in emu.store.tasks.values() if str(t.get("pool_id")) == pool and not t.get("known_solutions"))


def forget_dead_links(emu: EmulatorState) -> int:
    """Make the crowd look again at every verification task it settled as "links do not open".

    The emulator's crowd opens a task's links once, when the task appears (three looks a second
    apart), and every checker who takes the task later is shown what it saw then. A task that
    appeared during the outage would so stay unreadable for good, and each later checker answer
    the negative label, while a real checker opening the link after the outage sees the photo.
    The crowd keeps what it saw under ``crowd/t/<task id>`` in the store; an unsettled entry due
    now is looked at again at its next step. Returns how many tasks were reset.
    """
    reset = 0
    due = utc_now().isoformat()
    for task_id, task in list(emu.store.tasks.items()):
        if task.get("known_solutions"):
            continue
        seen = emu.store.kv_get(SEEN_PREFIX + task_id)
        if isinstance(seen, Mapping) and seen.get("settled") and seen.get("readable") is False \
                and not seen.get("error"):
            emu.store.kv_set(SEEN_PREFIX + task_id, {"settled": False, "looks": 0, "retry_at": due})
            reset += 1
    return reset


async def inject(proxy: OutageProxy, plan: OutagePlan, emu: EmulatorState, injected: Injected,
                 started: float) -> None:
    """Wait for the start, stop the proxy serving for ``plan.seconds``, then serve again."""
    while True:
        elapsed = time.monotonic() - started
        if plan.start_s is not None and elapsed >= plan.start_s:
            injected.trigger = f"fixed {plan.start_s:g} s"
            break
        if plan.start_s is None and _quality_tasks(emu) > 0:
            injected.trigger = "the first quality tasks exist"
            break
        if plan.start_s is None and elapsed >= AUTO_START_CAP_S:
            injected.trigger = f"no quality task after {AUTO_START_CAP_S:g} s"
            break
        await asyncio.sleep(0.2)
    injected.started_after_s = round(time.monotonic() - started, 1)
    injected.start = _stamp(utc_now())
    proxy.begin(plan.mode)
    print(f"outage: {plan.mode} from {injected.start} ({injected.trigger})", flush=True)
    try:
        await asyncio.sleep(plan.seconds)
    finally:
        proxy.end()
        injected.end = _stamp(utc_now())
        injected.held_requests, injected.refused_requests = proxy.held, proxy.failed
        print(f"outage: serving again from {injected.end}", flush=True)
    if plan.relook:
        # Looks still in flight at the end (a stalled fetch gives up after the crowd's timeout)
        # may settle a task as unreadable after it: keep forgetting for a while.
        until = time.monotonic() + RELOOK_FOR_S
        while time.monotonic() < until:
            injected.relooked_tasks += forget_dead_links(emu)
            await asyncio.sleep(0.5)
    injected.abandoned_requests = proxy.abandoned


# ---------------------------------------------------------------------------------------------------- one run


def s3_overrides(proxy_url: str) -> dict[str, dict[str, str | None]]:
    """The toloka.ini changes that store photos in the bucket through the proxy."""
    return {
        "FileStore": {"backend": "s3"},
        "S3": {"bucket_name": BUCKET, "url": proxy_url, "region": "us-east-1", "addressing_style": "path",
               "links": "presigned", "public_url": None},
    }


def create_bucket(endpoint: str, bucket: str) -> None:
    """``PUT /<bucket>`` on moto (it takes unsigned requests)."""
    request = urllib.request.Request(f"{endpoint}/{bucket}", method="PUT")
    with urllib.request.urlopen(request, timeout=30) as answer:
        answer.read()


def _window_open(daemon: Engine[Any, Any]) -> bool:
    outages = daemon.state.outages
    return bool(outages) and outages[-1].end is None


async def run_case(folder: Path, *, scenario: str, seed: int, speed: float, period_s: int,
                   plan: OutagePlan | None, time_limit_s: float) -> dict[str, Any]:
    """moto + proxy + emulator + daemon in ``folder`` until all is decided; the run's record (JSON-able)."""
    logging.getLogger("emulator").setLevel(logging.WARNING)
    keyring.set_keyring(FolderKeyring(folder / "keyring"))
    moto: ChildServer = await asyncio.to_thread(start_moto_process)
    try:
        await asyncio.to_thread(create_bucket, moto.endpoint, BUCKET)
        proxy = OutageProxy(moto.endpoint)
        async with proxy:
            return await _run_with_store(folder, proxy, scenario=scenario, seed=seed, speed=speed,
                                         period_s=period_s, plan=plan, time_limit_s=time_limit_s)
    finally:
        await asyncio.to_thread(moto.stop)


async def _run_with_store(folder: Path, proxy: OutageProxy, *, scenario: str, seed: int, speed: float,
                          period_s: int, plan: OutagePlan | None, time_limit_s: float) -> dict[str, Any]:
    started = time.monotonic()
    async with start_emulator(folder / "emulator.sqlite", token=TOKEN, seed=seed, speed=speed,
                              scenario=scenario) as emu:
        assert emu.setup_result is not None  # start_emulator(scenario=...) sets it up before it yields
        config = write_config(folder, emu, scenario, period_s, s3_overrides(proxy.url))
        try:
            settings = load_settings(config, PEDESTRIAN, base_dir=folder)
        except PipelineError as exc:
            return {"failed": f"the daemon refuses its toloka.ini: {exc}"}
        reject_comments = {pool: getattr(settings.config, pool).reject_comment for pool in VERIFICATION_POOLS}
        for entry, value in ((settings.secrets.toloka_token, TOKEN), ("s3_key_id", S3_KEY_ID),
                             ("s3_access_key", S3_SECRET)):
            await asyncio.to_thread(keyring.set_password, SERVICE, entry, value)
        injected = Injected()
        deadline = started + time_limit_s
        last: list[Engine[Any, Any]] = []
        timed_out = False
        outage: asyncio.Task[None] | None = None
        if plan is not None:
            outage = asyncio.create_task(inject(proxy, plan, emu, injected, time.monotonic()))

        ticks: list[dict[str, Any]] = []  # when each tick ended, and its store probe

        def finished(daemon: Engine[Any, Any]) -> bool:
            nonlocal timed_out
            last[:] = [daemon]
            probe = daemon.last_probe
            ticks.append({"end": _stamp(utc_now()), "probe_ok": probe.ok if probe else None,
                          "probe_at": _stamp(probe.at) if probe else None})
            if time.monotonic() > deadline:
                timed_out = True
                return True
            if outage is not None and not outage.done():
                return False  # the outage is still to come or going on (or the crowd still looks again)
            return not _window_open(daemon) and _all_settled(emu, daemon)

        try:
            code = await run(PEDESTRIAN, settings, RunOptions(until=finished, print_ticks=False))
        finally:
            if outage is not None and not outage.done():
                outage.cancel()
                await asyncio.gather(outage, return_exceptions=True)
        wall_s = time.monotonic() - started
        if code != 0:
            return {"failed": f"the daemon exited with code {code} (see {folder / 'logs'})"}
        daemon = last[0] if last else None
        if daemon is None:
            return {"failed": "the daemon never ticked"}
        record = collect(folder, emu, daemon, reject_comments=reject_comments,
                         injected=injected if plan else None, wall_s=wall_s, timed_out=timed_out)
        record["ticks"] = tick_figures(ticks, injected if plan else None)
        return record


# ---------------------------------------------------------------------------------------------------- figures


def _parse(stamp: str | None) -> datetime | None:
    if not stamp:
        return None
    return datetime.fromisoformat(stamp.replace("Z", ""))


def _covered(at: datetime | None, windows: Sequence[tuple[datetime | None, datetime | None]]) -> bool:
    return at is not None and any(s is not None and s <= at and (e is None or at <= e) for s, e in windows)


def tick_figures(ticks: Sequence[Mapping[str, Any]], injected: Injected | None) -> dict[str, Any]:
    """How the daemon ticked: the longest gap between two tick ends, and its ticks and probes in the outage."""
    gap, gap_from, gap_to = 0.0, None, None
    for before, after in itertools.pairwise(ticks):
        seconds = ((_parse(after["end"]) or datetime.min) - (_parse(before["end"]) or datetime.min)).total_seconds()
        if seconds > gap:
            gap, gap_from, gap_to = seconds, before["end"], after["end"]
    out: dict[str, Any] = {"ticks": len(ticks), "longest_gap_s": round(gap, 1), "gap_from": gap_from,
                           "gap_to": gap_to}
    if injected is not None and injected.start and injected.end:
        span = [(_parse(injected.start), _parse(injected.end))]
        inside = [t for t in ticks if _covered(_parse(t["end"]), span)]
        out["ticks_in_outage"] = len(inside)
        out["probes_failed_in_outage"] = sum(1 for t in inside if t["probe_ok"] is False)
        out["probes_failed"] = sum(1 for t in ticks if t["probe_ok"] is False)
    return out


def voided_answers(logs: Path) -> dict[str, Any]:
    """The pool logs' WARNING lines that void negative answers: lines, answers, per pool folder."""
    by_pool: dict[str, int] = {}
    lines = 0
    tasks: set[str] = set()
    for error_log in sorted(logs.glob("*/error.log")):
        if error_log.parent.name == "pipeline":
            continue  # the pool loggers propagate there: the same lines again
        for line in error_log.read_text(encoding="utf-8", errors="replace").splitlines():
            match = VOID_LINE.search(line)
            if match:
                lines += 1
                tasks.add(match.group(1))
                by_pool[error_log.parent.name] = by_pool.get(error_log.parent.name, 0) + int(match.group(2))
    return {"answers": sum(by_pool.values()), "lines": lines, "tasks": len(tasks), "by_pool": by_pool}


def outage_lines(logs: Path) -> dict[str, list[str]]:
    """logs/pipeline/error.log's lines naming an outage and its end."""
    path = logs / "pipeline" / "error.log"
    text = path.read_text(encoding="utf-8", errors="replace").splitlines() if path.exists() else []
    return {"reported": [line for line in text if OUTAGE_REPORTED in line],
            "serves_again": [line for line in text if SERVES_AGAIN in line]}


def blind_answers(truth_answers: Mapping[str, Mapping[str, Any]], pools: Mapping[str, str],
                  windows: Sequence[tuple[datetime | None, datetime | None]],
                  injected: tuple[datetime | None, datetime | None] | None,
                  taken: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """Every answer (control tasks left out) a checker gave without seeing a photo of the task.

    With no broken links in the scenario, those are the outage's doing: the crowd could not open
    the link when it first looked at the task.
    """
    name_of = {pool_id: name for name, pool_id in pools.items()}
    out: list[dict[str, Any]] = []
    for answer in truth_answers.values():
        submitted = _parse(answer.get("submitted"))
        for task in answer.get("tasks") or ():
            if task.get("golden") or not task.get("unreadable"):
                continue
            out.append({
                "pool": answer.get("pool") or name_of.get(str(answer.get("pool_id")), "?"),
                "task": task.get("task_id"), "worker": answer.get("worker_id"), "given": task.get("given"),
                "correct": task.get("correct"), "submitted": answer.get("submitted"),
                "pedestrian_assignment_id": task.get("pedestrian_assignment_id"),
                "taken": taken.get(str(answer.get("assignment_id"))),
                "taken_in_recorded_window": _covered(_parse(taken.get(str(answer.get("assignment_id")))), windows),
                "in_recorded_window": _covered(submitted, windows),
                "in_injected_outage": injected is not None and _covered(submitted, [injected]),
            })
    return sorted(out, key=lambda a: str(a["submitted"]))


def answers_on(aid: str, truth_answers: Mapping[str, Mapping[str, Any]],
               windows: Sequence[tuple[datetime | None, datetime | None]],
               taken: Mapping[str, str | None]) -> list[dict[str, Any]]:
    """The checkers' answers on one pedestrian assignment's tasks, oldest first."""
    out = []
    for answer in truth_answers.values():
        for task in answer.get("tasks") or ():
            if task.get("pedestrian_assignment_id") != aid or task.get("golden"):
                continue
            out.append({"pool": answer.get("pool"), "task": task.get("task_id"), "worker": answer.get("worker_id"),
                        "given": task.get("given"), "correct": task.get("correct"),
                        "saw_photo": not task.get("unreadable"), "submitted": answer.get("submitted"),
                        "taken": taken.get(str(answer.get("assignment_id"))),
                        "in_recorded_window": _covered(_parse(answer.get("submitted")), windows)})
    return sorted(out, key=lambda a: str(a["submitted"]))


def collect(folder: Path, emu: EmulatorState, daemon: Engine[Any, Any], *, reject_comments: Mapping[str, str],
            injected: Injected | None, wall_s: float, timed_out: bool) -> dict[str, Any]:
    """The run's figures: decisions scored against the truth, outage windows, voided answers, log lines."""
    assert emu.setup_result is not None
    logs = folder / "logs"
    truth = emu.crowd.truth()
    decisions = read_tsv(logs / "decisions.tsv")
    state = daemon.state.state
    metrics = score_decisions(truth["assignments"], decisions, read_tsv(folder / "results" / "bonus_tasks.tsv"),
                              reject_comments=reject_comments, held=_held_ids(state))
    metrics.held = max(metrics.held, PEDESTRIAN.held_for_a_person(state))
    snapshot = take_snapshot(daemon, daemon.clock())
    windows = [(o.start, o.end) for o in daemon.state.outages]
    span = (_parse(injected.start), _parse(injected.end)) if injected is not None else None
    taken = {str(a["id"]): a.get("created") for a in emu.store.assignments()}
    blind = blind_answers(truth["answers"], emu.setup_result["pools"], windows, span, taken)
    final_rows = {r.get("pedestrian_assignment_id", ""): r for r in decisions if r.get("event") in flow.FINAL}
    honest_rejected = []
    for aid, t in truth["assignments"].items():
        row = final_rows.get(aid)
        if (t.get("kind") != "honest" or t.get("expected") == "reject" or row is None
                or row.get("event") != flow.REJECT):
            continue
        answers = answers_on(aid, truth["answers"], windows, taken)
        honest_rejected.append({
            "pedestrian_assignment_id": aid, "org_id": t.get("org_id"), "expected": t.get("expected"),
            "decided": row.get("date_time"), "handler": row.get("handler"), "comment": row.get("comment"),
            "answers": answers, "blind_negative": sum(1 for a in answers if not a["saw_photo"]),
        })
    return {
        "wall_s": round(wall_s, 1), "timed_out": timed_out,
        "metrics": asdict(metrics), "reject_comments": dict(reject_comments),
        "injected": asdict(injected) if injected is not None else None,
        "recorded_windows": [{"start": _stamp(o.start), "end": _stamp(o.end) if o.end else None,
                              "detail": o.detail} for o in daemon.state.outages],
        "status_photo_store": snapshot.get("photo_store"), "status_outages": snapshot.get("outages"),
        "error_log": outage_lines(logs), "voided": voided_answers(logs),
        "rejection_waits": sum(1 for r in decisions if r.get("event") == REJECT_WAITS),
        "blind_answers": blind, "honest_rejected": honest_rejected,
    }


# ---------------------------------------------------------------------------------------------------- verdict


def reported(record: Mapping[str, Any]) -> bool:
    """A recorded window overlaps the injected outage and error.log names an outage."""
    inj = record.get("injected") or {}
    start, end = _parse(inj.get("start")), _parse(inj.get("end"))
    if start is None or end is None:
        return False
    overlaps = any((_parse(w["start"]) or end) <= end and (w["end"] is None or start <= (_parse(w["end"]) or start))
                   for w in record.get("recorded_windows") or ())
    return overlaps and bool(record.get("error_log", {}).get("reported"))


def good_rejected(record: Mapping[str, Any]) -> int:
    return int(record["metrics"]["good_rejected"])


def verdict(outage: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> tuple[bool, list[str]]:
    """(passed, the reasons) for the exit code."""
    reasons: list[str] = []
    ok = True
    for name, record in (("with outage", outage), ("without outage", baseline)):
        if record is None:
            continue
        if "failed" in record:
            ok = False
            reasons.append(f"the run {name} failed: {record['failed']}")
        elif record.get("timed_out"):
            ok = False
            reasons.append(f"the run {name} timed out (the daemon did not finish, see its folder)")
    if not ok:
        return False, reasons
    if baseline is not None:
        with_, without = good_rejected(outage), good_rejected(baseline)
        honest_ok = with_ <= without
        reasons.append(f"honest work rejected with the outage {with_} {'<=' if honest_ok else '>'} {without} without")
    else:
        blind = sum(1 for r in outage["honest_rejected"] if r["blind_negative"])
        honest_ok = blind == 0
        reasons.append(f"honest rejections with an answer given without seeing the photo: {blind}")
    was_reported = reported(outage)
    reasons.append("the outage was reported" if was_reported else
                   "the outage was NOT reported (no recorded window over it, or no error.log line)")
    return honest_ok and was_reported, reasons


# ---------------------------------------------------------------------------------------------------- printing


def _pct(part: int, whole: int) -> str:
    return f"{part} ({100 * part / whole:.1f}%)" if whole else str(part)


def comparison_table(runs: Sequence[tuple[str, Mapping[str, Any]]]) -> list[str]:
    """Decisions right, honest work rejected by reason, bad work accepted: one column per run."""
    seen = {k for _, r in runs for k in r["metrics"]["good_rejected_by_reason"]}
    reasons = [*VERIFICATION_POOLS, *sorted(seen - set(VERIFICATION_POOLS))]
    rows: list[tuple[str, list[str]]] = []

    def row(label: str, fmt: Any) -> None:
        rows.append((label, [fmt(r["metrics"], r) for _, r in runs]))

    row("decisions right", lambda m, r: f"{m['right']}/{m['decided']} of {m['submitted']}")
    row("honest work rejected", lambda m, r: f"{m['good_rejected']} of {m['honest_deserving']}")
    for reason in reasons:
        comment = next((r["reject_comments"].get(reason) for _, r in runs if reason in r["reject_comments"]), None)
        label = f"  by {reason}" + (f" ({comment!r})" if comment else "")
        row(label, lambda m, r, k=reason: str(m["good_rejected_by_reason"].get(k, 0)))
    row("bad work accepted", lambda m, r: _pct(m["bad_accepted"], m["accepted"]) + " of accepted")
    row("  cheat / sloppy / honest",
        lambda m, r: " / ".join(str(m["bad_accepted_by_kind"].get(k, 0)) for k in ("cheat", "sloppy", "honest")))
    row("held for a person / undecided", lambda m, r: f"{m['held']} / {m['undecided']}")
    row("'rejection waits' rows", lambda m, r: str(r["rejection_waits"]))
    row("negative answers voided", lambda m, r: str(r["voided"]["answers"]))
    row("answers given without seeing the photo", lambda m, r: str(len(r["blind_answers"])))
    row("wall s", lambda m, r: f"{r['wall_s']:.0f}" + (" (TIMED OUT)" if r["timed_out"] else ""))
    header = ["", *(name for name, _ in runs)]
    width0 = max(len(label) for label, _ in rows)
    widths = [max(len(header[i + 1]), *(len(v[i]) for _, v in rows)) for i in range(len(runs))]
    out = ["  ".join([header[0].ljust(width0), *(h.rjust(w) for h, w in zip(header[1:], widths, strict=True))])]
    out += ["  ".join([label.ljust(width0), *(v.rjust(w) for v, w in zip(values, widths, strict=True))])
            for label, values in rows]
    return out


def outage_section(record: Mapping[str, Any], mode: str) -> list[str]:
    inj = record["injected"] or {}
    out = [f"Outage injected: {inj.get('start')} -> {inj.get('end')} UTC ({mode}; started "
           f"{inj.get('started_after_s')} s after the daemon, when {inj.get('trigger')}; requests held "
           f"{inj.get('held_requests')} (abandoned by their client {inj.get('abandoned_requests')}), refused "
           f"{inj.get('refused_requests')}; tasks the crowd looked at again "
           f"afterwards: {inj.get('relooked_tasks')})"]
    ticks = record.get("ticks") or {}
    out.append(f"Daemon ticks: {ticks.get('ticks')}; ended inside the injected outage: {ticks.get('ticks_in_outage')}"
               f" (their probe failed: {ticks.get('probes_failed_in_outage')}; failed probes in all: "
               f"{ticks.get('probes_failed')}); longest gap between tick ends {ticks.get('longest_gap_s')} s "
               f"({ticks.get('gap_from')} -> {ticks.get('gap_to')})")
    windows = record["recorded_windows"]
    out.append(f"Outage windows the daemon recorded (checkpointed engine state): {len(windows)}")
    out += [f"  {w['start']} -> {w['end'] or 'still open'}: {w['detail']}" for w in windows]
    store = record.get("status_photo_store") or {}
    out.append(f"Status JSON at the end: photo_store ok={store.get('ok')} since={store.get('since')} "
               f"checked={store.get('checked')}; outages listed: {len(record.get('status_outages') or [])}")
    lines = record["error_log"]
    out.append(f"logs/pipeline/error.log names the outage: {'yes' if lines['reported'] else 'NO'} "
               f"({len(lines['reported'])} line(s); 'serve again' lines: {len(lines['serves_again'])})")
    out += [f"  {line}" for line in lines["reported"][:3]]
    voided = record["voided"]
    per_pool = ", ".join(f"{k} {v}" for k, v in sorted(voided["by_pool"].items())) or "none"
    out.append(f"Negative answers voided: {voided['answers']} on {voided['tasks']} task(s) in {voided['lines']} "
               f"WARNING line(s) ({per_pool})")
    blind = record["blind_answers"]
    inside = sum(1 for a in blind if a["in_recorded_window"])
    in_injected = sum(1 for a in blind if a["in_injected_outage"])
    negative = sum(1 for a in blind if a["given"] != a["correct"])
    out.append(f"Answers given without seeing the photo (the link did not open when the crowd looked): {len(blind)}"
               f" ({negative} wrong); submitted inside a recorded window {inside}, inside the injected outage "
               f"{in_injected}, after every window {len(blind) - inside}")
    by_pool: dict[str, int] = {}
    for a in blind:
        if not a["in_recorded_window"]:
            by_pool[str(a["pool"])] = by_pool.get(str(a["pool"]), 0) + 1
    if by_pool:
        out.append("  outside any window, by pool: " + ", ".join(f"{k} {v}" for k, v in sorted(by_pool.items()))
                   + f"; of them taken inside a recorded window: "
                   f"{sum(1 for a in blind if a['taken_in_recorded_window'] and not a['in_recorded_window'])}")
    return out


def honest_details(name: str, record: Mapping[str, Any]) -> list[str]:
    rows = record.get("honest_rejected") or []
    if not rows:
        return [f"Honest work rejected ({name}): none"]
    out = [f"Honest work rejected ({name}): {len(rows)}"]
    for r in rows:
        out.append(f"  {r['pedestrian_assignment_id']} (org {r['org_id']}, expected {r['expected']}): "
                   f"{r['handler']} REJECT {r['comment']!r} at {r['decided']}; "
                   f"{r['blind_negative']} answer(s) given without seeing the photo")
        for a in r["answers"]:
            if a["given"] != a["correct"] or not a["saw_photo"]:
                out.append(f"    {a['pool']} task {a['task']}: {a['worker']} took it at {a['taken']}, answered "
                           f"{a['given']!r} (right for what they saw: {a['correct']!r}) at {a['submitted']}; saw the "
                           f"photo: {a['saw_photo']}; answer inside a recorded window: {a['in_recorded_window']}")
    return out


def report(args: argparse.Namespace, outage: Mapping[str, Any], baseline: Mapping[str, Any] | None) -> list[str]:
    out: list[str] = []
    if "failed" in outage:
        out.append(f"run with outage FAILED: {outage['failed']}")
    else:
        out += ["", *outage_section(outage, args.mode)]
    runs = [(name, r) for name, r in (("with outage", outage), ("without outage", baseline))
            if r is not None and "failed" not in r]
    if baseline is not None and "failed" in baseline:
        out.append(f"run without outage FAILED: {baseline['failed']}")
    if runs:
        out += ["", *comparison_table(runs), ""]
    for name, r in runs:
        out += honest_details(name, r)
    return out


# ---------------------------------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", default="demo", help="built-in pedestrian scenario (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=1, help="default: %(default)s")
    parser.add_argument("--speed", type=float, default=60.0, help="emulator speed (default: %(default)g)")
    parser.add_argument("--period", type=int, default=1, help="daemon tick period, s (default: %(default)s)")
    parser.add_argument("--outage-start", default="auto",
                        help="seconds after the daemon starts, or 'auto': once the first quality tasks exist, "
                             f"at the latest {AUTO_START_CAP_S:g} s (default: %(default)s)")
    parser.add_argument("--outage-seconds", type=float, default=180.0, help="wall seconds (default: %(default)g)")
    parser.add_argument("--mode", choices=("stall", "refuse"), default="stall",
                        help="stall: hold every request until the outage ends; refuse: answer 503 (default: "
                             "%(default)s)")
    parser.add_argument("--relook", action=argparse.BooleanOptionalAction, default=True,
                        help="once the store serves again, the crowd looks again at tasks whose links did not "
                             "open (a later checker sees the photo); --no-relook keeps the emulator's per-task "
                             "memory, so such tasks stay unreadable for every later checker (default: on)")
    parser.add_argument("--compare", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the same scenario and seed without an outage (default: on)")
    parser.add_argument("--time-limit", type=float, default=900.0, help="per run, s (default: %(default)g)")
    parser.add_argument("--json", type=Path, help="write both runs' records here")
    parser.add_argument("--keep", action="store_true", help="keep the run folders (printed at the end)")
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)  # internal: one run in this folder
    parser.add_argument("--no-outage", action="store_true", help=argparse.SUPPRESS)  # internal: the baseline
    args = parser.parse_args(argv)
    if args.outage_start != "auto":
        try:
            args.outage_start_s = float(args.outage_start)
        except ValueError:
            parser.error("--outage-start must be 'auto' or a number of seconds")
    else:
        args.outage_start_s = None
    return args


def command_line(args: argparse.Namespace) -> str:
    parts = ["python", "bench/s3_outage.py", "--scenario", args.scenario, "--seed", str(args.seed),
             "--speed", f"{args.speed:g}", "--period", str(args.period), "--outage-start", str(args.outage_start),
             "--outage-seconds", f"{args.outage_seconds:g}", "--mode", args.mode,
             "--relook" if args.relook else "--no-relook", "--compare" if args.compare else "--no-compare",
             "--time-limit", f"{args.time_limit:g}"]
    if args.json:
        parts += ["--json", str(args.json)]
    return shlex.join(parts)


def _child_command(args: argparse.Namespace, folder: Path, *, with_outage: bool) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--one-run", str(folder), "--scenario", args.scenario,
            "--seed", str(args.seed), "--speed", f"{args.speed:g}", "--period", str(args.period),
            "--outage-start", str(args.outage_start), "--outage-seconds", f"{args.outage_seconds:g}",
            "--mode", args.mode, "--time-limit", f"{args.time_limit:g}",
            "--relook" if args.relook else "--no-relook", *([] if with_outage else ["--no-outage"])]


def one_run(args: argparse.Namespace) -> int:
    folder: Path = args.one_run
    plan = None if args.no_outage else OutagePlan(args.outage_start_s, args.outage_seconds, args.mode,
                                                      args.relook)
    record = asyncio.run(run_case(folder, scenario=args.scenario, seed=args.seed, speed=args.speed,
                                  period_s=args.period, plan=plan, time_limit_s=args.time_limit))
    (folder / RESULT_FILE).write_text(json.dumps(record, indent=1, default=str))
    return 0


def run_children(args: argparse.Namespace, root: Path) -> dict[str, dict[str, Any]]:
    """The run with the outage and (``--compare``) the one without, side by side, each its own process."""
    cases = {"outage": True, **({"baseline": False} if args.compare else {})}
    started = time.monotonic()
    procs: dict[str, tuple[subprocess.Popen[bytes], Path]] = {}
    for name, with_outage in cases.items():
        folder = root / name
        folder.mkdir(parents=True)
        with (folder / "run.log").open("wb") as log:
            procs[name] = (subprocess.Popen(_child_command(args, folder, with_outage=with_outage), stdout=log,
                                            stderr=subprocess.STDOUT), folder)
    records: dict[str, dict[str, Any]] = {}
    for name, (proc, folder) in procs.items():
        remaining = max(args.time_limit + 300 - (time.monotonic() - started), 1.0)
        try:
            code = proc.wait(timeout=remaining)
        except subprocess.TimeoutExpired:
            proc.kill()
            code = proc.wait()
        result = folder / RESULT_FILE
        if result.exists():
            records[name] = json.loads(result.read_text())
        else:
            tail = (folder / "run.log").read_text(errors="replace")[-2000:]
            records[name] = {"failed": f"run process exited with {code}; log tail:\n{tail}"}
        records[name]["process_s"] = round(time.monotonic() - started, 1)
        records[name]["folder"] = str(folder)
    return records


def summary_lines(records: Mapping[str, Mapping[str, Any]]) -> Iterable[str]:
    for name, label in (("outage", "with outage"), ("baseline", "without outage")):
        r = records.get(name)
        if r is None:
            continue
        if "failed" in r:
            yield f"[{label}] FAILED"
        else:
            yield (f"[{label}] {'TIMED OUT after' if r['timed_out'] else 'all decided in'} {r['wall_s']:.0f} s "
                   f"(process {r['process_s']:.0f} s)")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one_run is not None:
        return one_run(args)
    print(f"command: {command_line(args)}")
    print(f"code: {REPO} at {_git_head()}")
    print(f"scenario {args.scenario}, seed {args.seed}, speed x{args.speed:g}, tick {args.period} s; outage: "
          f"{args.mode} for {args.outage_seconds:g} s from "
          + ("the first quality tasks (at the latest "
             f"{AUTO_START_CAP_S:g} s)" if args.outage_start_s is None else f"{args.outage_start_s:g} s"),
          flush=True)
    root = Path(tempfile.mkdtemp(prefix="s3-outage-"))
    started = time.monotonic()
    try:
        records = run_children(args, root)
    finally:
        if args.keep:
            print(f"run folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"all runs finished in {time.monotonic() - started:.0f} s wall")
    print("\n".join(summary_lines(records)))
    outage, baseline = records["outage"], records.get("baseline")
    print("\n".join(report(args, outage, baseline)))
    passed, reasons = verdict(outage, baseline)
    print("")
    print(f"S3 OUTAGE {'PASS' if passed else 'FAIL'}: " + "; ".join(reasons))
    if args.json:
        args.json.write_text(json.dumps({"command": command_line(args), "runs": records}, indent=1, default=str))
    return 0 if passed else 1


if __name__ == "__main__":
    raise SystemExit(main())
