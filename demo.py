"""``python pipeline.py --demo [pedestrian|find_items]``: a full rehearsal on the local emulator.

No account is needed. For the pedestrian pipeline (the default) it starts the
Toloka emulator in this process on a free loopback port with the built-in
``demo`` scenario (a dozen organizations, honest, sloppy and cheating
pedestrians, checkers of varying accuracy); for ``find_items`` with the built-in
``find_items`` scenario (ten query images, a shop of drawn products, good,
sloppy and junk finders, checkers and comparers). It writes a ``toloka.ini`` for it into
the working folder, keeps the token in a keyring file inside that folder (the
user's own keyring is never touched), and runs the real daemon with one-second
ticks and the local file store until every pedestrian assignment is decided.
Then it prints what happened and how it compares with the emulator's ground
truth.

A demo that was interrupted (Ctrl-C, kill -9) resumes where it stopped when run
again with the same folder and seed; a finished one starts afresh.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import time
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import keyring
from keyrings.alt.file import PlaintextKeyring  # type: ignore[import-untyped]  # keyrings.alt ships no types

from common.secrets import SERVICE
from emulator.app import EmulatorState, start_emulator
from emulator.crowd.config_out import write_ini
from emulator.crowd.find_items_truth import score_find_items
from emulator.crowd.scenario import load_scenario_file
from emulator.crowd.truth import score
from engine.config import load_settings
from engine.runner import RunOptions, run
from engine.ticker import Engine
from pipelines.find_items import FIND_ITEMS
from pipelines.pedestrian import PEDESTRIAN
from reporting.differences import decided_differently

MARKER = ".pipeline-demo.json"
TOKEN = "demo-token-for-the-local-emulator"
TIME_LIMIT_S = 600.0


class FolderKeyring(PlaintextKeyring):  # type: ignore[misc]  # its base is untyped (see the import)
    """keyrings.alt's plain-text file backend, kept inside the demo folder."""

    priority = -1  # never chosen by keyring's own detection, only set explicitly

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self._folder = folder

    @property
    def file_path(self) -> str:
        return str(self._folder / "keyring_pass.cfg")


def run_demo(
    folder: Path,
    *,
    seed: int = 1,
    speed: float = 60.0,
    period_s: float = 1.0,
    aggregation: str | None = None,
    pipeline: str = "pedestrian",
) -> int:
    """Run (or resume) the demo of ``pipeline`` in ``folder``; returns the exit code."""
    folder = folder.absolute()
    resumed = _prepare(folder, seed, pipeline)
    keyring.set_keyring(FolderKeyring(folder / "keyring"))
    started = time.monotonic()
    if pipeline == "find_items":
        found = asyncio.run(rehearse_find_items(folder, seed=seed, speed=speed, period_s=period_s))
        if found is None:
            return 1
        text = render_find_items(found, folder, time.monotonic() - started, resumed)
    else:
        # No method named: the recommended dynamic policy; a method named: the old fixed overlap with it.
        policy = "dynamic" if aggregation is None else "fixed"
        report = asyncio.run(rehearse(folder, seed=seed, speed=speed, period_s=period_s,
                                      aggregation=aggregation or "MajorityVote", policy=policy))
        if report is None:
            return 1
        text = render(report, folder, time.monotonic() - started, resumed, aggregation or "")
    (folder / MARKER).write_text(json.dumps({"seed": seed, "pipeline": pipeline, "finished": True}))
    print(text)
    return 0


def _prepare(folder: Path, seed: int, pipeline: str = "pedestrian") -> bool:
    """Start afresh, or resume an interrupted run of the same pipeline with the same seed (True)."""
    marker = folder / MARKER
    if folder.exists() and any(folder.iterdir()):
        if not marker.exists():
            raise SystemExit(f"demo: {folder} is not empty and was not made by the demo; choose another --demo-dir")
        previous = json.loads(marker.read_text())
        same = previous.get("seed") == seed and previous.get("pipeline", "pedestrian") == pipeline
        if not previous.get("finished") and same:
            print(f"demo: resuming the interrupted run in {folder}")
            return True
        print(_replacing(folder, previous))
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker.write_text(json.dumps({"seed": seed, "pipeline": pipeline, "finished": False}))
    return False


