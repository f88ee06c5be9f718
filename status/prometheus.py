"""The status snapshot in Prometheus' text exposition format (version 0.0.4).

Every counter of ``/status`` is here under ``pipeline_*``, labelled by pool
(handler name) where it is per pool. Money is exported as a float gauge: it is
for graphs and alerts, the exact Decimal stays in ``/status``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels: Mapping[str, str]) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{k}="{_escape(str(v))}"' for k, v in labels.items()) + "}"


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def metric(self, name: str, kind: str, help_text: str, samples: Iterable[tuple[Mapping[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            self.lines.append(f"{name}{_labels(labels)} {_number(value)}")


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _epoch(text: str | None) -> float:
    if text is None:
        return 0.0
    return datetime.fromisoformat(text.rstrip("Z") + "+00:00").timestamp()


def render(snapshot: Mapping[str, Any]) -> str:
    """The ``/metrics`` body for one snapshot."""
    out = _Out()
    pools: Mapping[str, Mapping[str, Any]] = snapshot["pools"]

    def per_pool(key: str) -> list[tuple[Mapping[str, str], float]]:
        return [({"pool": name, "pool_id": p["pool_id"]}, float(p[key])) for name, p in pools.items()]

    out.metric("pipeline_ticks_total", "counter", "Ticks run.", [({}, snapshot["ticks"])])
    last = snapshot["last_tick"] or {}
    out.metric("pipeline_last_tick_timestamp_seconds", "gauge", "When the last tick started (0: none yet).",
               [({}, _epoch(last.get("at")))])
    out.metric("pipeline_last_tick_duration_seconds", "gauge", "How long the last tick took.",
               [({}, float(last.get("duration_seconds", 0.0)))])
    out.metric("pipeline_stale", "gauge", "1 when the last tick is older than three periods (see /health).",
               [({}, 1.0 if snapshot.get("stale") else 0.0)])
    out.metric("pipeline_next_tick_timestamp_seconds", "gauge", "When the next tick is due (0: not scheduled).",
               [({}, _epoch(snapshot["next_tick"]))])
    out.metric("pipeline_assignments_fetched_total", "counter", "Assignments fetched per pool.", per_pool("fetched"))
    out.metric("pipeline_answers_waiting", "gauge", "Answers waiting until their task has its overlap.",
               per_pool("answers_waiting"))
    out.metric("pipeline_groups_waiting", "gauge", "Photo groups waiting for this pool's verdict.",
               per_pool("groups_waiting"))
    out.metric("pipeline_errors_total", "counter", "Fetch, handler and effect errors per pool.", per_pool("errors"))
    out.metric("pipeline_pending_effects", "gauge", "Journal effects still pending, by the pool they act on.",
               [*per_pool("pending_effects"), ({"pool": "files", "pool_id": ""}, snapshot["pending_effects"]["files"])])
    out.metric("pipeline_near_auto_accept", "gauge",
               "Undecided assignments close to Toloka's auto-accept deadline.",
               [({}, len(snapshot["near_auto_accept"]))])
    out.metric(
        "pipeline_decisions_total", "counter", "Decision rows written, per pool and event.",
        [({"pool": name, "event": event}, n) for name, p in pools.items() for event, n in p["decisions"].items()],
    )
    out.metric("pipeline_funnel_total", "counter", "Units of work that entered each funnel stage.",
               [({"stage": f["stage"]}, f["count"]) for f in snapshot["funnel"]])
    out.metric("pipeline_under_review", "gauge", "Units of work not decided yet.", [({}, snapshot["under_review"])])
    wait = snapshot.get("waiting") or {}
    out.metric("pipeline_waiting", "gauge", "Units of work waiting for a decision.", [({}, wait.get("count", 0))])
    out.metric("pipeline_oldest_waiting_timestamp_seconds", "gauge",
               "Since when the oldest waiting unit waits (0: none waits).", [({}, _epoch(wait.get("oldest_since")))])
    out.metric("pipeline_stuck", "gauge", "1 when the oldest waits longer than [Status] stuck_after_hours.",
               [({}, 1.0 if wait.get("stuck") else 0.0)])
    m = snapshot["money"]
    out.metric("pipeline_rewards_spent", "gauge", "Rewards of accepted assignments, per pool.", [
        ({"pool": name, "pool_id": p["pool_id"]}, float(p["rewards"])) for name, p in pools.items()
    ])
    out.metric("pipeline_bonuses_spent", "gauge", "Bonuses paid.", [({}, float(m["bonuses"]))])
    out.metric("pipeline_bonuses_paid_total", "counter", "Bonuses paid (count).", [({}, m["bonuses_paid"])])
    out.metric("pipeline_money_spent", "gauge", "Rewards plus bonuses.", [({}, float(m["spent"]))])
    if m["max_spend"] is not None:
        out.metric("pipeline_max_spend", "gauge", "[Pipeline] max_spend.", [({}, float(m["max_spend"]))])
    out.metric("pipeline_over_budget", "gauge", "1 when max_spend is reached and paid effects are held.",
               [({}, 1.0 if m["over_budget"] else 0.0)])
    out.metric("pipeline_held_effects", "gauge", "Paid effects held back by max_spend.", [
        ({"kind": "tasks"}, m["held_tasks"]), ({"kind": "bonuses"}, m["held_bonuses"]),
    ])
    store = snapshot["photo_store"]
    out.metric("pipeline_photo_store_ok", "gauge",
               "1 while photo links open (the store probe's link serves), 0 during a photo store outage.",
               [({}, 1.0 if store["ok"] else 0.0)])
    return "\n".join(out.lines) + "\n"
