"""How right are the pedestrian pipeline's decisions? Several policies side by side on a simulated crowd.

For each (policy, seed) a fresh temporary folder gets the Toloka emulator (the scenario's crowd,
which knows the truth) and the real daemon, run as in ``python pipeline.py --demo`` until every
organization is decided (or the time limit per run passes). A policy is a set of overrides of
the ``toloka.ini`` that :func:`emulator.crowd.config_out.write_ini` writes (see ``POLICIES``).
Then the daemon's decisions (``logs/decisions.tsv``) and paid bonus fields
(``results/bonus_tasks.tsv``) are compared with the crowd's truth, and the emulator's store says
how many verification answers were bought and what everything cost.

    python bench/decision_quality.py [--scenario realistic] [--seeds 1,2,3] [--policies fixed3,fixed5,new]
        [--speed 60] [--period 2] [--jobs 2] [--time-limit 600] [--json out.json] [--keep]

Every run is its own process (its own emulator on a free loopback port, its own folder), so
``--jobs`` runs go in parallel. A run is set up only from (scenario, seed, policy); the crowd's
timing is wall-clock, so two runs with the same inputs can still differ a little.
The metric computation (:func:`score_decisions`, :func:`spend_of`) is pure: see
tests/pipeline/test_decision_quality_metrics.py.
"""

from __future__ import annotations

import argparse
import asyncio
import configparser
import csv
import fnmatch
import io
import json
import logging
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import keyring  # noqa: E402  # (E402: the repository root is put on sys.path first)

from common.errors import PipelineError  # noqa: E402
from common.secrets import SERVICE  # noqa: E402
from demo import FolderKeyring  # noqa: E402
from emulator.app import EmulatorState, start_emulator  # noqa: E402
from emulator.crowd.config_out import render_ini  # noqa: E402
from emulator.crowd.scenario import load_scenario_file  # noqa: E402
from engine.config import load_settings  # noqa: E402
from engine.runner import RunOptions, run  # noqa: E402
from engine.ticker import Engine  # noqa: E402
from handlers import flow  # noqa: E402
from handlers.settings import RECOMMENDED_POLICY  # noqa: E402
from pipelines.pedestrian import PEDESTRIAN  # noqa: E402

# ---------------------------------------------------------------------------------------------------- policies

# Section pattern (fnmatch) -> key -> value; None removes the key. Applied to the toloka.ini that
# render_ini/write_ini produces for the scenario: an older one writes the scenario pool's fixed
# overlap in every [Validation*] section, a newer one the recommended dynamic policy; each policy
# below sets or removes every key it depends on, so it means the same with either.
Overrides = Mapping[str, Mapping[str, str | None]]

# The dynamic policy's keys, removed for a fixed overlap (the daemon refuses overlap next to them,
# and a toloka.ini written by a newer write_ini may carry them).
NO_DYNAMIC: dict[str, str | None] = dict.fromkeys(
    ("min_overlap", "max_overlap", "confidence", "reject_confidence", "fallback"))

def _recommended(fallback: str, *, confidence: float | None = None,
                 reject_confidence: float | None = None) -> dict[str, str | None]:
    r = RECOMMENDED_POLICY
    return {
        "overlap": None, "min_overlap": str(r.min_overlap), "max_overlap": str(r.max_overlap),
        "confidence": f"{confidence or r.confidence:g}",
        "reject_confidence": f"{reject_confidence or r.reject_confidence:g}", "fallback": fallback,
        "aggregation": "MajorityVote", "default_skill": "70",
    }


