"""How long asynchronous creates stay RUNNING (the emulator's setting, not a fault).

Toloka answers ``POST /tasks?async_mode=true`` and ``POST /user-bonuses?async_mode=true`` with
an operation that is RUNNING (or PENDING) for a while, and a client polls
``GET /operations/{id}`` until it is SUCCESS or FAIL. By default the emulator answers with an
operation that is already finished (toloka-api.md's "finish immediately" tip), which existing
clients and tests rely on; with a timing set, the operation shows RUNNING until ``seconds``
(wall clock; ``--speed`` does not scale it) have passed *and* ``polls`` GETs of it have seen it
RUNNING. The created objects exist from the start; only the status and the log (empty while
RUNNING) lag.

Set by ``start_emulator(operations=...)``, ``--operation-running-seconds`` /
``--operation-running-polls``, ``PUT /_emulator/operations``, or a pedestrian scenario's ``api``
section (which applies only when none of the others set it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_SECONDS = 3600.0


@dataclass(frozen=True)
class OperationTiming:
    seconds: float = 0.0
    polls: int = 0

    @property
    def active(self) -> bool:
        return self.seconds > 0 or self.polls > 0

    @classmethod
    def from_dict(cls, doc: dict[str, Any]) -> OperationTiming:
        """``{"running_seconds": 0.5, "running_polls": 1}``; ValueError names a wrong key or value."""
        unknown = sorted(set(doc) - {"running_seconds", "running_polls"})
        if unknown:
            raise ValueError(f"unknown operation settings {unknown}; known: running_seconds, running_polls")
        seconds = doc.get("running_seconds", 0)
        polls = doc.get("running_polls", 0)
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= MAX_SECONDS:
            raise ValueError(f"running_seconds must be a number within 0..{MAX_SECONDS:g}, not {seconds!r}")
        if isinstance(polls, bool) or not isinstance(polls, int) or not 0 <= polls <= 1000:
            raise ValueError(f"running_polls must be an integer within 0..1000, not {polls!r}")
        return cls(float(seconds), polls)

    def to_dict(self) -> dict[str, Any]:
        return {"running_seconds": self.seconds, "running_polls": self.polls}