def _replacing(folder: Path, previous: Mapping[str, Any]) -> str:
    """The one line that says an earlier demo run in ``folder`` is deleted, and which one."""
    what = "finished" if previous.get("finished") else "interrupted"
    stamp = time.strftime("%Y-%m-%d %H:%M", time.localtime((folder / MARKER).stat().st_mtime))
    run = f"{previous.get('pipeline', 'pedestrian')} run of {stamp} (seed {previous.get('seed', '?')})"
    return f"demo: replacing the {what} {run} in {folder}: its results, logs and photos are deleted"


async def rehearse(
    folder: Path, *, seed: int, speed: float, period_s: float, aggregation: str = "MajorityVote",
    scenario: str = "demo", policy: str = "dynamic",
) -> dict[str, Any] | None:
    """Run the emulator and the daemon in ``folder`` until all work is decided; the report, or None.

    ``scenario`` is a built-in pedestrian scenario; ``policy`` the verification policy the
    written toloka.ini gets (``dynamic``, the recommended one, or ``fixed`` overlap).
    """
    logging.getLogger("emulator").setLevel(logging.WARNING)  # the crowd's chatter is not the demo's story
    async with start_emulator(folder / "emulator.sqlite", token=TOKEN, seed=seed, speed=speed,
                              scenario=scenario) as emu:
        print(f"demo: Toloka emulator at {emu.url} (scenario {scenario}, seed {seed}, speed x{speed:g})")
        assert emu.setup_result is not None  # start_emulator(scenario=...) sets it up before it yields
        config = folder / "toloka.ini"
        policy = _policy_of(config) or policy  # a resumed run keeps the policy it was started with
        write_ini(
            config, url=emu.url, setup_result=emu.setup_result, scenario=load_scenario_file(scenario),
            period_seconds=int(period_s), cursor_lag_seconds=1, local_folder=str(folder / "photos"),
            results_folder=str(folder / "results"), saves_folder=str(folder / "saves"),
            logs_folder=str(folder / "logs"), aggregation=aggregation, policy=policy,
        )
        settings = load_settings(config, PEDESTRIAN, base_dir=folder)
        await asyncio.to_thread(keyring.set_password, SERVICE, settings.secrets.toloka_token, TOKEN)
        deadline = time.monotonic() + TIME_LIMIT_S

        def finished(daemon: Engine[Any, Any]) -> bool:
            if time.monotonic() > deadline:
                print(f"demo: not finished after {TIME_LIMIT_S:.0f} s; stopping")
                return True
            return _all_decided(emu, daemon)

        code = await run(PEDESTRIAN, settings, RunOptions(until=finished, print_ticks=True))
        if code != 0:
            return None
        return _report(emu, folder / "results", folder / "logs")


def _policy_of(config: Path) -> str | None:
    """``fixed`` or ``dynamic``: the verification policy an existing toloka.ini uses (None: no file)."""
    if not config.exists():
        return None
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(config, encoding="utf-8")
    return "fixed" if cfg.has_option("ValidationVisit", "overlap") else "dynamic"


def _all_decided(emu: EmulatorState, daemon: Engine[Any, Any]) -> bool:
    """Every pedestrian task has a finally reviewed assignment, and the daemon holds nothing."""
    assert emu.setup_result is not None  # set up before the daemon ran
    pool = emu.setup_result["pools"]["pedestrian"]
    final = [a for a in emu.store.assignments(pool_id=pool) if a["status"] in ("ACCEPTED", "REJECTED")]
    reviewed = {a["tasks"][0]["id"] for a in final}
    organizations = len(emu.store.all_truth("org"))
    return len(reviewed) >= organizations and not daemon.in_progress and not daemon.journal.pending()


