"""What the engine checkpoints, and how a checkpoint of the v1 daemon is adopted.

:class:`EngineState` holds the engine's own memory (cursors per observer, the
journal's pending effects, the running totals, the assignments under review)
and the pipeline's state as one opaque, picklable value.

Version 1 was written by the pedestrian-only daemon: a pickled
``engine.daemon.DaemonState`` with ``cursors``, ``ledger``, ``journal``,
``stats`` and ``rewards_owed``. It is migrated explicitly, not kept alive by
aliases: on load, ``engine.daemon.DaemonState`` is read into
:class:`V1DaemonState` (a bare attribute holder) and ``engine.daemon.Stats`` /
``PoolStats`` into their new home, :mod:`engine.accounting`; then
:func:`migrate_v1` builds a version-2 state, asking the pipeline (its
``migrate_v1`` hook) to adopt the ledger, the owed rewards and the pending
effects. The first checkpoint after that is written in version 2.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Generic, TypeVar

from common.errors import StateError
from common.evolving import Evolving
from common.tracked import TrackedDict
from engine.accounting import Stats
from engine.checkpoint import CheckpointStore
from engine.cursor import CursorState
from engine.journal import JournalSnapshot
from engine.spec import Outage, PipelineSpec, Review, V1Checkpoint

STATE_VERSION = 2
S = TypeVar("S")
#: Photo facts kept while no handler has taken them (more than a large tick stores); the oldest go first.
MAX_FACTS = 10_000

# Where v1 pickled the classes that moved.
V1_ALIASES = {
    ("engine.daemon", "DaemonState"): ("engine.state", "V1DaemonState"),
    ("engine.daemon", "Stats"): ("engine.accounting", "Stats"),
    ("engine.daemon", "PoolStats"): ("engine.accounting", "PoolStats"),
}


@dataclass
class EngineState(Evolving, Generic[S]):
    """Everything the daemon must remember across a restart: plain data only.

    ``refused`` holds effects Toloka refused for good that the pipeline wants
    to hear of (action key -> reason); they are handed to the handlers in
    :class:`~engine.spec.Context` until a handler acknowledges them.
    ``outages`` are the photo store's outage windows (kept 24 hours, at most 50),
    handed to the handlers too (``Context.outages``). ``facts`` holds the
    measurements of photos the executor stored (``StorePhoto`` key -> text, at
    most ``MAX_FACTS``), handed to the handlers (``Context.facts``) until one
    acknowledges them.
    """

    pipeline: str  # the definition that wrote it: another one refuses to resume it
    state: S
    version: int = STATE_VERSION
    cursors: dict[str, CursorState] = field(default_factory=dict)  # observer key -> cursor
    journal: JournalSnapshot = field(default_factory=JournalSnapshot)
    stats: Stats = field(default_factory=Stats)
    # assignment id -> work under review; tracked: a checkpoint saves the reviews a tick touched
    reviews: TrackedDict[str, Review] = field(default_factory=TrackedDict)
    refused: dict[str, str] = field(default_factory=dict)  # action key -> why Toloka refused it
    facts: dict[str, str] = field(default_factory=dict)  # StorePhoto key -> the stored photo's facts, oldest first
    # Photo store outage windows (engine.probe), oldest first, the last may be open; and the last
    # probe whose link served, where the next window starts.
    outages: list[Outage] = field(default_factory=list)
    probe_ok_at: datetime | None = None

    def __post_init__(self) -> None:
        # Also after a load (Evolving): a checkpoint from before the tracking holds a plain dict.
        self.reviews = TrackedDict.of(self.reviews)


class V1DaemonState:
    """The v1 ``engine.daemon.DaemonState`` as unpickled: its attributes, nothing else."""

    version: int
    cursors: dict[str, CursorState]
    ledger: Any
    journal: JournalSnapshot
    stats: Stats
    rewards_owed: dict[str, Any]


def checkpoint_store(folder: Any, spec: PipelineSpec[Any, S]) -> CheckpointStore:
    """The checkpoint file in ``folder``, allowing the pipeline's own state classes."""
    from engine.checkpoint import DEFAULT_PACKAGES

    return CheckpointStore(folder, packages=(*DEFAULT_PACKAGES, *spec.state_packages), aliases=V1_ALIASES)


def load_state(
    checkpoints: CheckpointStore, spec: PipelineSpec[Any, S], now: datetime
) -> tuple[EngineState[S], bool]:
    """The saved state (migrated if old) and whether one was found; a foreign or newer one stops start-up."""
    saved: Any = checkpoints.load()
    if saved is None:
        return EngineState(pipeline=spec.name, state=spec.new_state()), False
    if isinstance(saved, V1DaemonState):
        return migrate_v1(saved, spec, checkpoints, now), True
    if not isinstance(saved, EngineState):
        raise StateError(f"checkpoint {checkpoints.path} does not hold pipeline state; the file was left in place")
    if saved.version != STATE_VERSION:
        raise StateError(
            f"checkpoint {checkpoints.path} has state version {saved.version}, this daemon reads "
            f"{STATE_VERSION}; the file was left in place"
        )
    if saved.pipeline != spec.name:
        raise StateError(
            f"checkpoint {checkpoints.path} was written by the {saved.pipeline!r} pipeline, but toloka.ini "
            f"[Pipeline] definition is {spec.name!r}; use another saves_folder for another pipeline "
            f"(the file was left in place)"
        )
    fill_new_fields(saved)
    fill_new_fields(saved.stats)
    return saved, True


def migrate_v1(
    old: V1DaemonState, spec: PipelineSpec[Any, S], checkpoints: CheckpointStore, now: datetime
) -> EngineState[S]:
    """A version-2 state from a v1 checkpoint (the pipeline adopts its ledger, rewards and effects)."""
    version = getattr(old, "version", None)
    if version != 1:
        raise StateError(
            f"checkpoint {checkpoints.path} has state version {version}, this daemon reads "
            f"{STATE_VERSION} (and migrates 1); the file was left in place"
        )
    if spec.migrate_v1 is None:
        raise StateError(
            f"checkpoint {checkpoints.path} was written by the v1 pedestrian daemon and the {spec.name!r} "
            f"pipeline cannot adopt it; use another saves_folder (the file was left in place)"
        )
    journal: JournalSnapshot = old.journal
    adopted = spec.migrate_v1(
        V1Checkpoint(
            ledger=old.ledger, rewards_owed=dict(getattr(old, "rewards_owed", {})), pending=journal.pending, now=now
        )
    )
    stats = old.stats
    fill_new_fields(stats)
    return EngineState(
        pipeline=spec.name,
        state=adopted.state,
        cursors=dict(old.cursors),
        journal=JournalSnapshot.of(journal.seq, adopted.pending),
        stats=stats,
        reviews=TrackedDict(adopted.reviews),
    )


def fill_new_fields(obj: Any) -> None:
    """Give a dataclass saved by an older daemon the fields added since, at their defaults."""
    for f in dataclasses.fields(obj):
        if f.name in vars(obj):
            continue
        if f.default_factory is not dataclasses.MISSING:
            setattr(obj, f.name, f.default_factory())
        elif f.default is not dataclasses.MISSING:
            setattr(obj, f.name, f.default)
