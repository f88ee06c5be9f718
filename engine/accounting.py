"""Running totals kept in the checkpoint: per pool, money, the funnel.

Money is counted as it is spent: a reward of a pool the pipeline does not
review when the daemon reads the assignment as accepted, a reviewed
assignment's reward when its accept is done, a bonus when it is paid. The
counts move together with the journal's done marks and the cursors, so a
restart neither loses nor doubles them (see ``Engine.recount_after_restart``).

These classes are pickled; v1 checkpoints named them ``engine.daemon.Stats``
and ``engine.daemon.PoolStats`` (mapped on load, see :mod:`engine.state`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal


@dataclass
class PoolStats:
    """Running totals of one pool (by its name in the pipeline)."""

    fetched: int = 0
    errors: int = 0
    rewards: Decimal = Decimal(0)  # rewards of this pool's assignments that were accepted
    decisions: dict[str, int] = field(default_factory=dict)  # decision event -> rows written


@dataclass
class Stats:
    """Totals for the tick line, the status page, /metrics and the demo."""

    fetched: int = 0
    decided: int = 0
    accepted: int = 0
    rejected: int = 0
    tasks_created: int = 0
    bonuses_paid: int = 0
    bonus_money: Decimal = Decimal(0)
    errors: int = 0
    ticks: int = 0
    reward_money: Decimal = Decimal(0)
    pools: dict[str, PoolStats] = field(default_factory=dict)
    funnel: dict[str, int] = field(default_factory=dict)  # stage -> units of work that entered it

    @property
    def spent(self) -> Decimal:
        """Rewards plus bonuses paid."""
        return self.reward_money + self.bonus_money

    def pool(self, name: str) -> PoolStats:
        return self.pools.setdefault(name, PoolStats())