def _report(emu: EmulatorState, results: Path, logs: Path) -> dict[str, Any]:
    import pandas as pd

    truth = emu.crowd.truth()
    decisions_tsv = _read(logs / "decisions.tsv")
    main = _read(results / "main_tasks.tsv")
    no_org = _read(results / "no_org.tsv")
    bonus = _read(results / "bonus_tasks.tsv")
    made: dict[str, str] = {}
    for row in decisions_tsv[decisions_tsv["event"] == "REJECT assignment"].itertuples():
        made[str(row.pedestrian_assignment_id)] = "reject"
    for pa in main.get("pedestrian_assignment_id", pd.Series(dtype=str)):
        made[str(pa)] = "accept"
    for pa in no_org.get("pedestrian_assignment_id", pd.Series(dtype=str)):
        made[str(pa)] = "no_org"
    kept = _kept_photos(truth, [*main.to_numpy().ravel(), *bonus.get("links", [])])
    paid_fields: dict[str, list[str]] = {}
    for row in bonus.itertuples():
        paid_fields.setdefault(str(row.pedestrian_assignment_id), []).append(str(row.bonus_field))
    quality = score(truth, made, kept_photos=kept, bonus_fields=paid_fields)
    rewards = sum(
        (Decimal(str(a.get("reward") or 0)) for a in emu.store.assignments() if a["status"] == "ACCEPTED"),
        Decimal(0),
    )
    bonuses = sum((Decimal(str(b["amount"])) for b in emu.store.bonuses()), Decimal(0))
    return {
        "events": Counter(decisions_tsv["event"]) if len(decisions_tsv) else Counter(),
        "made": Counter(made.values()),
        "score": quality,
        "rewards": rewards,
        "bonuses": bonuses,
        "bonus_count": len(emu.store.bonuses()),
        "rows": {"main_tasks.tsv": len(main), "no_org.tsv": len(no_org), "bonus_tasks.tsv": len(bonus)},
        "differences": decided_differently(truth["assignments"], made, decisions_tsv.to_dict("records")),
    }


def _read(path: Path) -> Any:
    import pandas as pd

    if not path.exists():
        return pd.DataFrame({"event": [], "pedestrian_assignment_id": []})
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def _kept_photos(truth: Mapping[str, Any], cells: list[Any]) -> set[str]:
    """Attachment ids of the photos published under main/ and main_bonus/ (from the result links)."""
    kept: set[str] = set()
    assignments = truth.get("assignments") or {}
    for cell in cells:
        if not isinstance(cell, str) or not cell.startswith("["):
            continue
        for url in json.loads(cell):
            parts = unquote(urlparse(url).path).split("/")
            try:
                folder_index = max(i for i, p in enumerate(parts) if p in ("main", "main_bonus"))
                pa, field, name = parts[folder_index + 1 : folder_index + 4]
                photo = assignments[pa]["photos"][field][int(name.split(".")[0])]
            except (ValueError, KeyError, IndexError):
                continue
            kept.add(str(photo["attachment_id"]))
    return kept


def render(
    report: Mapping[str, Any], folder: Path, elapsed_s: float, resumed: bool, aggregation: str = ""
) -> str:
    """The summary printed at the end of the demo."""
    s = report["score"]
    events = report["events"]
    made = report["made"]
    lines = [
        "",
        f"Demo finished in {elapsed_s:.0f} s{' (resumed)' if resumed else ''}, "
        + (f"fixed overlap, aggregation {aggregation}." if aggregation
           else "dynamic policy (learned worker quality, answers bought while unsure)."),
        "",
        "Decisions on pedestrian assignments:",
        f"  accepted (organization photographed): {made.get('accept', 0)}",
        f"  accepted (organization does not exist): {made.get('no_org', 0)}",
        f"  rejected: {made.get('reject', 0)}",
        "Decision log events: " + ", ".join(f"{k} {v}" for k, v in sorted(events.items())),
        "",
        f"Money spent: rewards {report['rewards']:.2f} + bonuses {report['bonuses']:.2f} "
        f"({report['bonus_count']} bonuses) = {report['rewards'] + report['bonuses']:.2f}",
        "",
        "Against the emulator's ground truth:",
        f"  decisions as expected: {s['exact']} of {s['decided']} (accuracy {s['accuracy']})",
        f"  precision of accepted work: {s['precision_accepted']}  recall: {s['recall_accepted']}",
        f"  cheats caught: {s['cheats_caught']} of {s['cheats']}",
        f"  bad photos kept out: {s['bad_photos_kept_out']} of {s['bad_photos']}",
        f"  good organizations accepted: {s['confusion'].get('accept->accept', 0)} of "
        f"{sum(v for k, v in s['confusion'].items() if k.startswith('accept->'))}",
        f"  bonus fields paid right: {s.get('bonus_fields_right')} of {s.get('bonus_fields_paid')}",
        *(["", "Decided differently from the truth, and why:", *report["differences"]]
          if report.get("differences") else []),
        "",
        "Where things are:",
        f"  results: {folder / 'results'} ("
        + ", ".join(f"{name} {n} rows" for name, n in report["rows"].items()) + ")",
        f"  logs:    {folder / 'logs'} (decisions.tsv, answers.tsv, one folder per pool)",
        f"  photos:  {folder / 'photos'} (tmp/, main/, main_bonus/)",
        f"  config:  {folder / 'toloka.ini'}   checkpoints: {folder / 'saves'}",
    ]
    return "\n".join(lines)


