"""The pedestrian pipeline's trace and waiting list: which tables tell an organization's path.

A unit is one pedestrian assignment (one organization visited), the
``pedestrian_assignment_id`` of every table. ``answers.tsv`` gives each
checker's answer (written when its task's verdict was reached, with the
checker's skill and the verdict's confidence) and, per task, the aggregate;
``decisions.tsv`` every decision with its reason (distance and photo checks
included); ``held.tsv``, ``no_org.tsv``, ``main_tasks.tsv`` and
``bonus_tasks.tsv`` where it ended. A checking task id or a checker's
assignment id finds its organization too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Mapping

from engine.trace import Entry, Row, Rows, TraceSpec, TraceTable
from handlers.state import Ledger

NAMED = ("name", "address")


def label(row: Row) -> str:
    """``name, address`` (answers carry the address only)."""
    return ", ".join(row[c] for c in NAMED if row.get(c))


def _photo(row: Row) -> str:
    field = row.get("image_field", "")
    return f" ({field})" if field else ""


def _answers(rows: Rows) -> list[Entry]:
    """Every answer, then per task its aggregate: the verdict, its confidence and the answers behind it."""
    entries: list[Entry] = []
    tasks: dict[tuple[str, str], list[Row]] = {}
    for row in rows:
        entries.append(Entry(
            row.get("date_time", ""), "answer",
            f"{row.get('handler', '')} task {row.get('task', '')}{_photo(row)}: {row.get('label', '')!r} by worker "
            f"{row.get('worker', '')} (skill {row.get('skill', '') or '?'}, assignment {row.get('assignment_id', '')})"
            f"; verdict confidence {row.get('confidence', '') or '?'}"))
        tasks.setdefault((row.get("handler", ""), row.get("task", "")), []).append(row)
    for (handler, task), answers in tasks.items():
        last = answers[-1]
        votes = ", ".join(f"{n} {label!r}" for label, n in Counter(a.get("label", "") for a in answers).items())
        entries.append(Entry(
            last.get("date_time", ""), "aggregate",
            f"{handler} task {task}{_photo(last)}: verdict {last.get('result', '')!r}, confidence "
            f"{last.get('confidence', '') or '?'} from {len(answers)} answers ({votes})"))
    return entries


def _group(row: Row) -> str:
    part = row.get("group", "").rpartition("/")[2]
    return "" if part in ("", "main") else f" [{part}]"


def _decisions(rows: Rows) -> list[Entry]:
    return [
        Entry(row.get("date_time", ""), "decision",
              f"{row.get('handler', '')}: {row.get('event', '')}{_group(row)}"
              + (f": {row['comment']}" if row.get("comment") else ""))
        for row in rows
    ]


def _held(rows: Rows) -> list[Entry]:
    return [Entry(row.get("date_time", ""), "held", f"held for a person at {row.get('stage', '')}: "
                  f"{row.get('reason', '')}") for row in rows]


def _result(table: str, time_column: str) -> TraceTable:
    def entries(rows: Rows) -> list[Entry]:
        return [Entry(row.get(time_column, ""), "result",
                      f"row in {table}.tsv (worker {row.get('worker_id', '')}"
                      + (f", bonus field {row['bonus_field']} {row.get('bonus_amount', '')}" if row.get("bonus_field")
                         else "")
                      + (f", comment {row['comment']!r}" if row.get("comment") else "") + ")")
                for row in rows]

    return TraceTable(table, "pedestrian_assignment_id", entries, text_columns=NAMED)


def _links(cell: str) -> list[str]:
    """The links of a result cell (a JSON list); nothing for any other text."""
    if not cell.startswith("["):
        return []
    try:
        value = json.loads(cell)
    except ValueError:
        return []
    return [v for v in value if isinstance(v, str) and "://" in v] if isinstance(value, list) else []


def photos(rows: Mapping[str, Rows]) -> list[tuple[str, str]]:
    """Links shown to checkers (answers) and kept as results (main and bonus tables), with their field."""
    found: list[tuple[str, str]] = []
    for row in rows.get("answers", ()):
        if row.get("url"):
            found.append((f"{row.get('image_field', '') or 'photo'} (checked)", row["url"]))
    for row in rows.get("main_tasks", ()):
        for column, cell in row.items():
            found.extend((f"{column} (result)", link) for link in _links(cell))
    for row in rows.get("bonus_tasks", ()):
        found.extend((f"{row.get('bonus_field', '')} (bonus result)", link) for link in _links(row.get("links", "")))
    return found


TRACE = TraceSpec(
    tables=(
        TraceTable("answers", "pedestrian_assignment_id", _answers, id_columns=("task", "assignment_id"),
                   text_columns=("address",)),
        TraceTable("decisions", "pedestrian_assignment_id", _decisions, text_columns=NAMED),
        TraceTable("held", "pedestrian_assignment_id", _held, text_columns=NAMED),
        _result("no_org", "decided"),
        _result("main_tasks", "accepted"),
        _result("bonus_tasks", "accepted"),
    ),
    label=label,
    unit="pedestrian assignment",
    photos=photos,
    accepted="main_tasks",
)


def waiting(ledger: Ledger) -> list[dict[str, object]]:
    """Each undecided organization: its stage, since when it waits (submitted), answers so far at that stage."""
    answers: Counter[tuple[str, str]] = Counter()
    for kind, tasks in ledger.ballots.items():
        for ballots in tasks.values():
            for ballot in ballots:
                answers[(kind, ballot.pedestrian_assignment_id)] += 1
    return [
        {"id": aid, "label": ", ".join(p for p in (work.name, work.address) if p), "stage": work.stage,
         "since": work.submitted, "answers": answers[(work.stage, aid)]}
        for aid, work in ledger.works.items()
    ]
