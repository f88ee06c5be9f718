"""The handlers' shared state: work in progress per pedestrian assignment.

Plain dataclasses only (they are pickled into ``saves/``). A pedestrian
assignment enters the ledger when it is submitted and leaves it once its final
decision (accept, reject, no_org) has been turned into actions, so the state
holds only undecided work, however long the daemon runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from aggregation.evidence import PoolBook
from aggregation.photo_checks import Duplicate, PhotoIndex
from common.evolving import Evolving
from common.tracked import TrackedDict

Stage = Literal["visit", "quality", "relevance"]
GroupStatus = Literal["quality", "relevance", "good", "bad", "dropped"]
MAIN = "main"


@dataclass
class Photo:
    """One photo of a pedestrian assignment, as stored under ``tmp/``.

    ``facts`` are its measurements (:mod:`engine.photo_facts` text) once the
    executor has stored it, and ``duplicate`` the photo of another assignment it
    repeats, if any (:mod:`aggregation.photo_checks`); both stay None for a
    photo stored before a crash: its automatic checks are then neutral. New
    fields have defaults: photos pickled before them load with None.
    """

    photo_id: str  # "<field>/<n>": stable across replays
    field: str
    attachment_id: str
    key: str
    quality: bool | None = None
    relevant: bool | None = None
    facts: str | None = None
    duplicate: Duplicate | None = None


@dataclass
class Group:
    """The photos decided together: ``main`` (all main fields) or one bonus field."""

    name: str
    photos: list[Photo]
    status: GroupStatus = "quality"

    def photo(self, photo_id: str) -> Photo | None:
        return next((p for p in self.photos if p.photo_id == photo_id), None)


@dataclass
class Work:
    """A submitted pedestrian assignment on its way through the checks."""

    assignment_id: str
    user_id: str
    submitted: datetime
    org: dict[str, str]  # organization fields and pass-through extras, from the task input
    verdict: str
    worker_coordinates: str
    comment: str
    groups: dict[str, Group]
    stage: Stage = "visit"
    warned: bool = False

    @property
    def name(self) -> str:
        return self.org.get("name", "")

    @property
    def address(self) -> str:
        return self.org.get("address", "")

    def group_id(self, group: str) -> str:
        return f"{self.assignment_id}/{group}"


@dataclass
class Ballot:
    """One verification answer waiting until its task has ``overlap`` answers."""

    task_id: str
    assignment_id: str
    worker_id: str
    label: str
    pedestrian_assignment_id: str
    group: str
    photo_id: str
    image_field: str
    url: str
    submitted: datetime | None = None  # when the checker sent it (an answer from a photo-store outage is void)


@dataclass
class DeferredReject:
    """A rejection decided while its pool's negative verdicts surged: carried out once they calm down."""

    handler: str
    group: str
    comment: str
    reason: str


@dataclass
class Ledger(Evolving):
    """All handlers' state: undecided work, answers waiting for a verdict, and what the checkers taught us.

    Bounded: works and ballots leave once decided; ``books`` keeps a few
    numbers per checker and pool; ``requested`` and ``exhausted`` only name
    tasks still open.

    ``works`` and each pool's ballots are :class:`~common.tracked.TrackedDict`: a
    checkpoint saves only the entries read by key or written since the last one. Code
    that changes a work or a ballot list it found by iterating calls ``touch``.
    """

    works: TrackedDict[str, Work] = field(default_factory=TrackedDict)
    # pool kind ("visit", "quality", "relevance") -> task id -> ballots
    ballots: dict[str, TrackedDict[str, list[Ballot]]] = field(default_factory=dict)
    # pedestrian assignments kept for a person: id -> reason (unreadable, or a verdict too unsure to act on)
    held: dict[str, str] = field(default_factory=dict)
    # pool kind -> learned worker quality and share of positive verdicts (the dynamic policy's memory)
    books: dict[str, PoolBook] = field(default_factory=dict)
    # task id -> the overlap asked for, when raised above the one it was created with
    requested: dict[str, int] = field(default_factory=dict)
    # tasks whose overlap Toloka refused to raise: decided with the answers they have
    exhausted: set[str] = field(default_factory=set)
    # control tasks already warned about (their known solution is not one of the pool's labels)
    odd_controls: set[str] = field(default_factory=set)
    # pedestrian user id -> confident "Incorrect object" rejections (for restrict_after_rejections)
    rejections: dict[str, int] = field(default_factory=dict)
    # task id -> negative answers voided (given while photo links did not serve); asked again
    voided: dict[str, int] = field(default_factory=dict)
    # pedestrian assignment id -> a rejection waiting while its pool's negative verdicts surge
    deferred: dict[str, DeferredReject] = field(default_factory=dict)
    # the photos seen lately (bounded), to find a photo repeated from another assignment
    photo_index: PhotoIndex = field(default_factory=PhotoIndex)

    def __post_init__(self) -> None:
        # Also after a load (Evolving): a checkpoint from before the tracking holds plain dicts.
        self.works = TrackedDict.of(self.works)
        for kind, box in self.ballots.items():
            self.ballots[kind] = TrackedDict.of(box)

    def ballots_of(self, kind: str) -> TrackedDict[str, list[Ballot]]:
        box = self.ballots.get(kind)
        if box is None:
            box = self.ballots[kind] = TrackedDict()
        return box

    def book(self, kind: str) -> PoolBook:
        return self.books.setdefault(kind, PoolBook())
