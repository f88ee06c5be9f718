"""Actions: the plain records handlers return and the executor performs.

A handler never does I/O; it turns events and its state into a list of these.
Each action has a deterministic ``key`` (the same decision replayed after a
crash yields the same key), is journalled as pending before it runs, and is
idempotent when run again: task and bonus creation carry deterministic
``operation_id``s, status changes treat "already in that status" as done,
photo copies overwrite with the same bytes, table rows are appended once.

Values that must become working links (photo URLs given to workers or written
in results) are written as :class:`LinkTo` and resolved by the executor at the
moment it runs the action, from the file store's current settings.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Literal, TypeAlias

from toloka_client.ids import operation_uuid as operation_uuid  # re-exported for the handlers


@dataclass(frozen=True)
class LinkTo:
    """A stored photo, to be shown as a working link (presigned, SAS, public or file://)."""

    key: str


@dataclass(frozen=True)
class TaskSpec:
    """One task to create. ``input_values`` may hold :class:`LinkTo` (or lists of them)."""

    input_values: Mapping[str, object]
    overlap: int
    unavailable_for: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorePhoto:
    """Download attachment ``attachment_id`` through the API and put it at ``key``.

    ``measure``: also measure the photo for the automatic checks (a decode: CPU
    spent for nothing where no check counts).
    """

    attachment_id: str
    dst_key: str
    content_type: str = "image/jpeg"
    measure: bool = True

    @property
    def key(self) -> str:
        return f"store:{self.dst_key}"


@dataclass(frozen=True)
class CopyPhoto:
    """Server-side copy ``src_key`` -> ``dst_key`` (never a delete)."""

    src_key: str
    dst_key: str

    @property
    def key(self) -> str:
        return f"copy:{self.dst_key}"


@dataclass(frozen=True)
class CreateTasks:
    """Create ``tasks`` in ``pool_id`` with one idempotent operation."""

    pool_id: str
    operation_id: str
    tasks: tuple[TaskSpec, ...]

    @property
    def key(self) -> str:
        return f"tasks:{self.operation_id}"


@dataclass(frozen=True)
class SetStatus:
    """Accept or reject an assignment of a pool the pipeline reviews.

    ``if_overtaken`` is the row the pipeline wants written when Toloka accepted
    the assignment by itself first (its ``auto_accept_period_day`` ran out), so
    a wanted rejection is recorded as what really happened. ``context`` is kept
    only so that v1 journals still load (the v1 migration turns it into
    ``if_overtaken``).
    """

    assignment_id: str
    status: Literal["ACCEPTED", "REJECTED"]
    comment: str
    context: Mapping[str, str] = field(default_factory=dict)
    if_overtaken: AppendRows | None = None

    @property
    def key(self) -> str:
        return f"status:{self.assignment_id}"


@dataclass(frozen=True)
class PayBonus:
    """One bonus for one accepted assignment; looked up by ``assignment_id`` before paying."""

    assignment_id: str
    user_id: str
    amount: Decimal
    title: str
    message: str
    operation_id: str

    @property
    def key(self) -> str:
        return f"bonus:{self.assignment_id}"


@dataclass(frozen=True)
class AppendRows:
    """Append ``rows`` to the pipeline's table ``table`` (e.g. decisions, answers, main_tasks).

    Row values may be :class:`LinkTo` (or lists of them). ``row_key`` names the
    fact, e.g. ``"<assignment id>/main"``; a replay appends nothing twice.
    """

    table: str
    row_key: str
    rows: tuple[Mapping[str, object], ...]

    @property
    def key(self) -> str:
        return f"rows:{self.table}:{self.row_key}"


@dataclass(frozen=True)
class RaiseOverlap:
    """Ask for more answers to a task: set its overlap to ``overlap`` (never lowers it).

    Setting an overlap is idempotent. When Toloka refuses (the task is gone,
    its pool is closed or at its limit), the executor writes ``if_refused`` and
    reports the refusal to the pipeline through the engine (``Context.refused``),
    so the decision goes on with the answers it has.
    """

    pool_id: str
    task_id: str
    overlap: int
    if_refused: AppendRows | None = None

    @property
    def key(self) -> str:
        return f"overlap:{self.task_id}:{self.overlap}"


@dataclass(frozen=True)
class RestrictWorker:
    """Bar ``user_id`` from new tasks of ``pool_id`` (a Toloka user restriction, scope POOL).

    Idempotent: an existing restriction of that worker on that pool counts as done.
    Undone by ``python pipeline.py unrestrict``.
    """

    pool_id: str
    user_id: str
    private_comment: str

    @property
    def key(self) -> str:
        return f"restrict:{self.pool_id}:{self.user_id}"


@dataclass(frozen=True)
class SendBatch:
    """One request that carries several :class:`CreateTasks` of one pool, or several :class:`PayBonus`.

    Handlers never return it: the executor composes it from the actions that wait
    at the same moment, and the engine journals it (durably) before it is sent.
    A replay after a crash sends the same ``members`` (the carried actions, in
    request order) under the same ``operation_id``, so Toloka finds the first
    try and creates nothing twice.
    """

    kind: Literal["tasks", "bonuses"]
    pool_id: str  # the tasks' pool; "" for bonuses
    operation_id: str
    members: tuple[CreateTasks | PayBonus, ...]

    @property
    def key(self) -> str:
        return f"batch:{self.operation_id}"


Action: TypeAlias = (
    StorePhoto | CopyPhoto | CreateTasks | SetStatus | PayBonus | AppendRows | RaiseOverlap | RestrictWorker
)


@dataclass(frozen=True)
class Step:
    """An action journalled with its chain (one unit of work), so order survives a restart."""

    chain: str
    action: Action | SendBatch  # a batch record only in the engine's own chain

    @property
    def key(self) -> str:
        return self.action.key