POLICIES: dict[str, Overrides] = {
    # The old rule: a fixed overlap, the majority label decides (default_skill as write_ini's fixed policy).
    # A daemon that knows [PedestrianProject] max_distance_m keeps it, but only the dynamic policy uses it.
    "fixed3": {"Validation*": {**NO_DYNAMIC, "overlap": "3", "aggregation": "MajorityVote", "default_skill": "50"}},
    "fixed5": {"Validation*": {**NO_DYNAMIC, "overlap": "5", "aggregation": "MajorityVote", "default_skill": "50"}},
    # The dynamic policy exactly as the example toloka.ini and write_ini(policy="dynamic") write it
    # (handlers/settings.py RECOMMENDED_POLICY): tasks start with min_overlap answers, one more is
    # bought (up to max_overlap) while the verdict is less sure than confidence (fine) and
    # reject_confidence (not fine); still unsure at max_overlap: fallback. max_distance_m: worker
    # coordinates farther from the organization count against the visit.
    "new": {"Validation*": _recommended(RECOMMENDED_POLICY.fallback), "PedestrianProject": {"max_distance_m": "500"}},
    # The same, accepting every task still unsure at max_overlap (the recommended policy before lean).
    "new_accept": {"Validation*": _recommended("accept"), "PedestrianProject": {"max_distance_m": "500"}},
    # The same, holding unsure work for a person instead of accepting it.
    "new_hold": {"Validation*": _recommended("hold"), "PedestrianProject": {"max_distance_m": "500"}},
    # The same with 97% to pass and 98% to fail a check: fewer answers bought, more bad work accepted.
    "new_97": {"Validation*": _recommended("accept", confidence=0.97, reject_confidence=0.98),
               "PedestrianProject": {"max_distance_m": "500"}},
}
DEFAULT_POLICIES = "fixed3,fixed5,new"

# Events of the dynamic policy (handlers/flow.py); spelt out for checkouts that predate them.
HOLD_EVENT: str = getattr(flow, "HOLD", "HOLD for a person")
FALLBACK_EVENT: str = getattr(flow, "FALLBACK_ACCEPT", "unsure, accepted (fallback)")
VERIFICATION_POOLS = ("visit", "quality", "relevance")
TOKEN = "decision-quality-bench-token"
RESULT_FILE = "result.json"


def apply_policy(ini_text: str, overrides: Overrides) -> str:
    """The INI text with the policy's overrides; a pattern that matches no section is an error."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(ini_text)
    for pattern, keys in overrides.items():
        sections = [s for s in cfg.sections() if fnmatch.fnmatchcase(s, pattern)]
        if not sections:
            raise ValueError(f"policy section pattern [{pattern}] matches no section of toloka.ini")
        for section in sections:
            for key, value in keys.items():
                if value is None:
                    cfg.remove_option(section, key)
                else:
                    cfg.set(section, key, value)
    out = io.StringIO()
    cfg.write(out)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------------- metrics


@dataclass(frozen=True)
class Final:
    """The daemon's final decision on one pedestrian assignment, from decisions.tsv."""

    decision: str  # accept | reject | no_org
    stage: str  # the handler that decided (pedestrian, visit, quality, relevance)
    comment: str


def final_decisions(rows: Iterable[Mapping[str, str]]) -> dict[str, Final]:
    """Pedestrian assignment id -> its final decision (the last ACCEPT/REJECT row wins).

    An ACCEPT logged with the comment ``no_org`` (the visit handler's) is an accepted claim
    that the organization does not exist.
    """
    made: dict[str, Final] = {}
    for row in rows:
        event = row.get("event", "")
        if event not in flow.FINAL:
            continue
        stage, comment = row.get("handler", ""), row.get("comment", "")
        decision = "reject" if event == flow.REJECT else "no_org" if comment == "no_org" else "accept"
        made[row.get("pedestrian_assignment_id", "")] = Final(decision, stage, comment)
    return made


def reason_of(final: Final, reject_comments: Mapping[str, str]) -> str:
    """A rejection's reason: the pool whose configured reject comment it carries, else 'stage: comment'."""
    for pool, comment in reject_comments.items():
        if final.comment == comment:
            return pool
    return f"{final.stage}: {final.comment}"


@dataclass
class DecisionMetrics:
    """How right the decisions of one run are (see :func:`score_decisions`)."""

    submitted: int = 0  # pedestrian assignments in the truth
    decided: int = 0  # of those, with a final decision in decisions.tsv
    right: int = 0  # decision == expected
    confusion: dict[str, int] = field(default_factory=dict)  # "expected->made" for decided work
    honest_deserving: int = 0  # honest work whose expected is accept or no_org
    good_rejected: int = 0  # ... that was rejected
    good_rejected_by_reason: dict[str, int] = field(default_factory=dict)
    accepted: int = 0  # decided accept or no_org
    bad_accepted: int = 0  # ... whose expected is reject
    bad_accepted_by_kind: dict[str, int] = field(default_factory=dict)  # cheat / sloppy / honest
    bad_accepted_by_how: dict[str, int] = field(default_factory=dict)  # photographed / no_org
    correct_accepts: int = 0  # accept or no_org decided exactly as expected
    bonus_paid: int = 0  # bonus fields paid (rows of bonus_tasks.tsv)
    bonus_right: int = 0  # ... that the truth says deserved it
    bonus_deserved: int = 0  # bonus fields the truth says deserve a bonus
    bonus_unpaid: int = 0  # ... that were not paid
    fallback_accepted: int = 0  # accepted work with a check still unsure at max_overlap (fallback accept)
    fallback_bad: int = 0  # ... whose expected is reject
    held: int = 0  # work the daemon held for a person
    undecided: int = 0  # neither decided nor held when the run stopped
    unknown_ids: int = 0  # decisions about assignments the truth does not know


