"""The organizations a rehearsal decided differently from the emulator's truth, and why (the demo's summary).

A score says how many; a person learning the pipeline wants to know which and
why: what the crowd truly did (the simulated pedestrian's kind, the photos that
were bad and how) next to what the pipeline saw (its final decision and the
photos its checkers judged bad), with the command that shows the whole path.
Pure: the truth and the decision-log rows come in, lines go out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

#: Decision-log events that end an organization's path, or judge one of its photos bad.
FINAL = ("ACCEPT assignment", "REJECT assignment", "HOLD for a person")
BAD_IMAGE = "BAD image"


def decided_differently(
    truth: Mapping[str, Mapping[str, Any]], made: Mapping[str, str], decisions: Sequence[Mapping[str, str]],
) -> list[str]:
    """One block per assignment whose decision (accept, reject, no_org) is not the truth's expected one.

    ``truth``: the emulator's assignments by id; ``made``: the decision the run
    made per assignment (an assignment it did not decide counts as different);
    ``decisions``: the rows of decisions.tsv.
    """
    rows: dict[str, list[Mapping[str, str]]] = {}
    for row in decisions:
        rows.setdefault(row.get("pedestrian_assignment_id", ""), []).append(row)
    lines: list[str] = []
    for aid, expected in sorted(truth.items()):
        decided = made.get(aid, "undecided")
        if decided == expected.get("expected"):
            continue
        mine = rows.get(aid, [])
        name = next((f"{r['name']}, {r.get('address', '')}" for r in mine if r.get("name")), aid)
        lines.append(f"  {name}: expected {expected.get('expected')}, decided {decided}")
        lines.append(f"    truth: {_truth_reason(expected)}")
        lines.append(f"    pipeline: {_pipeline_reason(mine)}")
        lines.append(f"    the whole path: python pipeline.py trace {aid}")
    return lines


def _truth_reason(assignment: Mapping[str, Any]) -> str:
    """What the simulated pedestrian did: their kind, whether they visited, and the bad photos."""
    parts = [f"{assignment.get('kind', '?')} pedestrian"]
    if assignment.get("org_exists") is False:
        parts.append("the organization does not exist")
    if assignment.get("visited") is False:
        parts.append("never went there")
    bad = []
    for field, photos in sorted((assignment.get("photos") or {}).items()):
        for number, photo in enumerate(photos):
            if not photo.get("good", True):
                why = photo.get("quality") if photo.get("quality") not in (None, "good") else "not relevant"
                bad.append(f"{field}/{number} {why}")
    parts.append(f"bad photos: {', '.join(bad)}" if bad else "every photo good")
    return "; ".join(parts)


def _pipeline_reason(rows: Sequence[Mapping[str, str]]) -> str:
    """The final decision with its reason, and the photos the checkers judged bad."""
    final = [r for r in rows if r.get("event") in FINAL]
    if not final:
        return "no final decision yet"
    last = final[-1]
    text = f"{last.get('handler', '')} {last.get('event', '')}"
    if last.get("comment"):
        text += f" ({last['comment']})"
    bad = [r.get("comment", "") for r in rows if r.get("event") == BAD_IMAGE]
    return text + (f"; judged bad: {', '.join(bad)}" if bad else "; no photo judged bad")
