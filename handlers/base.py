"""What every handler shares: the settings it reads, its result, and row builders.

Handlers are pure: ``handle(ledger, assignments, ..., now) -> Outcome`` (the
engine's :class:`~engine.spec.Decision`). They
mutate only the ledger they are given and return actions for the executor and
notes for the log; they never read the clock, the network or the disk.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Literal, Protocol

from aggregation.classification import Method
from aggregation.evidence import Policy
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
    "pedestrian_assignment_id", "address", "group", "image_field", "url", "confidence",
)
HELD_COLUMNS = ("date_time", "pedestrian_assignment_id", "worker_id", "name", "address", "stage", "reason")


class PedestrianRules(Protocol):
    """The ``[PedestrianProject]`` settings the handlers read (read-only: frozen settings qualify)."""

    @property
    def pool_id(self) -> str: ...
    @property
    def org_fields(self) -> Sequence[str]: ...
    @property
    def extra_fields(self) -> Sequence[str]: ...
    @property
    def verdict_field(self) -> str: ...
    @property
    def verdict_ok(self) -> str: ...
    @property
    def verdict_no_org(self) -> str: ...
    @property
    def worker_coordinates_field(self) -> str: ...
    @property
    def comment_field(self) -> str: ...
    @property
    def main_fields(self) -> Sequence[str]: ...
    @property
    def required_fields(self) -> Sequence[str]: ...
    @property
    def bonus_fields(self) -> Sequence[str]: ...
    @property
    def bonus_flags(self) -> Sequence[str]: ...
    @property
    def bonus_flag_yes(self) -> str: ...
    @property
    def bonus_per_field(self) -> Decimal: ...
    @property
    def org_coordinates_field(self) -> str: ...
    @property
    def max_distance_m(self) -> float: ...
    @property
    def restrict_after_rejections(self) -> int: ...


class ValidationRules(Protocol):
    """One of the ``[Validation*]`` sections."""

    @property
    def pool_id(self) -> str: ...
    @property
    def overlap(self) -> int: ...
    @property
    def answer_field(self) -> str: ...
    @property
    def accept_label(self) -> str: ...
    @property
    def reject_label(self) -> str: ...
    @property
    def aggregation(self) -> Method: ...
    @property
    def default_skill(self) -> float: ...
    @property
    def reject_comment(self) -> str: ...
    @property
    def accept_comment(self) -> str: ...
    @property
    def section(self) -> str: ...
    @property
    def policy(self) -> Policy | None: ...
    @property
    def restrict_below(self) -> float | None: ...
    @property
    def restrict_after_controls(self) -> int: ...


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


@functools.lru_cache(maxsize=64)
def stamp(now: datetime) -> str:
    """The ``date_time`` text of TSV rows: UTC, seconds (a tick stamps every row with one ``now``)."""
    return now.strftime("%Y-%m-%d %H:%M:%S")


def decision_row(
    now: datetime, work: Work, handler: str, group: str, event: str, comment: str = ""
) -> dict[str, object]:
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
