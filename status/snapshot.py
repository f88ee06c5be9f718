"""One plain, JSON-ready picture of the daemon, taken on the event loop.

The status server calls :func:`take_snapshot` inside its request handler, on
the daemon's own event loop, so it sees a consistent state between two awaits
of the tick and never blocks: it reads memory only (the journal's pending
effects as of the last checkpoint, not the journal file or its lock).
Money stays :class:`~decimal.Decimal` and is written as a string.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from engine.actions import CreateTasks, PayBonus
from engine.daemon import FUNNEL, Daemon, Event, PoolStats, pool_acted_on
from handlers.state import Ledger, Work

POOLS = ("pedestrian", "visit", "quality", "relevance")


def stamp(value: datetime | None) -> str | None:
    """ISO 8601 UTC text (naive UTC datetimes in, ``...Z`` out)."""
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def money(value: Decimal | None) -> str | None:
    return None if value is None else str(value)


def take_snapshot(daemon: Daemon, now: datetime) -> dict[str, Any]:
    """The whole status: ticks, per-pool counters, funnel, money, recent decisions and errors."""
    stats = daemon.state.stats
    ledger = daemon.state.ledger
    pools = daemon.settings.pools()
    pending = daemon.state.journal.pending  # as of the last checkpoint: memory only, no lock
    pending_by_pool = Counter(pool_acted_on(effect.action, pools) for effect in pending)
    near = near_auto_accept(ledger, daemon.auto_accept_period,
                            timedelta(hours=daemon.settings.pipeline.auto_accept_warning_hours), now)
    limit = daemon.settings.pipeline.max_spend
    last = daemon.last_tick
    return {
        "now": stamp(now),
        "period_seconds": daemon.settings.pipeline.period_s,
        "ticks": stats.ticks,
        "last_tick": None if last is None else {
            "at": stamp(daemon.last_tick_at),
            "fetched": last.fetched,
            "decided": last.decided,
            "created": last.created,
            "errors": last.errors,
            "pending": last.pending,
            "held": last.held,
            "duration_seconds": round(last.duration_s, 3),
        },
        "next_tick": stamp(daemon.next_tick_at),
        "pools": {
            name: _pool(name, pools[name], daemon.pool_status.get(pools[name]), stats.pools.get(name, PoolStats()),
                        ledger, pending_by_pool[name], len(near) if name == "pedestrian" else 0)
            for name in POOLS
        },
        "under_review": len(ledger.works),
        "held_for_a_person": len(ledger.held),
        "pending_effects": {
            "total": len(pending),
            "by_kind": dict(Counter(type(effect.action).__name__ for effect in pending)),
            "files": pending_by_pool["files"],
        },
        "near_auto_accept": near,
        "money": {
            "rewards": money(stats.reward_money),
            "bonuses": money(stats.bonus_money),
            "spent": money(stats.spent),
            "bonuses_paid": stats.bonuses_paid,
            "max_spend": money(limit),
            "over_budget": daemon.over_budget,
            "held_tasks": sum(isinstance(a, CreateTasks) for a in daemon.held),
            "held_bonuses": sum(isinstance(a, PayBonus) for a in daemon.held),
        },
        "funnel": [{"stage": stage, "count": stats.funnel.get(stage, 0)} for stage, _ in FUNNEL],
        "totals": {
            "fetched": stats.fetched,
            "decided": stats.decided,
            "accepted": stats.accepted,
            "rejected": stats.rejected,
            "tasks_created": stats.tasks_created,
            "errors": stats.errors,
        },
        "recent_decisions": [_event(e) for e in reversed(daemon.recent_decisions)],
        "recent_errors": [_event(e) for e in reversed(daemon.recent_errors)],
    }


def _pool(
    name: str, pool_id: str, status: str | None, stats: PoolStats, ledger: Ledger, pending: int, near: int
) -> dict[str, Any]:
    return {
        "pool_id": pool_id,
        "status": status,
        "fetched": stats.fetched,
        "answers_waiting": sum(len(b) for b in ledger.ballots.get(name, {}).values()),
        "groups_waiting": groups_waiting(ledger, name),
        "decisions": dict(sorted(stats.decisions.items())),
        "errors": stats.errors,
        "pending_effects": pending,
        "near_auto_accept": near,
        "rewards": money(stats.rewards),
    }


def groups_waiting(ledger: Ledger, pool: str) -> int:
    """Groups waiting for this pool's verdict (pedestrian: every group of undecided work).

    A visit task judges a whole assignment, so visit counts one (the main group)
    per assignment still at the visit check.
    """
    works = ledger.works.values()
    if pool == "pedestrian":
        return sum(len(w.groups) for w in works)
    if pool == "visit":
        return sum(1 for w in works if w.stage == "visit")
    return sum(1 for w in works if w.stage == pool for g in w.groups.values() if g.status == pool)


def near_auto_accept(
    ledger: Ledger, period: timedelta | None, warning: timedelta, now: datetime
) -> list[dict[str, Any]]:
    """Undecided pedestrian assignments within ``warning`` of Toloka's auto-accept, soonest first."""
    if period is None:
        return []
    found: list[tuple[datetime, Work]] = []
    for work in ledger.works.values():
        deadline = work.submitted + period
        if now >= deadline - warning:
            found.append((deadline, work))
    found.sort(key=lambda pair: pair[0])
    return [
        {"assignment_id": w.assignment_id, "name": w.name, "address": w.address, "stage": w.stage,
         "deadline": stamp(deadline)}
        for deadline, w in found
    ]


def _event(event: Event) -> Mapping[str, Any]:
    return {"at": stamp(event.at), "pool": event.pool, "kind": event.kind, "text": event.text,
            "detail": event.detail}