def _bump(counter: dict[str, int], key: str) -> None:
    counter[key] = counter.get(key, 0) + 1


def score_decisions(
    truth_assignments: Mapping[str, Mapping[str, Any]],
    decision_rows: Iterable[Mapping[str, str]],
    bonus_rows: Iterable[Mapping[str, str]],
    *,
    reject_comments: Mapping[str, str],
    held: Collection[str] = (),
) -> DecisionMetrics:
    """Compare a run's decisions and paid bonus fields with the truth (pure).

    ``truth_assignments`` is ``truth()["assignments"]`` (id -> kind, expected, bonus_fields);
    ``decision_rows`` the rows of decisions.tsv, ``bonus_rows`` those of bonus_tasks.tsv;
    ``reject_comments`` pool -> the reject comment its INI section sets; ``held`` the ids of
    pedestrian assignments held for a person (besides those with a HOLD row).
    """
    rows = list(decision_rows)
    made = final_decisions(rows)
    held = {*held, *(r.get("pedestrian_assignment_id", "") for r in rows if r.get("event") == HOLD_EVENT)}
    unsure = {r.get("pedestrian_assignment_id", "") for r in rows if r.get("event") == FALLBACK_EVENT}
    m = DecisionMetrics(submitted=len(truth_assignments), unknown_ids=len(set(made) - set(truth_assignments)))
    for aid, truth in truth_assignments.items():
        expected, kind = str(truth.get("expected")), str(truth.get("kind"))
        final = made.get(aid)
        if kind == "honest" and expected != "reject":
            m.honest_deserving += 1
        if final is None:
            if aid in held:
                m.held += 1
            else:
                m.undecided += 1
            continue
        m.decided += 1
        m.right += final.decision == expected
        _bump(m.confusion, f"{expected}->{final.decision}")
        if final.decision == "reject":
            if kind == "honest" and expected != "reject":
                m.good_rejected += 1
                _bump(m.good_rejected_by_reason, reason_of(final, reject_comments))
            continue
        m.accepted += 1
        if aid in unsure:
            m.fallback_accepted += 1
            m.fallback_bad += expected == "reject"
        if expected == "reject":
            m.bad_accepted += 1
            _bump(m.bad_accepted_by_kind, kind)
            _bump(m.bad_accepted_by_how, "no_org" if final.decision == "no_org" else "photographed")
        elif final.decision == expected:
            m.correct_accepts += 1
    _score_bonuses(m, truth_assignments, bonus_rows)
    return m


def _score_bonuses(
    m: DecisionMetrics, truth_assignments: Mapping[str, Mapping[str, Any]], bonus_rows: Iterable[Mapping[str, str]]
) -> None:
    paid: dict[str, set[str]] = {}
    for row in bonus_rows:
        paid.setdefault(row.get("pedestrian_assignment_id", ""), set()).add(row.get("bonus_field", ""))
    deserved = {aid: {str(f) for f in t.get("bonus_fields") or ()} for aid, t in truth_assignments.items()}
    m.bonus_paid = sum(len(fields) for fields in paid.values())
    m.bonus_right = sum(len(fields & deserved.get(aid, set())) for aid, fields in paid.items())
    m.bonus_deserved = sum(len(fields) for fields in deserved.values())
    m.bonus_unpaid = sum(len(fields - paid.get(aid, set())) for aid, fields in deserved.items())


@dataclass
class PoolSpend:
    """One verification pool at the end of a run, from the emulator's store."""

    tasks: int = 0  # tasks the daemon created (control tasks left out)
    overlaps: dict[str, int] = field(default_factory=dict)  # task overlap -> tasks
    assignments: int = 0  # submitted or accepted assignments
    answers: int = 0  # answered tasks in them, control tasks left out: the answers bought
    control_answers: int = 0  # answered control tasks (mixed into the same paid assignments)
    money: float = 0.0  # rewards of the accepted assignments


