"""What every handler shares: the settings it reads, its result, and row builders.

Handlers are pure: ``handle(ledger, assignments, ..., now) -> Outcome`` (the
engine's :class:`~engine.spec.Decision`). They
mutate only the ledger they are given and return actions for the executor and
notes for the log; they never read the clock, the network or the disk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from engine.actions import AppendRows, SetStatus
from engine.spec import Decision
from handlers import flow
from handlers.state import Work

# The handlers' name for what they return: the engine's Decision.
Outcome = Decision

DECISION_COLUMNS = (
    "date_time", "name", "address", "pedestrian_assignment_id", "handler", "group", "event", "comment",
)
ANSWER_COLUMNS = (
    "date_time", "handler", "pool_id", "task", "assignment_id", "worker", "label", "skill", "result",
    "pedestrian_assignment_id", "address", "group", "image_field", "url",
)


class PedestrianRules(Protocol):
    """The ``[PedestrianProject]`` settings the handlers read."""

    pool_id: str
    org_fields: Sequence[str]
    extra_fields: Sequence[str]
    verdict_field: str
    verdict_ok: str
    verdict_no_org: str
    worker_coordinates_field: str
    comment_field: str
    main_fields: Sequence[str]
    required_fields: Sequence[str]
    bonus_fields: Sequence[str]
    bonus_flags: Sequence[str]
    bonus_flag_yes: str
    bonus_per_field: Decimal


class ValidationRules(Protocol):
    """One of the ``[Validation*]`` sections."""

    pool_id: str
    overlap: int
    answer_field: str
    accept_label: str
    reject_label: str
    aggregation: str
    default_skill: float
    reject_comment: str
    accept_comment: str


class Rules(Protocol):
    """All four pools' settings, as the handlers see them."""

    @property
    def pedestrian(self) -> PedestrianRules: ...
    @property
    def visit(self) -> ValidationRules: ...
    @property
    def quality(self) -> ValidationRules: ...
    @property
    def relevance(self) -> ValidationRules: ...


def stamp(now: datetime) -> str:
    """The ``date_time`` text of TSV rows: UTC, seconds."""
    return now.strftime("%Y-%m-%d %H:%M:%S")


def decision_row(now: datetime, work: Work, handler: str, group: str, event: str, comment: str = "") -> dict[str, object]:
    return {
        "date_time": stamp(now),
        "name": work.name,
        "address": work.address,
        "pedestrian_assignment_id": work.assignment_id,
        "handler": handler,
        "group": group,
        "event": event,
        "comment": comment,
    }


def decisions(row_key: str, rows: Sequence[Mapping[str, object]]) -> AppendRows:
    """Rows for ``logs/decisions.tsv``, appended once under ``row_key``."""
    return AppendRows(table="decisions", row_key=row_key, rows=tuple(rows))


def set_status(
    now: datetime, work: Work, handler: str, group: str, status: Literal["ACCEPTED", "REJECTED"], comment: str
) -> SetStatus:
    """Accept or reject a pedestrian assignment; if Toloka accepted it first, log that instead."""
    overtaken = decisions(
        f"{work.assignment_id}/auto-accepted",
        [decision_row(now, work, handler, group, flow.AUTO_ACCEPTED, f"wanted {status}: {comment}")],
    )
    return SetStatus(work.assignment_id, status, comment, if_overtaken=overtaken)
