"""The one quality-control rule the emulator carries out: more overlap when work is assessed.

Toloka runs a pool's ``quality_control.configs`` on its side. The emulator keeps every config
as given and carries out only the ``AssignmentsAssessment`` + ``ChangeOverlap`` pair, which a
requester uses to get a rejected task done again by someone else (toloka-kit's streaming
example). toloka-kit 1.2.3 sends it as::

    {"collector_config": {"type": "ASSIGNMENTS_ASSESSMENT"},
     "rules": [{"conditions": [{"key": "assessment_event", "operator": "EQ", "value": "REJECT"}],
                "action": {"type": "CHANGE_OVERLAP",
                           "parameters": {"delta": 1, "open_pool": true}}}]}

(``collector_config`` may also carry a ``uuid``). A rule fires when *every* one of its
conditions holds; only ``assessment_event`` with ``EQ`` can be evaluated here, so a rule with
any other condition (pending/accepted/rejected counts) never fires. Everything else in
``quality_control`` is kept and ignored, as before.

Pure functions: the store applies what :func:`overlap_changes` returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

ASSIGNMENTS_ASSESSMENT = "ASSIGNMENTS_ASSESSMENT"
CHANGE_OVERLAP = "CHANGE_OVERLAP"
ASSESSMENT_EVENT_KEY = "assessment_event"

#: (status before, status after) of a requester's review -> the AssessmentEvent it raises.
ASSESSMENT_EVENTS: dict[tuple[str, str], str] = {
    ("SUBMITTED", "ACCEPTED"): "ACCEPT",
    ("SUBMITTED", "REJECTED"): "REJECT",
    ("REJECTED", "ACCEPTED"): "ACCEPT_AFTER_REJECT",
}


@dataclass(frozen=True)
class OverlapChange:
    """What one fired ``CHANGE_OVERLAP`` rule asks for: ``delta`` more overlap on the
    assessed assignment's tasks, and whether to open the pool if it is closed."""

    delta: int
    open_pool: bool


def assessment_event(before: str, after: str) -> str | None:
    """The AssessmentEvent of a status change (None for a change that is not a review)."""
    return ASSESSMENT_EVENTS.get((before, after))


def _condition_holds(condition: object, event: str) -> bool:
    if not isinstance(condition, Mapping):
        return False
    return (condition.get("key") == ASSESSMENT_EVENT_KEY and condition.get("operator") == "EQ"
            and condition.get("value") == event)


def _change(action: object) -> OverlapChange | None:
    if not isinstance(action, Mapping) or action.get("type") != CHANGE_OVERLAP:
        return None
    params = action.get("parameters")
    if not isinstance(params, Mapping):
        return None
    delta = params.get("delta")
    if isinstance(delta, bool) or not isinstance(delta, int):
        return None
    return OverlapChange(delta=delta, open_pool=params.get("open_pool") is True)


def overlap_changes(quality_control: object, event: str | None) -> list[OverlapChange]:
    """The ``CHANGE_OVERLAP`` actions of a pool's ``quality_control`` that fire on ``event``
    (``REJECT``, ``ACCEPT`` or ``ACCEPT_AFTER_REJECT``), in config and rule order.

    Malformed parts (not objects, unknown collector or action types, a non-integer delta)
    are skipped, never raised: the API stores a pool's settings as given.
    """
    if event is None or not isinstance(quality_control, Mapping):
        return []
    configs = quality_control.get("configs")
    if not isinstance(configs, list):
        return []
    fired: list[OverlapChange] = []
    for config in configs:
        if not isinstance(config, Mapping):
            continue
        collector: Any = config.get("collector_config")
        if not isinstance(collector, Mapping) or collector.get("type") != ASSIGNMENTS_ASSESSMENT:
            continue
        rules = config.get("rules")
        for rule in rules if isinstance(rules, list) else ():
            if not isinstance(rule, Mapping):
                continue
            conditions = rule.get("conditions")
            if not isinstance(conditions, list) or not conditions:
                continue
            if not all(_condition_holds(c, event) for c in conditions):
                continue
            change = _change(rule.get("action"))
            if change is not None:
                fired.append(change)
    return fired


def reopen_on_reject_config(delta: int = 1, open_pool: bool = True) -> dict[str, Any]:
    """The config toloka-kit sends for "on REJECT, ChangeOverlap(delta, open_pool)"; the
    emulator's own find_items pool carries it."""
    return {
        "collector_config": {"type": ASSIGNMENTS_ASSESSMENT},
        "rules": [{
            "conditions": [{"key": ASSESSMENT_EVENT_KEY, "operator": "EQ", "value": "REJECT"}],
            "action": {"type": CHANGE_OVERLAP, "parameters": {"delta": delta, "open_pool": open_pool}},
        }],
    }
