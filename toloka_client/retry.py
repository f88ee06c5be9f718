"""Retry decisions: which failures to retry and how long to wait (pure, no I/O).

Kept apart from the HTTP code so the policy can be tested as a table. Which
answers are worth another try is :func:`is_retryable_status`; the errors module
stamps it on every error built from an answer (``retryable``), and the
transport retries exactly the errors so marked, calls :func:`retry_delay`, and
does the sleeping itself (through an injectable sleep function).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

# Seconds to wait for a 429 whose payload names the quota window
# (toloka-api.md section 4: MIN=60 s, HOUR=3600 s, DAY=86400 s).
QUOTA_INTERVALS_S: dict[str, float] = {"MIN": 60.0, "HOUR": 3600.0, "DAY": 86400.0}

RETRY_STATUSES = frozenset({408, 429})


@dataclass(frozen=True)
class RetryPolicy:
    """How hard the client tries before it gives up.

    ``max_attempts`` counts every try (the first one too); ``budget_s`` bounds the
    total time slept between tries, so a quota that wants an hour is not waited
    for when the budget is ten minutes: the error is raised at once instead.
    """

    max_attempts: int = 6
    budget_s: float = 300.0
    base_delay_s: float = 0.5
    max_delay_s: float = 30.0
    # Upper bound for one wait asked for by Retry-After or payload.interval.
    max_server_wait_s: float = 120.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.budget_s < 0 or self.base_delay_s < 0 or self.max_delay_s < 0:
            raise ValueError("retry times must not be negative")


def is_retryable_status(status: int) -> bool:
    """408, 429 and every 5xx are worth another try (the ``retryable`` flag of an HTTP answer)."""
    return status in RETRY_STATUSES or 500 <= status <= 599


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a ``Retry-After`` header (the seconds form; HTTP dates are ignored)."""
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    if seconds != seconds or seconds < 0:  # NaN or negative
        return None
    return seconds


def retry_delay(
    policy: RetryPolicy,
    retry_number: int,
    *,
    retry_after_s: float | None = None,
    quota_interval: str | None = None,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait before retry number ``retry_number`` (1 for the first retry).

    Exponential backoff with full jitter, ``base * 2**(n-1)`` capped at
    ``max_delay_s``; a server hint (``Retry-After`` seconds, or the quota window
    of ``payload.interval``) takes precedence and is capped at ``max_server_wait_s``.
    """
    hints = [h for h in (retry_after_s, QUOTA_INTERVALS_S.get(quota_interval or "")) if h is not None]
    if hints:
        return min(max(hints), policy.max_server_wait_s)
    ceiling = min(policy.max_delay_s, policy.base_delay_s * 2.0 ** max(retry_number - 1, 0))
    # Full jitter, but never less than a tenth of the ceiling so retries do not hammer.
    return ceiling * (0.1 + 0.9 * rand())