@dataclass
class Spend:
    pools: dict[str, PoolSpend] = field(default_factory=dict)
    pedestrian_rewards: float = 0.0  # accepted pedestrian assignments
    bonuses: float = 0.0

    @property
    def verification(self) -> float:
        return sum(p.money for p in self.pools.values())

    @property
    def total(self) -> float:
        return self.verification + self.pedestrian_rewards + self.bonuses


def spend_of(
    pools: Mapping[str, str],
    tasks: Iterable[Mapping[str, Any]],
    assignments: Iterable[Mapping[str, Any]],
    bonuses: Iterable[Mapping[str, Any]],
) -> Spend:
    """Answers bought and money spent, from the store's task, assignment and bonus documents (pure).

    ``pools`` is pool name -> pool id (pedestrian and the verification pools).
    """
    kind_of = {pool_id: name for name, pool_id in pools.items()}
    spend = Spend(pools={name: PoolSpend() for name in pools if name != "pedestrian"})
    for task in tasks:
        pool = spend.pools.get(kind_of.get(str(task.get("pool_id")), ""))
        if pool is None or task.get("known_solutions"):
            continue
        pool.tasks += 1
        _bump(pool.overlaps, "inf" if task.get("infinite_overlap") else str(task.get("overlap")))
    pedestrian_rewards = Decimal(0)
    for a in assignments:
        name = kind_of.get(str(a.get("pool_id")), "")
        reward = Decimal(str(a.get("reward") or 0)) if a.get("status") == "ACCEPTED" else Decimal(0)
        if name == "pedestrian":
            pedestrian_rewards += reward
            continue
        pool = spend.pools.get(name)
        if pool is None or a.get("status") not in ("SUBMITTED", "ACCEPTED"):
            continue
        pool.assignments += 1
        control = sum(1 for t in a.get("tasks") or () if t.get("known_solutions"))
        pool.answers += len(a.get("tasks") or ()) - control
        pool.control_answers += control
        pool.money = float(Decimal(str(pool.money)) + reward)
    spend.pedestrian_rewards = float(pedestrian_rewards)
    spend.bonuses = float(sum((Decimal(str(b.get("amount") or 0)) for b in bonuses), Decimal(0)))
    return spend


def figures(m: DecisionMetrics, s: Spend, *, wall_s: float, timed_out: bool) -> dict[str, float]:
    """One run's numbers, flat (key -> number), so that runs can be averaged key by key."""
    out: dict[str, float] = {
        k: float(v) for k, v in asdict(m).items() if isinstance(v, int) and not isinstance(v, bool)}
    for prefix, counts in (("good_rejected.", m.good_rejected_by_reason), ("bad_kind.", m.bad_accepted_by_kind),
                           ("bad_how.", m.bad_accepted_by_how)):
        out.update({prefix + k: float(v) for k, v in counts.items()})
    for name, pool in s.pools.items():
        out.update({f"tasks.{name}": pool.tasks, f"answers.{name}": pool.answers,
                    f"assignments.{name}": pool.assignments, f"money.{name}": pool.money})
    out.update({"money.verification": s.verification, "money.pedestrian": s.pedestrian_rewards,
                "money.bonuses": s.bonuses, "money.total": s.total, "wall_s": wall_s,
                "timed_out": float(timed_out), "runs": 1.0})
    return out


def mean(runs: Sequence[Mapping[str, float]]) -> dict[str, float]:
    """Key-by-key mean (a key missing from a run counts as 0); ``runs`` is the number of runs."""
    keys = {k for run in runs for k in run}
    out = {k: sum(run.get(k, 0.0) for run in runs) / len(runs) for k in keys}
    out["runs"] = float(len(runs))
    return out


# ---------------------------------------------------------------------------------------------------- one run