async def rehearse_find_items(folder: Path, *, seed: int, speed: float, period_s: float) -> dict[str, Any] | None:
    """The find-items pipeline on the emulator's ``find_items`` scenario until every image is ranked."""
    logging.getLogger("emulator").setLevel(logging.WARNING)
    async with start_emulator(folder / "emulator.sqlite", token=TOKEN, seed=seed, speed=speed,
                              scenario="find_items") as emu:
        print(f"demo: Toloka emulator at {emu.url} (scenario find_items, seed {seed}, speed x{speed:g})")
        assert emu.setup_result is not None  # start_emulator(scenario=...) sets it up before it yields
        config = folder / "toloka.ini"
        write_ini(
            config, url=emu.url, setup_result=emu.setup_result, scenario=load_scenario_file("find_items"),
            period_seconds=int(period_s), cursor_lag_seconds=1, local_folder=str(folder / "photos"),
            results_folder=str(folder / "results"), saves_folder=str(folder / "saves"),
            logs_folder=str(folder / "logs"),
        )
        settings = load_settings(config, FIND_ITEMS, base_dir=folder)
        await asyncio.to_thread(keyring.set_password, SERVICE, settings.secrets.toloka_token, TOKEN)
        deadline = time.monotonic() + TIME_LIMIT_S
        images = len(emu.setup_result["images"])

        def finished(daemon: Engine[Any, Any]) -> bool:
            if time.monotonic() > deadline:
                print(f"demo: not finished after {TIME_LIMIT_S:.0f} s; stopping")
                return True
            ranked = len(daemon.state.state.ranked)
            return ranked >= images and not daemon.in_progress and not daemon.journal.pending()

        code = await run(FIND_ITEMS, settings, RunOptions(until=finished, print_ticks=True))
        if code != 0:
            return None
        results = folder / "results"
        verified = _read(results / "verified_links.tsv").to_dict("records")
        rankings = _read(results / "rankings.tsv").to_dict("records")
        rewards = sum(
            (Decimal(str(a.get("reward") or 0)) for a in emu.store.assignments() if a["status"] == "ACCEPTED"),
            Decimal(0),
        )
        return {"score": score_find_items(emu.crowd.truth(), verified, rankings), "rewards": rewards,
                "images": images, "ranked": len({str(r["image"]) for r in rankings}),
                "rows": {"verified_links.tsv": len(verified), "rankings.tsv": len(rankings)}}


def render_find_items(report: Mapping[str, Any], folder: Path, elapsed_s: float, resumed: bool) -> str:
    """The summary printed at the end of the find-items demo."""
    s = report["score"]
    return "\n".join([
        "",
        f"Demo of the find_items pipeline finished in {elapsed_s:.0f} s{' (resumed)' if resumed else ''}.",
        "",
        f"Links verified: {s['links_accepted']} accepted, {s['links_rejected']} rejected; "
        f"rankings written for {report['ranked']} of {report['images']} images "
        f"({s['images_too_few_links']} with a single distinct link, nothing to compare).",
        f"Money spent on rewards: {report['rewards']:.2f}",
        "",
        "Against the emulator's ground truth:",
        f"  precision of accepted links: {s['precision_accepted']} ({s['bad_links_accepted']} bad links accepted, "
        f"{s['good_links_rejected']} good links rejected)",
        f"  cheats caught (junk links rejected): {s['junk_caught']} of {s['junk_submissions']}",
        f"  rankings vs the true order: mean Spearman {s['spearman_mean']} over {len(s['spearman_by_image'])} images",
        "",
        "Where things are:",
        f"  results: {folder / 'results'} ("
        + ", ".join(f"{name} {n} rows" for name, n in report["rows"].items()) + ")",
        f"  logs:    {folder / 'logs'} (decisions.tsv, answers.tsv, one folder per pool)",
        f"  config:  {folder / 'toloka.ini'}   checkpoints: {folder / 'saves'}",
    ])


if __name__ == "__main__":  # pragma: no cover - use `python pipeline.py --demo`
    raise SystemExit(run_demo(Path(os.environ.get("DEMO_DIR", "demo-run"))))
