"""What a finished find-items run decided, per image, and what is wrong with it.

The find-items twin of tools/outcome.py, asked the same two questions of the
emulator's SQLite file, its ground truth (saved as ``truth.json`` while the
emulator ran) and the daemon's TSVs:

- ``check_run``: one verdict per find_items assignment, the platform agrees,
  no verification or side-by-side task twice, no repeated row, every image ranked;
- ``outcome``: per image, each finder's link with its verdict and the ranking,
  with run-specific ids, hosts and ports left out, so two runs with one seed
  compare equal.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from pipelines import load_settings
from pipelines.find_items import ACCEPT, AUTO_ACCEPTED, REJECT
from tools.harness import admin, objects
from tools.outcome import Findings, read_tsv

TRUTH_FILE = "truth.json"


def finished(url: str, folder: Path) -> bool:
    """Every catalogue image has its ranking in rankings.tsv (the truth is saved for the checks)."""
    try:
        truth = admin(url, "/_emulator/truth")
    except (OSError, ValueError):  # the emulator may be injecting faults
        return False
    (folder / TRUTH_FILE).write_text(json.dumps(truth))
    images = catalogue_images(truth)
    ranked = {_path(r["image"]) for r in read_tsv(folder / "results" / "rankings.tsv")}
    return bool(images) and images <= ranked


def catalogue_images(truth: dict[str, Any]) -> set[str]:
    """The paths of the catalogue's query images, from the crowd's truth."""
    images = (truth.get("catalogue") or {}).get("images") or {}
    return {_path(str(v.get("url", ""))) for v in images.values() if isinstance(v, dict)}


def _path(url: str) -> str:
    """A link without scheme, host and port: the emulator's port differs between two runs."""
    return urlparse(url).path


def check_run(folder: Path) -> Findings:
    """Soundness checks of one finished find-items run in ``folder``."""
    db = folder / "emulator.sqlite"
    found = Findings()
    config = load_settings(folder / "toloka.ini").config
    statuses = {a["id"]: a["status"] for a in objects(db, "assignment")}
    submitted = {a["id"] for a in objects(db, "assignment")
                 if a["pool_id"] == config.find.pool_id and a["status"] in ("SUBMITTED", "ACCEPTED", "REJECTED")}
    _check_verdicts(found, folder, submitted, statuses)
    _check_tasks(found, db, config.verify.pool_id, config.compare.pool_id)
    answers = Counter((r["task"], r["assignment_id"]) for r in read_tsv(folder / "logs" / "answers.tsv"))
    if (extra := sum(n - 1 for n in answers.values())) > 0:
        found.add("duplicates", f"{extra} repeated (task, assignment) rows in answers.tsv", extra)
    _check_rankings(found, folder)
    return found


def _check_verdicts(found: Findings, folder: Path, submitted: set[str], statuses: dict[str, str]) -> None:
    """One verdict per find_items assignment, as the platform has it, with its verified_links.tsv row."""
    decisions = read_tsv(folder / "logs" / "decisions.tsv")
    finals = Counter((r["assignment_id"], r["event"]) for r in decisions if r["event"] in (ACCEPT, REJECT))
    overtaken = {r["assignment_id"] for r in decisions if r["event"] == AUTO_ACCEPTED}
    per_assignment = Counter(aid for aid, _ in finals.elements())
    for aid in sorted(submitted):
        if per_assignment[aid] == 0:
            found.add("missing", f"no verdict for find_items assignment {aid}")
        elif per_assignment[aid] > 1:
            found.add("duplicates", f"{per_assignment[aid]} verdicts for {aid}", per_assignment[aid] - 1)
        wanted = "ACCEPTED" if finals[(aid, ACCEPT)] else "REJECTED" if finals[(aid, REJECT)] else None
        if wanted and statuses.get(aid) != wanted and aid not in overtaken:
            found.add("wrong", f"{aid}: decisions.tsv says {wanted}, the platform {statuses.get(aid)}")
    repeated = Counter(tuple(r.values()) for r in decisions)
    if (extra := sum(n - 1 for n in repeated.values())) > 0:
        found.add("duplicates", f"{extra} repeated rows in decisions.tsv", extra)
    verified = Counter(r["assignment_id"] for r in read_tsv(folder / "results" / "verified_links.tsv"))
    for aid, n in verified.items():
        if n > 1:
            found.add("duplicates", f"{n} rows for {aid} in verified_links.tsv", n - 1)
    for aid in sorted(submitted - set(verified)):
        found.add("missing", f"find_items assignment {aid} has no row in verified_links.tsv")


def _check_tasks(found: Findings, db: Path, verify_pool: str, compare_pool: str) -> None:
    """No verification task twice for one find, no side-by-side task twice for one pair."""
    tasks = objects(db, "task")
    checks = Counter(t["input_values"].get("assignment_id") for t in tasks if t["pool_id"] == verify_pool)
    pairs = Counter((t["input_values"].get("image"), t["input_values"].get("left_link"),
                     t["input_values"].get("right_link")) for t in tasks if t["pool_id"] == compare_pool)
    for key, n in [*checks.items(), *pairs.items()]:
        if n > 1:
            found.add("duplicates", f"task {key} exists {n} times", n - 1)


def _check_rankings(found: Findings, folder: Path) -> None:
    """Each image ranked once (ranks 1..n, no link twice), every catalogue image ranked."""
    rankings = read_tsv(folder / "results" / "rankings.tsv")
    ranked = Counter((r["image"], r["link"]) for r in rankings)
    if (extra := sum(n - 1 for n in ranked.values())) > 0:
        found.add("duplicates", f"{extra} repeated (image, link) rows in rankings.tsv", extra)
    by_image: dict[str, list[int]] = {}
    for r in rankings:
        by_image.setdefault(r["image"], []).append(int(r["rank"]))
    for image, ranks in by_image.items():
        if sorted(ranks) != list(range(1, len(ranks) + 1)):
            found.add("wrong", f"{image}: ranks {sorted(ranks)} are not 1..{len(ranks)}")
    truth_file = folder / TRUTH_FILE
    if truth_file.exists():
        images = catalogue_images(json.loads(truth_file.read_text()))
        for image in sorted(images - {_path(i) for i in by_image}):
            found.add("missing", f"image {image} has no ranking")


def outcome(folder: Path) -> dict[str, dict[str, Any]]:
    """Per image: each finder's link and verdict, and the ranking (ids, hosts and ports left out)."""
    result: dict[str, dict[str, Any]] = {}
    for r in read_tsv(folder / "results" / "verified_links.tsv"):
        entry = result.setdefault(_path(r["image"]), {"verdicts": [], "ranking": []})
        entry["verdicts"].append([r["worker"], _path(r["link"]), r["verdict"]])
    for r in sorted(read_tsv(folder / "results" / "rankings.tsv"), key=lambda r: int(r["rank"])):
        entry = result.setdefault(_path(r["image"]), {"verdicts": [], "ranking": []})
        entry["ranking"].append(_path(r["link"]))
    for entry in result.values():
        entry["verdicts"].sort()
    return result