def read_tsv(path: Path) -> list[dict[str, str]]:
    """A pipeline table (header, every field quoted) as dicts; a missing file is empty."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def _held_ids(state: Any) -> set[str]:
    held = getattr(state, "held", None)
    return {str(k) for k in held} if isinstance(held, Mapping) else set()


def _open_ids(state: Any) -> set[str] | None:
    works = getattr(state, "works", None)
    return {str(k) for k in works} if isinstance(works, Mapping) else None


def write_config(folder: Path, emu: EmulatorState, scenario: str, period_s: int, overrides: Overrides) -> Path:
    """``folder/toloka.ini`` for the emulator's scenario, as the demo writes it, with ``overrides`` applied."""
    assert emu.setup_result is not None  # start_emulator(scenario=...) sets it up before it yields
    config = folder / "toloka.ini"
    text = render_ini(
        url=emu.url, setup_result=emu.setup_result, scenario=load_scenario_file(scenario),
        period_seconds=period_s, cursor_lag_seconds=1, local_folder=str(folder / "photos"),
        results_folder=str(folder / "results"), saves_folder=str(folder / "saves"),
        logs_folder=str(folder / "logs"))
    config.write_text(apply_policy(text, overrides), encoding="utf-8")
    return config


async def run_one(folder: Path, *, scenario: str, seed: int, policy: str, speed: float, period_s: int,
                  time_limit_s: float) -> dict[str, Any]:
    """Emulator + daemon in ``folder`` until everything is decided; the run's record (JSON-able)."""
    logging.getLogger("emulator").setLevel(logging.WARNING)
    keyring.set_keyring(FolderKeyring(folder / "keyring"))
    started = time.monotonic()
    async with start_emulator(folder / "emulator.sqlite", token=TOKEN, seed=seed, speed=speed,
                              scenario=scenario) as emu:
        assert emu.setup_result is not None  # start_emulator(scenario=...) sets it up before it yields
        config = write_config(folder, emu, scenario, period_s, POLICIES[policy])
        try:
            settings = load_settings(config, PEDESTRIAN, base_dir=folder)
        except PipelineError as exc:
            return {"skipped": str(exc)}
        reject_comments = {pool: getattr(settings.config, pool).reject_comment for pool in VERIFICATION_POOLS}
        await asyncio.to_thread(keyring.set_password, SERVICE, settings.secrets.toloka_token, TOKEN)
        deadline = started + time_limit_s
        last: list[Engine[Any, Any]] = []
        timed_out = False

        def finished(daemon: Engine[Any, Any]) -> bool:
            nonlocal timed_out
            last[:] = [daemon]
            if time.monotonic() > deadline:
                timed_out = True
                return True
            return _all_settled(emu, daemon)

        code = await run(PEDESTRIAN, settings, RunOptions(until=finished, print_ticks=False))
        wall_s = time.monotonic() - started
        if code != 0:
            return {"failed": f"the daemon exited with code {code} (see {folder / 'logs'})"}
        state = last[0].state.state if last else None
        held = _held_ids(state)
        truth = emu.crowd.truth()
        metrics = score_decisions(
            truth["assignments"], read_tsv(folder / "logs" / "decisions.tsv"),
            read_tsv(folder / "results" / "bonus_tasks.tsv"), reject_comments=reject_comments, held=held)
        held_count = PEDESTRIAN.held_for_a_person(state) if state is not None else 0
        metrics.held = max(metrics.held, held_count)
        spend = spend_of(emu.setup_result["pools"], emu.store.tasks.values(), emu.store.assignments(),
                         emu.store.bonuses())
    return {"metrics": asdict(metrics), "spend": asdict(spend), "reject_comments": reject_comments,
            "figures": figures(metrics, spend, wall_s=wall_s, timed_out=timed_out), "timed_out": timed_out,
            "wall_s": round(wall_s, 1)}


def _all_settled(emu: EmulatorState, daemon: Engine[Any, Any]) -> bool:
    """Every organization's task has a finally reviewed (or held) assignment and the daemon owes nothing.

    demo.py's ``_all_decided``, with work held for a person counted as settled.
    """
    assert emu.setup_result is not None  # set up before the daemon ran
    pool = emu.setup_result["pools"]["pedestrian"]
    state = daemon.state.state
    held = _held_ids(state)
    settled = {a["tasks"][0]["id"] for a in emu.store.assignments(pool_id=pool)
               if a["status"] in ("ACCEPTED", "REJECTED") or a["id"] in held}
    organizations = len(emu.store.all_truth("org"))
    open_ids = _open_ids(state)
    still_open = bool(open_ids - held) if open_ids is not None else bool(daemon.in_progress)
    return len(settled) >= organizations and not still_open and not daemon.journal.pending()


# ---------------------------------------------------------------------------------------------------- preflight


