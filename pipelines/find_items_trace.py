"""The find-items pipeline's trace: one found link's path (``pipeline.py trace``).

A unit is one find_items assignment (a worker's link for an image): the
checkers' answers on it (``answers.tsv``, subject = that assignment), its
decisions (``decisions.tsv``) and its row in ``verified_links.tsv`` with the
verdict's confidence. A verification task id or a checker's assignment id
finds it too; other text is looked for in the image and the link.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping

from engine.trace import Entry, Row, Rows, TraceSpec, TraceTable


def label(row: Row) -> str:
    """``link for image``, from whichever of the two a row has."""
    link, image = row.get("link", ""), row.get("image", "")
    return f"{link} for {image}" if link and image else link or image


def _answers(rows: Rows) -> list[Entry]:
    entries = [Entry(r.get("date_time", ""), "answer",
                     f"{r.get('pool', '')} task {r.get('task', '')}: {r.get('label', '')!r} by worker "
                     f"{r.get('worker', '')} (skill {r.get('skill', '') or '?'}, assignment "
                     f"{r.get('assignment_id', '')})") for r in rows]
    tasks: dict[str, list[Row]] = {}
    for row in rows:
        tasks.setdefault(row.get("task", ""), []).append(row)
    for task, answers in tasks.items():
        votes = ", ".join(f"{n} {v!r}" for v, n in Counter(a.get("label", "") for a in answers).items())
        last = answers[-1]
        entries.append(Entry(last.get("date_time", ""), "aggregate",
                             f"{last.get('pool', '')} task {task}: verdict {last.get('result', '')!r} from "
                             f"{len(answers)} answers ({votes})"))
    return entries


def _decisions(rows: Rows) -> list[Entry]:
    return [Entry(r.get("date_time", ""), "decision", f"{r.get('pool', '')}: {r.get('event', '')}"
                  + (f": {r['comment']}" if r.get("comment") else "")) for r in rows]


def _verified(rows: Rows) -> list[Entry]:
    return [Entry("", "result", f"row in verified_links.tsv: verdict {r.get('verdict', '')!r}, confidence "
                  f"{r.get('confidence', '') or '?'} (worker {r.get('worker', '')})") for r in rows]


def photos(rows: Mapping[str, Rows]) -> list[tuple[str, str]]:
    """The image the worker searched for and the link they found."""
    found: list[tuple[str, str]] = []
    for row in (*rows.get("decisions", ()), *rows.get("verified_links", ())):
        if row.get("image"):
            found.append(("image", row["image"]))
        if row.get("link"):
            found.append(("found link", row["link"]))
    return found


TRACE = TraceSpec(
    tables=(
        TraceTable("answers", "subject", _answers, id_columns=("task", "assignment_id")),
        TraceTable("decisions", "assignment_id", _decisions, text_columns=("image", "link")),
        TraceTable("verified_links", "assignment_id", _verified, text_columns=("image", "link")),
    ),
    label=label,
    unit="find_items assignment",
    photos=photos,
)
