"""One plain, JSON-ready picture of the engine, taken on the event loop.

The status server (``status/``) calls the snapshot function it was given inside
its request handler, on the daemon's own event loop, so it sees a consistent state between two awaits
of the tick and never blocks: it reads memory only (the journal's pending
effects as of the last checkpoint, not the journal file or its lock).
Money stays :class:`~decimal.Decimal` and is written as a string.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

from engine import reviews as review_rules
from engine.accounting import PoolStats
from engine.actions import CreateTasks, PayBonus
from engine.spec import DecisionLog, Outage
from engine.ticker import Engine, Event
from engine.trace import tail_rows

#: The status shows this many workers (worst first); logs/workers.tsv has them all.
WORKERS_SHOWN = 30
#: The status lists this many units of work that wait (oldest first); ``count`` covers them all.
WAITING_SHOWN = 40

#: The daemon is ``stale`` once its last tick (or its start, before the first) is older than this many periods.
STALE_PERIODS = 3


def stamp(value: datetime | None) -> str | None:
    """ISO 8601 UTC text (naive UTC datetimes in, ``...Z`` out)."""
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def health(last_tick_at: datetime | None, started_at: datetime, period_s: float, now: datetime) -> str:
    """``ok``, ``starting`` (no tick yet) or ``stale`` (nothing ticked for :data:`STALE_PERIODS` periods).

    A daemon that is alive but stuck (a tick that never ends, a start-up that
    hangs) still answers HTTP, so the age of the last tick is what a health
    check must look at.
    """
    since = last_tick_at if last_tick_at is not None else started_at
    if now - since > timedelta(seconds=STALE_PERIODS * period_s):
        return "stale"
    return "ok" if last_tick_at is not None else "starting"


def take_snapshot(engine: Engine[Any, Any], now: datetime) -> dict[str, Any]:
    """The whole status: ticks, per-pool counters, funnel, money, the photo store, recent decisions and errors."""
    stats = engine.state.stats
    spec = engine.spec
    pools = engine.settings.pools()
    pending = engine.state.journal.pending  # as of the last checkpoint: memory only, no lock
    pending_by_pool = Counter(engine.pool_acted_on(effect.action) for effect in pending)
    warning = timedelta(hours=engine.settings.pipeline.auto_accept_warning_hours)
    near = review_rules.near_deadline(engine.state.reviews.values(), engine.auto_accept, warning, now)
    near_by_pool = Counter(review.pool for _, review in near)
    gauges = spec.gauges(engine.state.state)
    limit = engine.settings.pipeline.max_spend
    last = engine.last_tick
    period = engine.settings.pipeline.period_s
    state = health(engine.last_tick_at, engine.started_at, period, now)
    return {
        "pipeline": spec.name,
        "now": stamp(now),
        "health": state,
        "stale": state == "stale",
        "stale_after_seconds": STALE_PERIODS * period,
        "period_seconds": period,
        "ticks": stats.ticks,
        "last_tick": None if last is None else {
            "at": stamp(engine.last_tick_at),
            "fetched": last.fetched,
            "decided": last.decided,
            "created": last.created,
            "existed": last.existed,
            "errors": last.errors,
            "pending": last.pending,
            "held": last.held,
            "duration_seconds": round(last.duration_s, 3),
        },
        "next_tick": stamp(engine.next_tick_at),
        "pools": {
            name: _pool(pool_id, engine.pool_status.get(pool_id), stats.pools.get(name, PoolStats()),
                        gauges.get(name, {}), pending_by_pool[name], near_by_pool[name])
            for name, pool_id in pools.items()
        },
        "under_review": engine.in_progress,
        "held_for_a_person": spec.held_for_a_person(engine.state.state),
        "pending_effects": {
            "total": len(pending),
            "by_kind": dict(Counter(type(effect.action).__name__ for effect in pending)),
            "files": pending_by_pool["files"],
        },
        "near_auto_accept": [
            {"assignment_id": r.assignment_id, "pool": r.pool, "label": r.label, "deadline": stamp(due)}
            for due, r in near
        ],
        "money": {
            "rewards": money(stats.reward_money),
            "bonuses": money(stats.bonus_money),
            "spent": money(stats.spent),
            "bonuses_paid": stats.bonuses_paid,
            "max_spend": money(limit),
            "over_budget": engine.over_budget,
            "held_tasks": sum(isinstance(a, CreateTasks) for a in engine.held),
            "held_bonuses": sum(isinstance(a, PayBonus) for a in engine.held),
        },
        "funnel": [{"stage": stage.name, "count": stats.funnel.get(stage.name, 0)} for stage in spec.funnel],
        "totals": {
            "fetched": stats.fetched,
            "decided": stats.decided,
            "accepted": stats.accepted,
            "rejected": stats.rejected,
            "tasks_created": stats.tasks_created,
            "errors": stats.errors,
        },
        "alarms": list(spec.alarms(engine.state.state)),
        "held": [dict(row) for row in spec.held(engine.state.state)],
        "workers": [dict(row) for row in list(spec.workers(engine.state.state))[:WORKERS_SHOWN]],
        "photo_store": _photo_store(engine),
        "outages": [_outage(o) for o in reversed(engine.state.outages)],
        "waiting": waiting(spec.waiting(engine.state.state), engine.settings.status.stuck_after_hours, now),
        "recent_decisions": [_event(e) for e in reversed(engine.recent_decisions)],
        "recent_errors": [_event(e) for e in reversed(engine.recent_errors)],
    }


def _pool(
    pool_id: str, status: str | None, stats: PoolStats, gauges: Mapping[str, int], pending: int, near: int
) -> dict[str, Any]:
    return {
        "pool_id": pool_id,
        "status": status,
        "fetched": stats.fetched,
        "answers_waiting": gauges.get("answers_waiting", 0),
        "groups_waiting": gauges.get("groups_waiting", 0),
        **{k: v for k, v in gauges.items() if k not in ("answers_waiting", "groups_waiting")},
        "decisions": dict(sorted(stats.decisions.items())),
        "errors": stats.errors,
        "pending_effects": pending,
        "near_auto_accept": near,
        "rewards": money(stats.rewards),
    }


def _photo_store(engine: Engine[Any, Any]) -> dict[str, Any]:
    """Do photo links open for checkers? From the store probe's outage windows (engine/probe.py).

    ``ok`` is False while an outage window is open; ``since`` is then its start,
    else the end of the last window (None: none in memory); ``checked`` is the
    last probe's time (None: not probed yet, or ``probed`` False: no file store).
    """
    outages = engine.state.outages
    current = outages[-1] if outages and outages[-1].end is None else None
    last = engine.last_probe
    since: datetime | None
    if current is not None:
        since, detail = current.start, current.detail
    else:
        since = outages[-1].end if outages else None
        detail = last.detail if last is not None else ("not probed yet" if engine.probe else "no file store to probe")
    return {
        "probed": engine.probe is not None,
        "ok": current is None,
        "since": stamp(since),
        "detail": detail,
        "checked": stamp(last.at) if last is not None else None,
    }


def _outage(outage: Outage) -> Mapping[str, Any]:
    return {"start": stamp(outage.start), "end": stamp(outage.end), "detail": outage.detail}


def _event(event: Event) -> Mapping[str, Any]:
    return {"at": stamp(event.at), "pool": event.pool, "kind": event.kind, "text": event.text,
            "detail": event.detail}


def waiting(rows: Iterable[Mapping[str, object]], stuck_after_hours: float, now: datetime) -> dict[str, Any]:
    """The work that waits for a decision, oldest first (at most :data:`WAITING_SHOWN` rows).

    ``stuck`` is True when the oldest has waited longer than ``[Status] stuck_after_hours``:
    work that nobody answers (an empty checking pool, a task nobody takes) is seen
    before Toloka's auto-accept decides it instead.
    """
    every = [row for row in rows if isinstance(row.get("since"), datetime)]
    oldest = heapq.nsmallest(WAITING_SHOWN, every, key=_since)
    first = _since(oldest[0]) if oldest else None
    return {
        "count": len(every),
        "stuck_after_hours": stuck_after_hours,
        "oldest_since": stamp(first),
        "stuck": first is not None and now - first > timedelta(hours=stuck_after_hours),
        "shown": [
            {"id": str(row.get("id", "")), "label": str(row.get("label", "")), "stage": str(row.get("stage", "")),
             "since": stamp(_since(row)), "waited_seconds": int((now - _since(row)).total_seconds()),
             "answers": row.get("answers", 0)}
            for row in oldest
        ],
    }


def _since(row: Mapping[str, object]) -> datetime:
    since = row["since"]
    assert isinstance(since, datetime)  # filtered by waiting()
    return since


def logged_decisions(path: Path, log: DecisionLog, limit: int) -> list[Event]:
    """The last ``limit`` rows of the decision log as recent decisions, oldest first (blocking: run in a thread).

    The list of recent decisions lives in memory; read back at start-up, it shows
    what was decided before a restart instead of starting empty.
    """
    events = []
    for row in tail_rows(path, limit):
        try:
            at = datetime.fromisoformat(row.get(log.time_column, ""))
        except ValueError:
            continue  # not a time: a row from another tool, or a hand edit
        subject = row.get(log.subject_column, "")
        label = row.get(log.label_column, "") if log.label_column else ""
        comment = row.get(log.comment_column, "") if log.comment_column else ""
        events.append(Event(at, row.get(log.pool_column, ""), row.get(log.event_column, ""),
                            f"{subject} {label}".strip(), comment))
    return events