def check_policy(scenario: str, policy: str) -> str | None:
    """Why this checkout's daemon refuses the policy's toloka.ini, or None if it accepts it.

    Checked on an INI written with made-up pool ids, before any emulator starts.
    """
    setup = {"pools": {name: str(i + 1) for i, name in enumerate(("pedestrian", *VERIFICATION_POOLS))},
             "skills": {name: str(i + 11) for i, name in enumerate(VERIFICATION_POOLS)}}
    with tempfile.TemporaryDirectory(prefix="dq-check-") as tmp:
        path = Path(tmp) / "toloka.ini"
        try:
            text = render_ini(url="http://127.0.0.1:1", setup_result=setup, scenario=load_scenario_file(scenario))
            path.write_text(apply_policy(text, POLICIES[policy]), encoding="utf-8")
            load_settings(path, PEDESTRIAN, base_dir=Path(tmp))
        except (PipelineError, ValueError) as exc:
            return str(exc)
    return None


# ---------------------------------------------------------------------------------------------------- tables


Row = Mapping[str, float]
Column = tuple[str, Callable[[Row], str]]


def _num(value: float) -> str:
    return f"{value:.0f}" if float(value).is_integer() else f"{value:.1f}"


def _pct(part: float, whole: float) -> str:
    return f"{_num(part)} ({100 * part / whole:.1f}%)" if whole else _num(part)


def _key(key: str) -> Callable[[Row], str]:
    return lambda r: _num(r.get(key, 0.0))


def _money(key: str) -> Callable[[Row], str]:
    return lambda r: f"{r.get(key, 0.0):.2f}"


