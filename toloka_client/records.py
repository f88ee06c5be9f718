"""Typed, immutable views of the Toloka JSON objects the daemon reads.

Each record names the fields the daemon uses; every other key of the JSON object
is kept in ``extra`` (the API grows fields, and a new one must never break a
parse). Money is ``Decimal`` (the transport parses JSON floats as Decimal), and
times are naive UTC datetimes. ``from_json`` accepts a minimal object such as
``{"id": "1", "status": "OPEN"}``: absent fields become ``None`` or empty.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Generic, TypeVar

from toloka_client.timefmt import parse_datetime

T = TypeVar("T")
R = TypeVar("R", bound="Record")


def _dt(value: Any) -> datetime | None:
    return parse_datetime(str(value)) if value is not None else None


def _dec(value: Any) -> Decimal | None:
    if value is None:
        return None
    # str() keeps an int or a Decimal exact; a float (never from our parser) via its repr.
    return value if isinstance(value, Decimal) else Decimal(str(value))


def _str(value: Any) -> str | None:
    if type(value) is str:  # nearly always: no call to str()
        return value
    return str(value) if value is not None else None


def _map(value: Any) -> Mapping[str, Any]:
    if type(value) is dict:  # parsed from the answer a moment ago: nobody else holds it, no copy needed
        return value
    return dict(value) if isinstance(value, Mapping) else {}


def _strs(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    return tuple(str(v) for v in value)


def conv(fn: Callable[[Any], Any]) -> Any:
    """Field with a converter from the JSON value (default ``None`` when absent)."""
    return field(default=None, metadata={"conv": fn})


def _compile_parser(cls: type[R]) -> Callable[[Mapping[str, Any]], R]:
    """A parser made for ``cls``: one generated function that reads each field once.

    Searches parse thousands of assignments per tick, so this is the hot path: the fields
    (``dataclasses.fields`` is slow) and their converters are looked up once per class, and
    the record is built without the frozen ``__init__``'s per-field ``object.__setattr__``
    (the values are the fields' own, so the record is the one ``cls(**values)`` would make).
    """
    fields = [(f.name, f.metadata.get("conv")) for f in dataclasses.fields(cls) if f.name != "extra"]
    env: dict[str, Any] = {"_cls": cls, "_new": object.__new__, "_set": object.__setattr__,
                           "_known": frozenset(name for name, _ in fields)}
    items = []
    for number, (name, fn) in enumerate(fields):
        if fn is None:
            items.append(f"{name!r}: get({name!r})")
        else:
            env[f"_c{number}"] = fn
            items.append(f"{name!r}: _c{number}(get({name!r}))")
    source = (
        "def parse(doc):\n"
        "    get = doc.get\n"
        "    record = _new(_cls)\n"
        f"    _set(record, '__dict__', {{{', '.join(items)}, "
        "'extra': {k: v for k, v in doc.items() if k not in _known}})\n"
        "    return record\n"
    )
    exec(compile(source, f"<parser of {cls.__name__}>", "exec"), env)  # the source is built from field names only
    parser: Callable[[Mapping[str, Any]], R] = env["parse"]
    return parser


_PARSERS: dict[type, Callable[[Mapping[str, Any]], Any]] = {}


@dataclass(frozen=True)
class Record:
    """Base: ``from_json`` fills declared fields and keeps the rest in ``extra``."""

    extra: Mapping[str, Any] = field(default_factory=dict, repr=False, compare=False, kw_only=True)

    @classmethod
    def from_json(cls: type[R], doc: Mapping[str, Any]) -> R:
        if not isinstance(doc, Mapping):
            raise TypeError(f"{cls.__name__}: expected a JSON object, got {type(doc).__name__}")
        parse = _PARSERS.get(cls)
        if parse is None:
            parse = _PARSERS[cls] = _compile_parser(cls)
        record: R = parse(doc)
        return record


@dataclass(frozen=True)
class Requester(Record):
    id: str | None = conv(_str)
    balance: Decimal | None = conv(_dec)
    public_name: Mapping[str, Any] = conv(_map)
    company: Mapping[str, Any] = conv(_map)


@dataclass(frozen=True)
class Project(Record):
    id: str | None = conv(_str)
    public_name: str | None = conv(_str)
    status: str | None = conv(_str)
    created: datetime | None = conv(_dt)


@dataclass(frozen=True)
class Pool(Record):
    id: str | None = conv(_str)
    project_id: str | None = conv(_str)
    private_name: str | None = conv(_str)
    status: str | None = conv(_str)
    last_close_reason: str | None = conv(_str)
    type: str | None = conv(_str)
    created: datetime | None = conv(_dt)
    last_started: datetime | None = conv(_dt)
    last_stopped: datetime | None = conv(_dt)
    reward_per_assignment: Decimal | None = conv(_dec)
    auto_accept_solutions: bool | None = None
    auto_accept_period_day: int | None = None
    assignment_max_duration_seconds: int | None = None
    defaults: Mapping[str, Any] = conv(_map)
    metadata: Mapping[str, Any] = conv(_map)

    @property
    def is_open(self) -> bool:
        return self.status == "OPEN"


@dataclass(frozen=True)
class Task(Record):
    id: str | None = conv(_str)
    pool_id: str | None = conv(_str)
    input_values: Mapping[str, Any] = conv(_map)
    overlap: int | None = None
    infinite_overlap: bool | None = None
    remaining_overlap: int | None = None
    known_solutions: tuple[Mapping[str, Any], ...] = conv(lambda v: tuple(v or ()))
    unavailable_for: tuple[str, ...] = conv(_strs)
    reserved_for: tuple[str, ...] = conv(_strs)
    origin_task_id: str | None = conv(_str)
    created: datetime | None = conv(_dt)

    @property
    def is_golden(self) -> bool:
        """Control task with known answers (the handlers skip these)."""
        return bool(self.known_solutions)


@dataclass(frozen=True)
class Solution(Record):
    output_values: Mapping[str, Any] = conv(_map)


def _tasks(value: Any) -> tuple[Task, ...]:
    return tuple(Task.from_json(t) for t in value or ())


def _solutions(value: Any) -> tuple[Solution, ...]:
    return tuple(Solution.from_json(s) for s in value or ())


@dataclass(frozen=True)
class Assignment(Record):
    id: str | None = conv(_str)
    pool_id: str | None = conv(_str)
    task_suite_id: str | None = conv(_str)
    user_id: str | None = conv(_str)
    status: str | None = conv(_str)
    reward: Decimal | None = conv(_dec)
    tasks: tuple[Task, ...] = conv(_tasks)
    solutions: tuple[Solution, ...] = conv(_solutions)
    bonus_ids: tuple[str, ...] = conv(_strs)
    mixed: bool | None = None
    automerged: bool | None = None
    created: datetime | None = conv(_dt)
    submitted: datetime | None = conv(_dt)
    accepted: datetime | None = conv(_dt)
    rejected: datetime | None = conv(_dt)
    skipped: datetime | None = conv(_dt)
    expired: datetime | None = conv(_dt)
    public_comment: str | None = conv(_str)

    def event_time(self, kind: str) -> datetime | None:
        """The time of event ``kind`` (``submitted``, ``accepted``, ...), None if not yet."""
        if kind not in _EVENT_FIELDS:
            raise ValueError(f"unknown assignment event {kind!r}")
        value: datetime | None = getattr(self, kind)
        return value

    def pairs(self) -> list[tuple[Task, Solution | None]]:
        """(task, its solution) in order: ``solutions[i]`` answers ``tasks[i]``."""
        return [(t, self.solutions[i] if i < len(self.solutions) else None) for i, t in enumerate(self.tasks)]


_EVENT_FIELDS = frozenset({"created", "submitted", "accepted", "rejected", "skipped", "expired"})


@dataclass(frozen=True)
class Attachment(Record):
    id: str | None = conv(_str)
    attachment_type: str | None = conv(_str)
    name: str | None = conv(_str)
    media_type: str | None = conv(_str)
    details: Mapping[str, Any] = conv(_map)
    created: datetime | None = conv(_dt)

    @property
    def assignment_id(self) -> str | None:
        return _str(self.details.get("assignment_id"))

    @property
    def user_id(self) -> str | None:
        return _str(self.details.get("user_id"))


@dataclass(frozen=True)
class UserBonus(Record):
    id: str | None = conv(_str)
    user_id: str | None = conv(_str)
    amount: Decimal | None = conv(_dec)
    assignment_id: str | None = conv(_str)
    private_comment: str | None = conv(_str)
    public_title: Mapping[str, Any] = conv(_map)
    public_message: Mapping[str, Any] = conv(_map)
    without_message: bool | None = None
    created: datetime | None = conv(_dt)


@dataclass(frozen=True)
class Skill(Record):
    id: str | None = conv(_str)
    name: str | None = conv(_str)
    created: datetime | None = conv(_dt)


@dataclass(frozen=True)
class UserSkill(Record):
    id: str | None = conv(_str)
    skill_id: str | None = conv(_str)
    user_id: str | None = conv(_str)
    value: int | None = None
    exact_value: Decimal | None = conv(_dec)
    created: datetime | None = conv(_dt)
    modified: datetime | None = conv(_dt)

    @property
    def score(self) -> Decimal | None:
        """The most precise value the API gives (``exact_value``, else ``value``)."""
        if self.exact_value is not None:
            return self.exact_value
        return Decimal(self.value) if self.value is not None else None


@dataclass(frozen=True)
class UserRestriction(Record):
    """A worker barred from a pool (``scope`` POOL), a project (PROJECT) or all projects.

    ``will_expire`` is when Toloka lifts it by itself (None: until it is deleted).
    """

    id: str | None = conv(_str)
    scope: str | None = conv(_str)
    user_id: str | None = conv(_str)
    pool_id: str | None = conv(_str)
    project_id: str | None = conv(_str)
    private_comment: str | None = conv(_str)
    will_expire: datetime | None = conv(_dt)
    created: datetime | None = conv(_dt)


@dataclass(frozen=True)
class Operation(Record):
    id: str | None = conv(_str)
    type: str | None = conv(_str)
    status: str | None = conv(_str)
    submitted: datetime | None = conv(_dt)
    started: datetime | None = conv(_dt)
    finished: datetime | None = conv(_dt)
    progress: int | None = None
    parameters: Mapping[str, Any] = conv(_map)
    details: Mapping[str, Any] = conv(_map)

    @property
    def is_finished(self) -> bool:
        return self.status in ("SUCCESS", "FAIL")


@dataclass(frozen=True)
class OperationLogItem(Record):
    type: str | None = conv(_str)
    success: bool | None = None
    input: Mapping[str, Any] = conv(_map)
    output: Any = None


@dataclass(frozen=True)
class Page(Generic[T]):
    """One answer of a search: the items and whether more match."""

    items: tuple[T, ...]
    has_more: bool


@dataclass(frozen=True)
class BatchResult(Generic[T]):
    """Result of a batch create: created objects and refused ones, by request index.

    ``resumed``: the ``operation_id`` was used before, so the objects are those an
    earlier try created (before a crash, or one whose answer was lost), not new ones.
    """

    items: Mapping[int, T]
    validation_errors: Mapping[int, Mapping[str, Any]]
    resumed: bool = False

    @property
    def created(self) -> list[T]:
        """The created objects in request order."""
        return [self.items[i] for i in sorted(self.items)]


@dataclass(frozen=True, slots=True)
class BatchCount:
    """Result of an all-or-nothing batch create that the caller needs no object of.

    ``count`` objects were created (all that were sent); ``resumed``: the
    ``operation_id`` was used before, so they are the ones an earlier try created.
    """

    count: int
    resumed: bool = False
