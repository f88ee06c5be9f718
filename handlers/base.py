"""What every handler shares: the settings it reads, its result, and row builders.

Handlers are pure: ``handle(ledger, assignments, ..., now) -> Outcome``. They
mutate only the ledger they are given and return actions for the executor and
notes for the log; they never read the clock, the network or the disk.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Protocol

from engine.actions import Action, AppendRows
from handlers.state import Work

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


class RelevanceRules(ValidationRules, Protocol):
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
    def relevance(self) -> RelevanceRules: ...


@dataclass(frozen=True)
class Note:
    """A line for the handler's log (the observer writes it)."""

    level: int
    message: str


@dataclass
class Outcome:
    """What one handler call decided.

    Actions come in chains, one per pedestrian assignment: the executor runs a
    chain's actions in order (a visit task only after its photos are stored)
    and different chains concurrently, so one failing assignment holds up only
    its own chain.
    """

    chains: dict[str, list[Action]] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    decided: int = 0  # final decisions on pedestrian assignments (accept, reject, no_org)

    def add(self, chain: str, *actions: Action) -> None:
        self.chains.setdefault(chain, []).extend(actions)

    @property
    def actions(self) -> list[Action]:
        return [action for chain in self.chains.values() for action in chain]

    def merge(self, other: Outcome) -> None:
        for chain, actions in other.chains.items():
            self.add(chain, *actions)
        self.notes.extend(other.notes)
        self.decided += other.decided

    def note(self, level: int, message: str) -> None:
        self.notes.append(Note(level, message))

    def info(self, message: str) -> None:
        self.note(logging.INFO, message)

    def warning(self, message: str) -> None:
        self.note(logging.WARNING, message)


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
