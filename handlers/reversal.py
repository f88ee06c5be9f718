"""An operator's reversal of a rejection: the actions that accept the work after all.

``python pipeline.py reverse ASSIGNMENT --accept`` undoes a rejection a person
judges to be a mistake (Toloka allows REJECTED -> ACCEPTED). This module only
decides what that means, purely, from the assignment as Toloka keeps it (the
daemon forgot the work when it rejected it):

- **a pedestrian assignment** is accepted as it was submitted, as if every
  check had passed: each photo is stored again if its ``tmp/`` copy is gone
  (from the attachment), copied to ``main/`` and ``main_bonus/``, the
  ``main_tasks.tsv`` and ``bonus_tasks.tsv`` rows are written with links and
  storage keys, and the bonus is paid (``bonus_per_field`` per bonus field
  with photos, as the relevance check pays it, under the same operation id);
  work whose verdict said the organization does not exist gets its
  ``no_org.tsv`` row and no bonus. The operator vouches for the whole work:
  photos the crowd judged bad are not left out (leaving them out would leave
  a required field empty, the very reason of most rejections).
- **a checker's assignment** (visit, quality, relevance) is only accepted:
  its answer joins the aggregation if its task is still open (the daemon
  reads accepted work), and no bonus is owed.

Either way ``decisions.tsv`` gets a row ``REVERSED by an operator`` saying
who, when and why; a pedestrian work also gets the final ``ACCEPT assignment``
row of the pool whose acceptance produces the same results (relevance for
``main_tasks``, visit for ``no_org``), so the report and ``trace`` show it
accepted, and its ``PAY bonus`` row.

Order: photos first (a photo that cannot be fetched stops the reversal before
anything visible changed), then the status, then rows and the bonus.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from engine.actions import Action, SetStatus, StorePhoto
from handlers import flow, relevance, visit
from handlers.base import DECISION_COLUMNS, Rules, decision_row, decisions, stamp
from handlers.pedestrian import Malformed, read_work
from handlers.state import MAIN
from toloka_client.records import Assignment

#: The checking pools: their reversal accepts the assignment and logs it, nothing more.
CHECKING_POOLS = ("visit", "quality", "relevance")


class CannotReverse(ValueError):
    """The assignment cannot be reversed; the message says why, in one line."""


@dataclass(frozen=True)
class Operator:
    """Who reverses, why, and what the worker is told (Toloka's public comment)."""

    name: str
    reason: str
    comment: str


@dataclass(frozen=True)
class Reversal:
    """The actions of one reversal, in the order they must run, and a line saying what they do."""

    assignment_id: str
    actions: tuple[Action, ...]
    summary: str


def plan(assignment: Assignment, pool: str, rules: Rules, operator: Operator, now: datetime) -> Reversal:
    """The actions that accept a REJECTED ``assignment`` of the pipeline's pool ``pool``.

    Raises :class:`CannotReverse` when a pedestrian assignment cannot be read.
    """
    aid = assignment.id or ""
    was = f"was rejected: {assignment.public_comment}" if assignment.public_comment else "was rejected"
    why = f"by {operator.name}: {operator.reason} ({was})"
    accept = SetStatus(aid, "ACCEPTED", operator.comment)
    if pool in CHECKING_POOLS:
        row = _checker_row(assignment, pool, why, now)
        return Reversal(aid, (accept, decisions(f"{aid}/reversed", [row])),
                        f"accept checker assignment {aid} of pool {pool}; a decision row")
    if pool != "pedestrian":
        raise CannotReverse(f"assignment {aid} is in pool {pool}, which reverse does not know")
    try:
        work = read_work(assignment, rules.pedestrian)
    except Malformed as exc:
        raise CannotReverse(f"pedestrian assignment {aid} cannot be read: {exc}") from None
    group = work.group_id(MAIN)
    photos = [p for g in work.groups.values() for p in g.photos]
    fetch = [StorePhoto(p.attachment_id, p.key) for p in photos]  # skipped where tmp/ still has it
    rows = [decision_row(now, work, "pedestrian", group, flow.REVERSED, why)]
    actions: list[Action]
    if work.verdict == rules.pedestrian.verdict_no_org:
        rows.append(decision_row(now, work, visit.HANDLER, group, flow.ACCEPT, "no_org; reversed by an operator"))
        actions = [*fetch, accept, visit.no_org_row(work, rules.pedestrian, now)]
        summary = f"accept {aid} (the organization does not exist); a row in no_org"
    else:
        bonus_groups = [(name, g.photos) for name, g in work.groups.items() if name != MAIN]
        published = relevance.publish(work, rules.pedestrian, now, work.groups[MAIN].photos, bonus_groups)
        rows.append(decision_row(now, work, relevance.HANDLER, group, flow.ACCEPT, "reversed by an operator"))
        actions = [*fetch, *published.copies, accept, published.main_row]
        summary = f"accept {aid}; {len(photos)} photos published; a row in main_tasks"
        if published.bonus is not None and published.bonus_rows is not None:
            actions += [published.bonus_rows, published.bonus]
            fields = ", ".join(published.bonus_fields)
            rows.append(decision_row(now, work, relevance.HANDLER, group, flow.PAY_BONUS,
                                     f"{published.bonus.amount} for {fields}"))
            summary += f" and bonus_tasks; bonus {published.bonus.amount} ({fields})"
    actions.append(decisions(f"{aid}/reversed", rows))
    return Reversal(aid, tuple(actions), summary)


def _checker_row(assignment: Assignment, pool: str, why: str, now: datetime) -> dict[str, object]:
    """The decision row of a checker's reversed assignment, named after the work it checked."""
    task = assignment.tasks[0].input_values if assignment.tasks else {}
    row: dict[str, object] = dict.fromkeys(DECISION_COLUMNS, "")
    row.update(
        date_time=stamp(now),
        name=_text(task.get("name")),
        address=_text(task.get("address")),
        pedestrian_assignment_id=_text(task.get("pedestrian_assignment_id")),
        handler=pool,
        group=_text(task.get("group")),
        event=flow.REVERSED,
        comment=f"checker assignment {assignment.id} of worker {assignment.user_id} accepted {why}",
    )
    return row


def _text(value: object) -> str:
    return "" if value is None else str(value)