def render_table(title: str, columns: Sequence[Column], rows: Sequence[tuple[Sequence[str], Row]],
                 lead: Sequence[str]) -> str:
    """A plain-text table: ``lead`` columns (policy, seed) then ``columns``."""
    header = [*lead, *(c[0] for c in columns)]
    body = [[*labels, *(fmt(row) for _, fmt in columns)] for labels, row in rows]
    widths = [max(len(line[i]) for line in [header, *body]) for i in range(len(header))]
    lines = [title, "  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True))]
    lines += ["  ".join(v.rjust(w) if i >= len(lead) else v.ljust(w) for i, (v, w) in
                        enumerate(zip(line, widths, strict=True))) for line in body]
    return "\n".join(lines)


def decision_columns(reasons: Sequence[str], *, runs: bool) -> list[Column]:
    cols: list[Column] = [("runs", _key("runs"))] if runs else []
    cols += [
        ("decided", lambda r: f"{_num(r.get('decided', 0))}/{_num(r.get('submitted', 0))}"),
        ("right", lambda r: _pct(r.get("right", 0), r.get("decided", 0))),
        ("good rejected", lambda r: _pct(r.get("good_rejected", 0), r.get("honest_deserving", 0))),
    ]
    cols += [(f"by {reason}", _key("good_rejected." + reason)) for reason in reasons]
    cols += [
        ("bad accepted", lambda r: _pct(r.get("bad_accepted", 0), r.get("accepted", 0))),
        ("cheat", _key("bad_kind.cheat")), ("sloppy", _key("bad_kind.sloppy")), ("honest", _key("bad_kind.honest")),
        ("photographed", _key("bad_how.photographed")), ("no_org", _key("bad_how.no_org")),
        ("fallback accepted (bad)", lambda r: f"{_num(r.get('fallback_accepted', 0))} "
                                              f"({_num(r.get('fallback_bad', 0))})"),
        ("held", _key("held")), ("undecided", _key("undecided")), ("timed out", _key("timed_out")),
    ]
    return cols


def bonus_columns() -> list[Column]:
    return [
        ("paid", _key("bonus_paid")),
        ("paid right", lambda r: _pct(r.get("bonus_right", 0), r.get("bonus_paid", 0))),
        ("deserved", _key("bonus_deserved")),
        ("deserved unpaid", lambda r: _pct(r.get("bonus_unpaid", 0), r.get("bonus_deserved", 0))),
    ]


def _per_task(pool: str) -> Callable[[Row], str]:
    return lambda r: f"{r.get(f'answers.{pool}', 0) / max(r.get(f'tasks.{pool}', 0), 1):.2f}"


def cost_columns() -> list[Column]:
    cols: list[Column] = []
    for pool in VERIFICATION_POOLS:
        cols.append((f"{pool} answers", _key(f"answers.{pool}")))
        cols.append(("/task", _per_task(pool)))
    cols += [
        ("verif. money", _money("money.verification")), ("ped. rewards", _money("money.pedestrian")),
        ("bonuses", _money("money.bonuses")), ("total", _money("money.total")),
        ("correct accepts", _key("correct_accepts")),
        ("money/correct accept", lambda r: f"{r.get('money.total', 0) / r['correct_accepts']:.3f}"
         if r.get("correct_accepts") else "-"),
        ("wall s", lambda r: f"{r.get('wall_s', 0):.0f}"),
    ]
    return cols


def reasons_in(runs: Iterable[Mapping[str, Any]]) -> list[str]:
    """Rejection reasons seen, the configured pools first (in flow order), then any other."""
    seen = {k.split(".", 1)[1] for run in runs for k in run.get("figures", {}) if k.startswith("good_rejected.")}
    return [*VERIFICATION_POOLS, *sorted(seen - set(VERIFICATION_POOLS))]


def report(runs: Sequence[Mapping[str, Any]], policies: Sequence[str]) -> str:
    """The summary (mean over seeds, one row per policy) and the per-seed tables."""
    done = [r for r in runs if "figures" in r]
    reasons = reasons_in(done)
    comments: Mapping[str, str] = next((r["reject_comments"] for r in done), {})
    legend = ", ".join(f"{pool} = {comments.get(pool, '?')!r}" for pool in VERIFICATION_POOLS)

    def tables(mean_rows: bool) -> list[tuple[str, list[Column]]]:
        return [
            ("Decisions: right = decided as the truth expects (% of decided); good rejected = honest work that "
             "deserved acceptance and was rejected (% of such work), by reason; bad accepted = accepted work whose "
             f"expected is reject (% of accepted), by kind and by how.\nReasons (reject comments): {legend}",
             decision_columns(reasons, runs=mean_rows)),
            ("Bonus fields (bonus_tasks.tsv vs the truth's bonus_fields)", bonus_columns()),
            ("Verification answers bought (control tasks left out; /task = answers per task created) and money",
             cost_columns()),
        ]

    means = [((p,), mean([r["figures"] for r in done if r["policy"] == p]))
             for p in policies if any(r["policy"] == p for r in done)]
    per_seed = [((r["policy"], str(r["seed"])), r["figures"])
                for r in sorted(done, key=lambda r: (policies.index(r["policy"]), r["seed"]))]
    out = ["", "=== Mean over seeds, one row per policy ==="]
    out += [render_table(t, cols, means, ["policy"]) + "\n" for t, cols in tables(True)]
    out += ["=== Per seed ==="]
    out += [render_table(t, cols, per_seed, ["policy", "seed"]) + "\n" for t, cols in tables(False)]
    return "\n".join(out)


# ---------------------------------------------------------------------------------------------------- main


@dataclass(frozen=True)
class Job:
    policy: str
    seed: int


def _child_command(args: argparse.Namespace, job: Job, folder: Path) -> list[str]:
    return [sys.executable, str(Path(__file__).resolve()), "--one-run", str(folder), "--scenario", args.scenario,
            "--seeds", str(job.seed), "--policies", job.policy, "--speed", f"{args.speed:g}",
            "--period", str(args.period), "--time-limit", f"{args.time_limit:g}"]


def _run_job(args: argparse.Namespace, job: Job, root: Path) -> dict[str, Any]:
    folder = root / f"{job.policy}-seed{job.seed}"
    folder.mkdir(parents=True)
    record: dict[str, Any] = {"policy": job.policy, "seed": job.seed, "folder": str(folder)}
    started = time.monotonic()
    with (folder / "run.log").open("w") as log:
        try:
            code = subprocess.run(_child_command(args, job, folder), stdout=log, stderr=subprocess.STDOUT,
                                  timeout=args.time_limit + 300, check=False).returncode
        except subprocess.TimeoutExpired:
            code = -1
    record["process_s"] = round(time.monotonic() - started, 1)
    result = folder / RESULT_FILE
    if result.exists():
        record.update(json.loads(result.read_text()))
    else:
        tail = (folder / "run.log").read_text(errors="replace")[-2000:]
        record["failed"] = f"run process exited with {code}; log tail:\n{tail}"
    return record


def _progress(record: Mapping[str, Any], n: int, total: int) -> str:
    head = f"[{n}/{total}] {record['policy']} seed {record['seed']}: "
    if "figures" not in record:
        return head + (f"SKIPPED: {record['skipped']}" if "skipped" in record else f"FAILED: {record['failed']}")
    f = record["figures"]
    return head + (
        f"{'TIMED OUT after' if record['timed_out'] else 'all decided in'} {record['wall_s']:.0f} s; "
        f"right {f['right']:.0f}/{f['decided']:.0f}, good rejected {f['good_rejected']:.0f}, "
        f"bad accepted {f['bad_accepted']:.0f}, held {f['held']:.0f}, undecided {f['undecided']:.0f}, "
        f"money {f['money.total']:.2f}")


def _git_head() -> str:
    try:
        head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + (" (with uncommitted changes)" if dirty else "")


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--scenario", default="realistic", help="built-in scenario (default: %(default)s)")
    parser.add_argument("--seeds", default="1,2,3", help="comma list (default: %(default)s)")
    parser.add_argument("--policies", default=DEFAULT_POLICIES,
                        help=f"comma list of {', '.join(POLICIES)} (default: %(default)s)")
    parser.add_argument("--speed", type=float, default=60.0, help="emulator speed (default: %(default)g)")
    parser.add_argument("--period", type=int, default=2, help="daemon tick period, s (default: %(default)s)")
    parser.add_argument("--jobs", type=int, default=2, help="runs in parallel (default: %(default)s)")
    parser.add_argument("--time-limit", type=float, default=600.0, help="per run, s (default: %(default)g)")
    parser.add_argument("--json", type=Path, help="write every run's record here")
    parser.add_argument("--keep", action="store_true", help="keep the run folders (printed at the end)")
    parser.add_argument("--one-run", type=Path, help=argparse.SUPPRESS)  # internal: one run in this folder
    args = parser.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.policy_list = [p.strip() for p in args.policies.split(",") if p.strip()]
    unknown = [p for p in args.policy_list if p not in POLICIES]
    if unknown:
        parser.error(f"unknown policies {', '.join(unknown)}; known: {', '.join(POLICIES)}")
    return args


def command_line(args: argparse.Namespace) -> str:
    """The exact command, every option spelt out."""
    parts = ["python", "bench/decision_quality.py", "--scenario", args.scenario, "--seeds", args.seeds,
             "--policies", args.policies, "--speed", f"{args.speed:g}", "--period", str(args.period),
             "--jobs", str(args.jobs), "--time-limit", f"{args.time_limit:g}"]
    if args.json:
        parts += ["--json", str(args.json)]
    return shlex.join(parts)


def one_run(args: argparse.Namespace) -> int:
    folder: Path = args.one_run
    record = asyncio.run(run_one(folder, scenario=args.scenario, seed=args.seed_list[0], policy=args.policy_list[0],
                                 speed=args.speed, period_s=args.period, time_limit_s=args.time_limit))
    (folder / RESULT_FILE).write_text(json.dumps(record, indent=1))
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.one_run is not None:
        return one_run(args)
    print(f"command: {command_line(args)}")
    print(f"code: {REPO} at {_git_head()}; {len(args.policy_list) * len(args.seed_list)} runs, {args.jobs} at a time")
    for name in args.policy_list:
        print(f"policy {name}: " + "; ".join(
            f"[{section}] " + ", ".join(f"{k} = {v}" if v is not None else f"no {k}" for k, v in keys.items())
            for section, keys in POLICIES[name].items()))
    policies = []
    for name in args.policy_list:
        problem = check_policy(args.scenario, name)
        if problem is None:
            policies.append(name)
        else:
            print(f"policy {name} SKIPPED: this checkout's daemon refuses its toloka.ini: {problem}")
    jobs = [Job(p, s) for p in policies for s in args.seed_list]
    root = Path(tempfile.mkdtemp(prefix="decision-quality-"))
    runs: list[dict[str, Any]] = []
    started = time.monotonic()
    try:
        with ThreadPoolExecutor(max_workers=max(args.jobs, 1)) as pool:
            futures = [pool.submit(_run_job, args, job, root) for job in jobs]
            for n, future in enumerate(as_completed(futures), 1):
                runs.append(future.result())
                print(_progress(runs[-1], n, len(jobs)), flush=True)
    finally:
        if args.keep:
            print(f"run folders kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
    print(f"all runs finished in {time.monotonic() - started:.0f} s wall")
    print(report(runs, policies))
    if args.json:
        args.json.write_text(json.dumps({"command": command_line(args), "policies": POLICIES, "runs": runs},
                                        indent=1))
    return 0 if all("figures" in r for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
