"""What a finished run decided, per organization, and what is wrong with it.

Both the soak and the fault run finish a scenario and then ask two questions
of the emulator's SQLite file, its ground truth and the daemon's TSVs:

- ``check_run``: is the run sound on its own (one final decision per
  pedestrian assignment, no task or bonus twice, no duplicate or missing TSV
  row, every result link opens)?
- ``outcome``: what happened to each organization, with run-specific ids and
  times left out, so that two runs with the same seed compare equal.
"""

from __future__ import annotations

import csv
import json
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

from pipelines import load_settings
from tools.harness import objects, truth

FINAL_EVENTS = ("ACCEPT assignment", "REJECT assignment")
RESULT_TABLES = ("main_tasks.tsv", "no_org.tsv", "bonus_tasks.tsv")
# Columns that differ between two correct runs: ids, times.
RUN_SPECIFIC = {"pedestrian_assignment_id", "accepted", "decided", "date_time"}
JPEG = b"\xff\xd8\xff"


def read_tsv(path: Path) -> list[dict[str, str]]:
    """Rows of a daemon TSV (absent file: no rows)."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t", quoting=csv.QUOTE_MINIMAL))


@dataclass
class Findings:
    """Counts and a description of each problem found."""

    duplicates: int = 0
    missing: int = 0
    broken_links: int = 0
    wrong: int = 0
    late_answers: int = 0  # answers to tasks of a work already decided otherwise: dropped by design
    problems: list[str] = field(default_factory=list)

    def add(self, kind: str, text: str, n: int = 1) -> None:
        setattr(self, kind, getattr(self, kind) + n)
        self.problems.append(text)

    @property
    def ok(self) -> bool:
        return not (self.duplicates or self.missing or self.broken_links or self.wrong)


def _links(cell: str) -> list[str]:
    if not cell.startswith("["):
        return []
    try:
        found = json.loads(cell)
    except ValueError:
        return []
    return [u for u in found if isinstance(u, str)]


def check_run(folder: Path) -> Findings:
    """Soundness checks of one finished run in ``folder`` (emulator.sqlite, logs/, results/)."""
    db = folder / "emulator.sqlite"
    found = Findings()
    pedestrian = truth(db, "assignment")
    statuses = {a["id"]: a["status"] for a in objects(db, "assignment")}
    decisions = read_tsv(folder / "logs" / "decisions.tsv")
    finals = _check_finals(found, decisions, pedestrian, statuses)
    _check_tasks(found, db)
    _check_answers(found, folder, db, decisions, {pa for pa, _ in finals})
    rows = _check_results(found, folder, pedestrian, statuses)
    _check_bonuses(found, db, rows["bonus_tasks.tsv"])
    return found


def _check_finals(found: Findings, decisions: list[dict[str, str]], pedestrian: dict[str, Any],
                  statuses: dict[str, str]) -> Counter[tuple[str, str]]:
    """One final decision per pedestrian assignment, as the platform has it; no repeated decision row."""
    finals = Counter((r["pedestrian_assignment_id"], r["event"]) for r in decisions if r["event"] in FINAL_EVENTS)
    per_pa = Counter(pa for pa, _ in finals.elements())
    for pa in pedestrian:
        if per_pa[pa] == 0:
            found.add("missing", f"no final decision for pedestrian assignment {pa}")
        elif per_pa[pa] > 1:
            found.add("duplicates", f"{per_pa[pa]} final decisions for {pa}", per_pa[pa] - 1)
        wanted = ("ACCEPTED" if finals[(pa, "ACCEPT assignment")]
                  else "REJECTED" if finals[(pa, "REJECT assignment")] else None)
        if wanted and statuses.get(pa) != wanted:
            found.add("wrong", f"{pa}: decisions.tsv says {wanted}, the platform {statuses.get(pa)}")
    repeated = Counter(tuple(r.values()) for r in decisions)
    if (extra := sum(n - 1 for n in repeated.values())) > 0:
        found.add("duplicates", f"{extra} repeated rows in decisions.tsv", extra)
    return finals


def _check_tasks(found: Findings, db: Path) -> None:
    """No downstream task created twice for one (pool, pedestrian assignment, photo)."""
    tasks = Counter(
        (t["pool_id"], t["input_values"]["pedestrian_assignment_id"], t["input_values"].get("photo_id", ""))
        for t in objects(db, "task") if "pedestrian_assignment_id" in t["input_values"]
    )
    for key, n in tasks.items():
        if n > 1:
            found.add("duplicates", f"downstream task {key} exists {n} times", n - 1)


def _check_answers(found: Findings, folder: Path, db: Path, decisions: list[dict[str, str]],
                   finished: set[str]) -> None:
    """Every answer that decided something has one row in answers.tsv.

    An answer counts as missing when the daemon decided its task, or has not decided the work at
    all. Answers to tasks of a work already decided for another reason (say the main photos were
    bad while a bonus photo was still being checked) are dropped by design: they decide nothing.
    """
    answers = read_tsv(folder / "logs" / "answers.tsv")
    answered = Counter((r["task"], r["assignment_id"]) for r in answers)
    if (extra := sum(n - 1 for n in answered.values())) > 0:
        found.add("duplicates", f"{extra} repeated (task, assignment) rows in answers.tsv", extra)
    config = load_settings(folder / "toloka.ini").config
    handler_of = {config.visit.pool_id: "visit", config.quality.pool_id: "quality",
                  config.relevance.pool_id: "relevance"}
    judged = {(r["handler"], r["pedestrian_assignment_id"], r["comment"]) for r in decisions
              if r["event"] in ("GOOD image", "BAD image")}
    visited = {r["pedestrian_assignment_id"] for r in decisions if r["handler"] == "visit"}
    task_docs = {t["id"]: t for t in objects(db, "task")}
    seen = {a for _, a in answered}
    for a in objects(db, "assignment"):
        handler = handler_of.get(a["pool_id"])
        if handler is None or a["status"] not in ("ACCEPTED", "REJECTED") or a["id"] in seen:
            continue
        inputs = task_docs[a["tasks"][0]["id"]]["input_values"]
        pa, photo = inputs.get("pedestrian_assignment_id", ""), inputs.get("photo_id", "")
        decided = pa in visited if handler == "visit" else (handler, pa, photo) in judged
        if decided or pa not in finished:
            found.add("missing", f"{handler} assignment {a['id']} ({pa} {photo}) has no row in answers.tsv")
        else:
            found.late_answers += 1


def _check_results(found: Findings, folder: Path, pedestrian: dict[str, Any],
                   statuses: dict[str, str]) -> dict[str, list[dict[str, str]]]:
    """Result rows: none twice, every link opens, every accepted assignment has its row."""
    rows: dict[str, list[dict[str, str]]] = {name: read_tsv(folder / "results" / name) for name in RESULT_TABLES}
    for name, table in rows.items():
        keyed = Counter((r["pedestrian_assignment_id"], r.get("bonus_field", "")) for r in table)
        if (extra := sum(n - 1 for n in keyed.values())) > 0:
            found.add("duplicates", f"{extra} repeated rows in {name}", extra)
        for r in table:
            # A link column X has its storage keys in X_keys (handlers.relevance.keys_column): not links.
            for url in (u for k, cell in r.items() if not k.endswith("_keys") for u in _links(cell or "")):
                if not _opens(url):
                    found.add("broken_links", f"{name}: link does not open: {url}")
    with_row = {r["pedestrian_assignment_id"] for name in ("main_tasks.tsv", "no_org.tsv") for r in rows[name]}
    for pa in pedestrian:
        if statuses.get(pa) == "ACCEPTED" and pa not in with_row:
            found.add("missing", f"accepted {pa} has no row in main_tasks.tsv or no_org.tsv")
    return rows


def _check_bonuses(found: Findings, db: Path, bonus_rows: list[dict[str, str]]) -> None:
    """One bonus per assignment, of the amount its bonus rows owe."""
    owed: dict[str, Decimal] = {}
    for r in bonus_rows:
        pa = r["pedestrian_assignment_id"]
        owed[pa] = owed.get(pa, Decimal(0)) + Decimal(r["bonus_amount"])
    bonuses = objects(db, "bonus")
    for assignment, n in Counter(b["assignment_id"] for b in bonuses).items():
        if n > 1:
            found.add("duplicates", f"{n} bonuses paid for {assignment}", n - 1)
    paid = {b["assignment_id"]: Decimal(str(b["amount"])) for b in bonuses}
    for assignment in set(paid) | set(owed):
        if assignment not in paid:
            found.add("missing", f"bonus of {owed[assignment]} owed to {assignment} was not paid")
        elif paid[assignment] != owed.get(assignment):
            found.add("wrong", f"bonus for {assignment}: paid {paid[assignment]}, rows say {owed.get(assignment)}")


def _opens(url: str) -> bool:
    parsed = urlparse(url)
    if parsed.scheme != "file":
        return False  # the soak and fault runs use the local store; other schemes are not checked here
    try:
        with open(unquote(parsed.path), "rb") as handle:
            return handle.read(3) == JPEG
    except OSError:
        return False


def outcome(folder: Path) -> dict[str, dict[str, Any]]:
    """Per organization: platform status, final decision, bonus paid, result rows (ids and times left out)."""
    db = folder / "emulator.sqlite"
    org_of = {pa: doc["org_id"] for pa, doc in truth(db, "assignment").items()}
    statuses = {a["id"]: a["status"] for a in objects(db, "assignment")}
    result: dict[str, dict[str, Any]] = {
        org: {"status": None, "decision": None, "bonus": "0", "rows": []} for org in truth(db, "org")
    }
    for pa, org in org_of.items():
        result[org]["status"] = statuses.get(pa)
    for r in read_tsv(folder / "logs" / "decisions.tsv"):
        if r["event"] in FINAL_EVENTS and r["pedestrian_assignment_id"] in org_of:
            result[org_of[r["pedestrian_assignment_id"]]]["decision"] = r["event"]
    for b in objects(db, "bonus"):
        if b["assignment_id"] in org_of:
            entry = result[org_of[b["assignment_id"]]]
            entry["bonus"] = str(Decimal(entry["bonus"]) + Decimal(str(b["amount"])))
    for name in RESULT_TABLES:
        for r in read_tsv(folder / "results" / name):
            org = org_of.get(r["pedestrian_assignment_id"])
            if org is None:
                continue
            # A link names a run-specific key; what must match is how many photos each field kept.
            kept = {k: (len(_links(v)) if (v or "").startswith("[") else v)
                    for k, v in r.items() if k not in RUN_SPECIFIC}
            result[org]["rows"].append([name, sorted(kept.items())])
    for entry in result.values():
        entry["rows"].sort()
    return result


def compare(run: dict[str, dict[str, Any]], reference: dict[str, dict[str, Any]]) -> list[str]:
    """Organizations whose outcome differs, each with what differs."""
    differ = []
    for org in sorted(set(run) | set(reference)):
        a, b = run.get(org), reference.get(org)
        if a != b:
            keys = sorted(k for k in set(a or {}) | set(b or {}) if (a or {}).get(k) != (b or {}).get(k))
            differ.append(f"{org}: {', '.join(keys)} differ")
    return differ
