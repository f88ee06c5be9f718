"""Builders for handler tests: settings, assignments as the API serves them, answer rounds."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from aggregation.evidence import Policy
from engine.actions import Action, AppendRows, CreateTasks
from toloka_client.records import Assignment

NOW = datetime(2026, 11, 22, 12, 0, 0)
_ids = itertools.count(1)


@dataclass(frozen=True)
class Pedestrian:
    pool_id: str = "1"
    org_fields: tuple[str, ...] = ("name", "address", "coordinates")
    extra_fields: tuple[str, ...] = ("segment",)
    verdict_field: str = "verdict"
    verdict_ok: str = "ok"
    verdict_no_org: str = "no_org"
    worker_coordinates_field: str = "worker_coordinates"
    comment_field: str = "comment"
    main_fields: tuple[str, ...] = ("imgs_facade", "name_business", "hoo_business", "imgs_name_address")
    required_fields: tuple[str, ...] = ("imgs_facade", "name_business", "imgs_name_address")
    bonus_fields: tuple[str, ...] = ("imgs_interior", "imgs_menu")
    bonus_flags: tuple[str, ...] = ("can_take_interior", "can_take_menu")
    bonus_flag_yes: str = "yes"
    bonus_per_field: Decimal = Decimal("0.05")
    org_coordinates_field: str = "coordinates"
    max_distance_m: float = 500.0
    restrict_after_rejections: int = 0


@dataclass(frozen=True)
class Check:
    pool_id: str
    accept_label: str
    reject_label: str
    reject_comment: str
    overlap: int = 3
    answer_field: str = "result"
    aggregation: str = "MajorityVote"
    default_skill: float = 50.0
    accept_comment: str = "Good job"
    section: str = "ValidationCheck"
    policy: Policy | None = None
    restrict_below: float | None = None
    restrict_after_controls: int = 10


@dataclass(frozen=True)
class Rules:
    pedestrian: Pedestrian = field(default_factory=Pedestrian)
    visit: Check = Check("2", "yes", "no", "Incorrect object")
    quality: Check = Check("3", "ok", "bad", "Low quality photos")
    relevance: Check = Check("4", "relevant", "not_relevant", "Not relevant photos")


RULES = Rules()


def pedestrian_assignment(
    assignment_id: str = "0000000001--pa1",
    *,
    verdict: str = "ok",
    photos: dict[str, Any] | None = None,
    flags: dict[str, str] | None = None,
    org: dict[str, str] | None = None,
    user_id: str = "walker",
    submitted: datetime = NOW - timedelta(hours=1),
    comment: str = "all fine",
) -> Assignment:
    if photos is None:
        photos = {"imgs_facade": ["f0", "f1"], "name_business": "n0", "hoo_business": [], "imgs_name_address": ["a0"],
                  "imgs_interior": ["i0"], "imgs_menu": ["m0"]}
    output: dict[str, Any] = {"verdict": verdict, "worker_coordinates": "55.1,37.2", "comment": comment, **photos}
    output.update(flags if flags is not None else {"can_take_interior": "yes", "can_take_menu": "no"})
    return Assignment.from_json(
        {
            "id": assignment_id,
            "pool_id": "1",
            "user_id": user_id,
            "status": "SUBMITTED",
            "submitted": submitted.isoformat(timespec="milliseconds"),
            "tasks": [{"id": f"t-{assignment_id}", "pool_id": "1", "input_values": org or {
                "name": "Cafe Tab\tName", "address": "Main st. 1", "coordinates": "55.1,37.2", "segment": "cafe"}}],
            "solutions": [{"output_values": output}],
        }
    )


def answer(pool_id: str, worker: str, pairs: list[tuple[dict[str, Any], str | None]], *, golden: bool = False,
           answer_field: str = "result", assignment_id: str | None = None) -> Assignment:
    """A verification assignment: ``pairs`` of (task input with its id under "_id", label)."""
    tasks, solutions = [], []
    for values, label in pairs:
        task: dict[str, Any] = {"id": values["_id"], "pool_id": pool_id,
                                "input_values": {k: v for k, v in values.items() if k != "_id"}}
        if golden:
            task["known_solutions"] = [{"output_values": {answer_field: label}, "correctness_weight": 1}]
        tasks.append(task)
        solutions.append({"output_values": {answer_field: label}})
    return Assignment.from_json(
        {"id": assignment_id or f"{pool_id}--a{next(_ids):06d}", "pool_id": pool_id, "user_id": worker,
         "status": "ACCEPTED", "tasks": tasks, "solutions": solutions}
    )


def created_tasks(actions: list[Action], pool_id: str) -> list[dict[str, Any]]:
    """Task inputs the actions create in ``pool_id``, each given a deterministic test id."""
    out = []
    for action in actions:
        if isinstance(action, CreateTasks) and action.pool_id == pool_id:
            for n, spec in enumerate(action.tasks):
                out.append({"_id": f"{pool_id}:{action.operation_id[:8]}:{n}", **spec.input_values})
    return out


def rows(actions: list[Action], table: str) -> list[dict[str, object]]:
    return [dict(r) for a in actions if isinstance(a, AppendRows) and a.table == table for r in a.rows]


def events(actions: list[Action]) -> list[str]:
    return [str(r["event"]) for r in rows(actions, "decisions")]
