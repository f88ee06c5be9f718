"""Scenarios of the simulated crowd: who works, on what, how fast, with which field names.

A scenario is a JSON document (the ``demo`` one ships in ``scenarios/demo.json``). It is
validated once, here, into frozen dataclasses; every mistake raises :class:`ScenarioError`
naming the JSON path, what was expected and what was found, so a user editing a scenario
file never meets a ``KeyError`` deep inside the simulator.

Field names and labels default to exactly those of the example ``toloka.ini``, because the
emulator writes a ``toloka.ini`` from the scenario (see :mod:`emulator.crowd.config_out`)
and the pipeline must then find the outputs it is configured to read.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import os
import random
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from common.errors import PipelineError

if TYPE_CHECKING:
    from emulator.crowd.find_items_scenario import FindItemsScenario

#: The default ``--speed``: one simulated minute of crowd work passes in one real second.
DEFAULT_SPEED = 60.0

SCENARIO_DIR = Path(__file__).with_name("scenarios")

PEDESTRIAN_KINDS = ("honest", "sloppy", "cheat")
VERIFICATION_POOLS = ("visit", "quality", "relevance")
POOL_KINDS = ("pedestrian", *VERIFICATION_POOLS)

#: What a photo can show; main/bonus fields map to one of these.
PHOTO_KINDS = (
    "facade",
    "signboard",
    "opening_hours",
    "address_plate",
    "interior",
    "covid_policy",
    "outdoor_seating",
    "menu",
)


class ScenarioError(PipelineError):
    """A scenario document is malformed; the message names the JSON path."""

    def __init__(self, where: str, expected: str, found: object) -> None:
        self.where = where
        self.expected = expected
        self.found = found
        super().__init__(f"scenario {where}: expected {expected}, found {found!r}")


# ---------------------------------------------------------------- dataclasses


@dataclass(frozen=True)
class Organization:
    """One place a pedestrian is sent to; ``exists=False`` means nothing is there."""

    id: str
    name: str
    address: str
    coordinates: str  # "lat,lon"
    exists: bool = True
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def lat_lon(self) -> tuple[float, float]:
        lat, lon = self.coordinates.split(",")
        return float(lat), float(lon)

    def input_values(self, org_fields: tuple[str, ...], extra_fields: tuple[str, ...]) -> dict[str, str]:
        """The pedestrian task's input: the org fields (name, address, coordinates) plus extras."""
        own = {"name": self.name, "address": self.address, "coordinates": self.coordinates}
        values = {f: own[f] for f in org_fields if f in own}
        values.update({f: self.extras[f] for f in extra_fields if f in self.extras})
        return values


@dataclass(frozen=True)
class Pedestrian:
    name: str
    kind: str  # honest | sloppy | cheat


#: What a spammer always answers: the pool's positive (accept) or negative (reject) label.
SPAM_ANSWERS = ("positive", "negative")


@dataclass(frozen=True)
class ControlTasks:
    """Control tasks (``known_solutions``) the emulator puts into a verification pool at set-up.

    ``tasks`` are made (about ``positive_share`` of them with the positive label as the known
    answer), and a checker's assignment carries one next to a real task with the probability
    that makes about ``share`` of the tasks a checker sees control tasks (``share / (1 - share)``
    per real task).
    """

    tasks: int
    share: float
    positive_share: float = 0.5

    @property
    def per_real_task(self) -> float:
        return self.share / (1.0 - self.share)


@dataclass(frozen=True)
class VerificationCrowd:
    """The workers of one verification pool; accuracies are drawn (seeded) from a range.

    ``workers`` good checkers with ``accuracy``; then ``careless`` ones with
    ``careless_accuracy`` and ``spammers`` who always give the same label (``spam_answer``:
    positive or negative). ``control`` puts control tasks into the pool.
    """

    workers: int
    accuracy: tuple[float, float]
    careless: int = 0
    careless_accuracy: tuple[float, float] = (0.5, 0.6)
    spammers: int = 0
    spam_answer: str = "positive"
    control: ControlTasks | None = None

    @property
    def total(self) -> int:
        """Every checker of the pool, of all kinds."""
        return self.workers + self.careless + self.spammers


@dataclass(frozen=True)
class ApiSettings:
    """How the emulated API behaves while this scenario is loaded (unless the emulator was
    started with explicit settings): asynchronous creates answer with an operation that stays
    RUNNING for ``operation_running_seconds`` (wall clock) and the first
    ``operation_running_polls`` GETs of it before it is SUCCESS."""

    operation_running_seconds: float = 0.0
    operation_running_polls: int = 0


@dataclass(frozen=True)
class Pace:
    """How long simulated work takes, in simulated seconds (divided by ``speed`` for real time)."""

    pedestrian_seconds: tuple[float, float]
    pedestrian_start_seconds: tuple[float, float]
    verification_seconds_per_task: tuple[float, float]
    tasks_per_assignment: tuple[int, int]


@dataclass(frozen=True)
class PoolSettings:
    reward: Decimal
    overlap: int
    auto_accept_solutions: bool
    auto_accept_period_day: int | None
    assignment_max_duration_seconds: int


@dataclass(frozen=True)
class AnswerLabels:
    """Answer field and its two labels of a verification pool (positive first)."""

    answer_field: str
    accept_label: str
    reject_label: str


@dataclass(frozen=True)
class Fields:
    """Pedestrian field names and labels, and the verification answers (as in toloka.ini)."""

    org_fields: tuple[str, ...] = ("name", "address", "coordinates")
    extra_fields: tuple[str, ...] = ("segment", "phone", "website")
    verdict_field: str = "verdict"
    verdict_ok: str = "ok"
    verdict_no_org: str = "no_org"
    worker_coordinates_field: str = "worker_coordinates"
    comment_field: str = "comment"
    #: main photo field -> photo kind it must show (dict order = field order)
    main_fields: dict[str, str] = field(
        default_factory=lambda: {
            "imgs_facade": "facade",
            "name_business": "signboard",
            "hoo_business": "opening_hours",
            "imgs_name_address": "address_plate",
        }
    )
    required_fields: tuple[str, ...] = ("imgs_facade", "name_business", "imgs_name_address")
    bonus_fields: dict[str, str] = field(
        default_factory=lambda: {
            "imgs_interior": "interior",
            "imgs_covid_policy": "covid_policy",
            "imgs_outdoor_seating": "outdoor_seating",
            "imgs_menu": "menu",
        }
    )
    bonus_flags: tuple[str, ...] = (
        "can_take_interior",
        "can_take_covid_policy",
        "can_take_outdoor_seating",
        "can_take_menu",
    )
    bonus_flag_yes: str = "yes"
    bonus_flag_no: str = "no"
    visit: AnswerLabels = AnswerLabels("result", "yes", "no")
    quality: AnswerLabels = AnswerLabels("result", "ok", "bad")
    relevance: AnswerLabels = AnswerLabels("result", "relevant", "not_relevant")

    @property
    def photo_fields(self) -> dict[str, str]:
        """Every photo field (main then bonus) -> the kind of photo it asks for."""
        return {**self.main_fields, **self.bonus_fields}

    def labels(self, pool: str) -> AnswerLabels:
        return {"visit": self.visit, "quality": self.quality, "relevance": self.relevance}[pool]

    def flag_of(self, bonus_field: str) -> str:
        """The ``can_take_<x>`` flag that goes with a bonus field (same position)."""
        return self.bonus_flags[list(self.bonus_fields).index(bonus_field)]


@dataclass(frozen=True)
class Behaviour:
    """Probabilities that shape what pedestrians submit."""

    sloppy_bad_photo_rate: float = 0.45
    sloppy_wrong_kind_rate: float = 0.15
    honest_bad_photo_rate: float = 0.03
    bonus_photo_rate: float = 0.6
    extra_photo_rate: float = 0.2
    hostile_comment_rate: float = 0.35
    cheat_no_org_rate: float = 0.3
    broken_link_rate: float = 0.0  # share of photo fetches that fail (simulates a dead link)


@dataclass(frozen=True)
class Scenario:
    """A validated pedestrian scenario (``"kind": "pedestrian"``, the default)."""

    kind: ClassVar[str] = "pedestrian"

    name: str
    organizations: tuple[Organization, ...]
    pedestrians: tuple[Pedestrian, ...]
    verification: dict[str, VerificationCrowd]
    pace: Pace
    pools: dict[str, PoolSettings]
    fields: Fields
    behaviour: Behaviour
    source: dict[str, Any]  # the validated JSON document, for hashing and re-export
    api: ApiSettings | None = None

    @property
    def digest(self) -> str:
        """A stable fingerprint: setup() refuses to mix two different scenarios in one store."""
        blob = json.dumps(self.source, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def organization(self, org_id: str) -> Organization:
        for org in self.organizations:
            if org.id == org_id:
                return org
        raise KeyError(org_id)


# ---------------------------------------------------------------- validation helpers


def _obj(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ScenarioError(where, "a JSON object", value)
    return value


def _unknown(doc: dict[str, Any], allowed: set[str], where: str) -> None:
    extra = sorted(set(doc) - allowed)
    if extra:
        raise ScenarioError(where, f"only keys {sorted(allowed)}", extra)


def _str(value: object, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ScenarioError(where, "a non-empty string", value)
    return value


def _bool(value: object, where: str) -> bool:
    if not isinstance(value, bool):
        raise ScenarioError(where, "true or false", value)
    return value


def _int(value: object, where: str, minimum: int = 0) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ScenarioError(where, f"an integer >= {minimum}", value)
    return value


def _prob(value: object, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise ScenarioError(where, "a number between 0 and 1", value)
    return float(value)


def _range(
    value: object, where: str, *, lo: float = 0.0, hi: float | None = None, integer: bool = False
) -> tuple[Any, Any]:
    kind = "integers" if integer else "numbers"
    bounds = f">= {lo}" + ("" if hi is None else f" and <= {hi}")
    expected = f"[min, max] of {kind} {bounds} with min <= max"
    if not isinstance(value, list) or len(value) != 2:
        raise ScenarioError(where, expected, value)
    for v in value:
        bad_type = isinstance(v, bool) or not isinstance(v, int if integer else (int, float))
        if bad_type or v < lo or (hi is not None and v > hi):
            raise ScenarioError(where, expected, value)
    if value[0] > value[1]:
        raise ScenarioError(where, expected, value)
    return (value[0], value[1]) if integer else (float(value[0]), float(value[1]))


def _names(value: object, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise ScenarioError(where, "a non-empty list of names", value)
    names = tuple(_str(v, f"{where}[{i}]") for i, v in enumerate(value))
    if len(set(names)) != len(names):
        raise ScenarioError(where, "names without duplicates", value)
    return names


def _coordinates(value: object, where: str) -> str:
    text = _str(value, where)
    parts = text.split(",")
    try:
        lat, lon = (float(p) for p in parts)
    except ValueError:
        raise ScenarioError(where, '"lat,lon" with numbers', value) from None
    if len(parts) != 2 or not (-90 <= lat <= 90 and -180 <= lon <= 180):
        raise ScenarioError(where, '"lat,lon" within -90..90, -180..180', value)
    return text


def _decimal(value: object, where: str) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ScenarioError(where, 'a decimal amount such as "0.05"', value)
    try:
        amount = Decimal(str(value))
    except InvalidOperation:
        raise ScenarioError(where, 'a decimal amount such as "0.05"', value) from None
    if not amount.is_finite() or amount < 0:
        raise ScenarioError(where, "a non-negative decimal amount", value)
    return amount


def _photo_map(value: object, where: str) -> dict[str, str]:
    doc = _obj(value, where)
    if not doc:
        raise ScenarioError(where, "at least one photo field", value)
    for name, kind in doc.items():
        _str(name, f"{where} key")
        if kind not in PHOTO_KINDS:
            raise ScenarioError(f"{where}.{name}", f"one of {list(PHOTO_KINDS)}", kind)
    return dict(doc)


# ---------------------------------------------------------------- sections


def _parse_fields(value: object) -> Fields:
    if value is None:
        return Fields()
    doc = _obj(value, "fields")
    d = Fields()
    allowed = set(Fields.__dataclass_fields__)
    _unknown(doc, allowed, "fields")
    out: dict[str, Any] = {}
    for key in ("verdict_field", "verdict_ok", "verdict_no_org", "worker_coordinates_field", "comment_field",
                "bonus_flag_yes", "bonus_flag_no"):
        out[key] = _str(doc[key], f"fields.{key}") if key in doc else getattr(d, key)
    for key in ("org_fields", "extra_fields", "required_fields", "bonus_flags"):
        out[key] = _names(doc[key], f"fields.{key}") if key in doc else getattr(d, key)
    for key in ("main_fields", "bonus_fields"):
        out[key] = _photo_map(doc[key], f"fields.{key}") if key in doc else getattr(d, key)
    for pool in VERIFICATION_POOLS:
        if pool in doc:
            sub = _obj(doc[pool], f"fields.{pool}")
            _unknown(sub, {"answer_field", "accept_label", "reject_label"}, f"fields.{pool}")
            base = getattr(d, pool)
            labels = AnswerLabels(
                _str(sub.get("answer_field", base.answer_field), f"fields.{pool}.answer_field"),
                _str(sub.get("accept_label", base.accept_label), f"fields.{pool}.accept_label"),
                _str(sub.get("reject_label", base.reject_label), f"fields.{pool}.reject_label"),
            )
            if labels.accept_label == labels.reject_label:
                raise ScenarioError(f"fields.{pool}", "two different labels", sub)
            out[pool] = labels
        else:
            out[pool] = getattr(d, pool)
    fields = Fields(**out)
    if not set(fields.org_fields) <= {"name", "address", "coordinates"}:
        raise ScenarioError("fields.org_fields", "a subset of name, address, coordinates", list(fields.org_fields))
    missing = [f for f in fields.required_fields if f not in fields.main_fields]
    if missing:
        raise ScenarioError("fields.required_fields", "main fields only", missing)
    if len(fields.bonus_flags) != len(fields.bonus_fields):
        raise ScenarioError("fields.bonus_flags", f"one flag per bonus field ({len(fields.bonus_fields)})",
                            list(fields.bonus_flags))
    if set(fields.main_fields) & set(fields.bonus_fields):
        raise ScenarioError("fields.bonus_fields", "names distinct from main_fields", list(fields.bonus_fields))
    if fields.verdict_ok == fields.verdict_no_org:
        raise ScenarioError("fields.verdict_no_org", "a label different from verdict_ok", fields.verdict_no_org)
    return fields


def _parse_org(value: object, i: int, fields: Fields) -> Organization:
    where = f"organizations[{i}]"
    doc = _obj(value, where)
    _unknown(doc, {"id", "name", "address", "coordinates", "exists", "extras"}, where)
    for key in ("id", "name", "address", "coordinates"):
        if key not in doc:
            raise ScenarioError(f"{where}.{key}", "a value", None)
    extras = _obj(doc.get("extras", {}), f"{where}.extras")
    for k, v in extras.items():
        if not isinstance(v, str):
            raise ScenarioError(f"{where}.extras.{k}", "a string", v)
    return Organization(
        id=_str(doc["id"], f"{where}.id"),
        name=_str(doc["name"], f"{where}.name"),
        address=_str(doc["address"], f"{where}.address"),
        coordinates=_coordinates(doc["coordinates"], f"{where}.coordinates"),
        exists=_bool(doc.get("exists", True), f"{where}.exists"),
        extras=dict(extras),
    )


def _parse_pools(value: object) -> dict[str, PoolSettings]:
    doc = _obj(value, "pools")
    _unknown(doc, set(POOL_KINDS), "pools")
    pools: dict[str, PoolSettings] = {}
    for kind in POOL_KINDS:
        where = f"pools.{kind}"
        if kind not in doc:
            raise ScenarioError(where, "a pool object", None)
        reviewed = kind == "pedestrian"
        pools[kind] = parse_pool_settings(
            doc[kind], where, reviewed=reviewed, why_reviewed="pedestrian work is reviewed",
            default_overlap=1 if reviewed else 3, default_duration=86400 if reviewed else 1200,
            period_required=reviewed,
        )
    return pools


def parse_pool_settings(value: object, where: str, *, reviewed: bool, why_reviewed: str, default_overlap: int,
                        default_duration: int, period_required: bool) -> PoolSettings:
    """One pool's settings; a ``reviewed`` pool must not auto-accept and has a 7-day review period by default."""
    p = _obj(value, where)
    _unknown(p, {"reward", "overlap", "auto_accept_solutions", "auto_accept_period_day",
                 "assignment_max_duration_seconds"}, where)
    if "reward" not in p:
        raise ScenarioError(f"{where}.reward", "a decimal amount", None)
    overlap = _int(p.get("overlap", default_overlap), f"{where}.overlap", 1)
    auto = _bool(p.get("auto_accept_solutions", not reviewed), f"{where}.auto_accept_solutions")
    if reviewed and auto:
        raise ScenarioError(f"{where}.auto_accept_solutions", f"false ({why_reviewed})", auto)
    period = p.get("auto_accept_period_day", 7 if reviewed else None)
    if period is not None:
        period = _int(period, f"{where}.auto_accept_period_day", 1)
    if period_required and period is None:
        raise ScenarioError(f"{where}.auto_accept_period_day", "a number of days", None)
    return PoolSettings(
        reward=_decimal(p["reward"], f"{where}.reward"),
        overlap=overlap,
        auto_accept_solutions=auto,
        auto_accept_period_day=period,
        assignment_max_duration_seconds=_int(p.get("assignment_max_duration_seconds", default_duration),
                                             f"{where}.assignment_max_duration_seconds", 60),
    )


def _parse_pace(value: object) -> Pace:
    doc = _obj(value, "pace")
    allowed = {"pedestrian_seconds", "pedestrian_start_seconds", "verification_seconds_per_task",
               "tasks_per_assignment"}
    _unknown(doc, allowed, "pace")
    for key in allowed:
        if key not in doc:
            raise ScenarioError(f"pace.{key}", "[min, max]", None)
    return Pace(
        pedestrian_seconds=_range(doc["pedestrian_seconds"], "pace.pedestrian_seconds", lo=1),
        pedestrian_start_seconds=_range(doc["pedestrian_start_seconds"], "pace.pedestrian_start_seconds"),
        verification_seconds_per_task=_range(doc["verification_seconds_per_task"],
                                             "pace.verification_seconds_per_task", lo=1),
        tasks_per_assignment=_range(doc["tasks_per_assignment"], "pace.tasks_per_assignment", lo=1, integer=True),
    )


def _parse_behaviour(value: object) -> Behaviour:
    if value is None:
        return Behaviour()
    doc = _obj(value, "behaviour")
    allowed = set(Behaviour.__dataclass_fields__)
    _unknown(doc, allowed, "behaviour")
    return Behaviour(**{k: _prob(v, f"behaviour.{k}") for k, v in doc.items()})


# ---------------------------------------------------------------- organizations, pedestrians, checkers

_ORG_WORDS = ("Blue", "Green", "Golden", "Silver", "Red", "Old", "New", "Little", "Grand", "Happy", "Quiet",
              "Sunny", "North", "South", "River", "Garden", "Corner", "Urban", "Maple", "Cedar")
_ORG_NOUNS = ("Door", "Fork", "Leaf", "Key", "Lamp", "Bridge", "Anchor", "Owl", "Fox", "Bear", "Spoon",
              "Window", "Tower", "Star", "Wheel", "Cup", "Pine", "Stone", "Harbor", "Bell")
_ORG_SEGMENTS = (("cafe", "Coffee"), ("shop", "Store"), ("restaurant", "Bistro"), ("service", "Repair"),
                 ("pharmacy", "Pharmacy"), ("bakery", "Bakery"), ("shop", "Books"), ("service", "Laundry"),
                 ("entertainment", "Karaoke"), ("shop", "Flowers"))
_STREETS = ("Linden Street", "Market Square", "River Embankment", "Tram Lane", "Garden Ring", "Polar Avenue",
            "Spice Row", "Cyclist Yard", "Baker's Passage", "Old Wall Street", "Night Boulevard", "Station Road",
            "Mill Lane", "Harbour Street", "Chestnut Alley", "Bell Tower Square")


def _generate_organizations(value: object) -> tuple[Organization, ...]:
    """``{"generate": N, "missing_share", "center", "radius_m", "seed"}``: N organizations around
    ``center``, ``round(N * missing_share)`` of which do not exist; a pure function of the spec."""
    where = "organizations"
    doc = _obj(value, where)
    _unknown(doc, {"generate", "missing_share", "center", "radius_m", "seed"}, where)
    count = _int(doc.get("generate"), f"{where}.generate", 2)
    missing = round(count * _prob(doc.get("missing_share", 0.1), f"{where}.missing_share"))
    lat0, lon0 = (float(x) for x in _coordinates(doc.get("center", "55.7558,37.6173"), f"{where}.center").split(","))
    radius = doc.get("radius_m", 8000)
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or radius <= 0:
        raise ScenarioError(f"{where}.radius_m", "a positive number of meters", radius)
    rng = random.Random(f"organizations:{_int(doc.get('seed', 0), f'{where}.seed')}:{count}")
    absent = set(rng.sample(range(count), min(missing, count - 2)))
    orgs = []
    for i in range(count):
        segment, word = rng.choice(_ORG_SEGMENTS)
        name = f"{rng.choice(_ORG_WORDS)} {rng.choice(_ORG_NOUNS)} {word}"
        address = f"{i + 1} {rng.choice(_STREETS)}"
        distance = radius * math.sqrt(rng.random())
        angle = rng.random() * 2 * math.pi
        lat = lat0 + distance * math.cos(angle) / 111320.0
        lon = lon0 + distance * math.sin(angle) / (111320.0 * max(0.01, math.cos(math.radians(lat0))))
        slug = name.lower().replace(" ", "")
        orgs.append(Organization(
            id=f"org-{i + 1:03d}", name=name, address=address, coordinates=f"{lat:.5f},{lon:.5f}",
            exists=i not in absent,
            extras={"segment": segment, "phone": f"+7 495 {200 + i // 100:03d}-{i % 100:02d}-{rng.randint(10, 99)}",
                    "website": "" if rng.random() < 0.2 else f"https://{slug}-{i + 1}.example"}))
    return tuple(orgs)


def _parse_organizations(value: object, fields: Fields) -> tuple[Organization, ...]:
    """A list of organizations, or ``{"generate": N, ...}`` (see :func:`_generate_organizations`)."""
    if isinstance(value, dict):
        orgs = _generate_organizations(value)
    elif isinstance(value, list) and value:
        orgs = tuple(_parse_org(o, i, fields) for i, o in enumerate(value))
    else:
        raise ScenarioError("organizations", 'a non-empty list or {"generate": N, ...}', value)
    ids = [o.id for o in orgs]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ScenarioError("organizations", "unique ids", dup)
    if sum(o.exists for o in orgs) < 2:
        # cheats photograph *another* existing organization, so there must be one to show
        raise ScenarioError("organizations", "at least two organizations that exist", sum(o.exists for o in orgs))
    return orgs


def _parse_pedestrians(value: object) -> tuple[Pedestrian, ...]:
    """A list of ``{"name", "kind"}``, or counts per kind ``{"honest": 28, "sloppy": 6, "cheat": 6}``
    (named ``honest-01``, ``sloppy-01``...)."""
    peds: list[Pedestrian] = []
    if isinstance(value, dict):
        _unknown(value, set(PEDESTRIAN_KINDS), "pedestrians")
        for kind in PEDESTRIAN_KINDS:
            count = _int(value.get(kind, 0), f"pedestrians.{kind}")
            peds.extend(Pedestrian(f"{kind}-{i + 1:02d}", kind) for i in range(count))
        if not peds:
            raise ScenarioError("pedestrians", "at least one pedestrian", value)
        return tuple(peds)
    if not isinstance(value, list) or not value:
        raise ScenarioError("pedestrians", "a non-empty list or counts per kind", value)
    for i, p in enumerate(value):
        pd = _obj(p, f"pedestrians[{i}]")
        _unknown(pd, {"name", "kind"}, f"pedestrians[{i}]")
        ped_kind = pd.get("kind")
        if ped_kind not in PEDESTRIAN_KINDS:
            raise ScenarioError(f"pedestrians[{i}].kind", f"one of {list(PEDESTRIAN_KINDS)}", ped_kind)
        peds.append(Pedestrian(_str(pd.get("name"), f"pedestrians[{i}].name"), str(ped_kind)))
    names = [p.name for p in peds]
    if len(set(names)) != len(names):
        raise ScenarioError("pedestrians", "unique names", names)
    return tuple(peds)


def _group_size(doc: dict[str, Any], where: str) -> tuple[int | None, float]:
    """(count, 0) for ``{"workers": n}``, (None, share) for ``{"share": x}``."""
    if ("workers" in doc) == ("share" in doc):
        raise ScenarioError(where, 'either "workers" (a count) or "share" (of the pool\'s checkers)', doc)
    if "workers" in doc:
        return _int(doc["workers"], f"{where}.workers"), 0.0
    share = _prob(doc["share"], f"{where}.share")
    if share >= 1:
        raise ScenarioError(f"{where}.share", "a share below 1", share)
    return None, share


def _parse_control(value: object, where: str) -> ControlTasks | None:
    if value is None:
        return None
    doc = _obj(value, where)
    _unknown(doc, {"tasks", "share", "positive_share"}, where)
    share = _prob(doc.get("share"), f"{where}.share")
    if not 0 < share <= 0.5:
        raise ScenarioError(f"{where}.share", "a share of the tasks a checker sees, > 0 and <= 0.5", share)
    return ControlTasks(tasks=_int(doc.get("tasks"), f"{where}.tasks", 1), share=share,
                        positive_share=_prob(doc.get("positive_share", 0.5), f"{where}.positive_share"))


def _parse_crowd(value: object, where: str) -> VerificationCrowd:
    v = _obj(value, where)
    _unknown(v, {"workers", "accuracy", "careless", "spammers", "control"}, where)
    workers = _int(v.get("workers"), f"{where}.workers", 1)
    accuracy = _range(v.get("accuracy"), f"{where}.accuracy", lo=0.0, hi=1.0)
    careless_doc = _obj(v.get("careless", {"workers": 0}), f"{where}.careless")
    _unknown(careless_doc, {"workers", "share", "accuracy"}, f"{where}.careless")
    spam_doc = _obj(v.get("spammers", {"workers": 0}), f"{where}.spammers")
    _unknown(spam_doc, {"workers", "share", "answer"}, f"{where}.spammers")
    careless_n, careless_share = _group_size(careless_doc, f"{where}.careless")
    spam_n, spam_share = _group_size(spam_doc, f"{where}.spammers")
    shares = careless_share + spam_share
    if shares >= 1:
        raise ScenarioError(where, "careless and spammer shares that add up to less than 1", shares)
    # A share is of the pool's whole crowd: the fixed counts make up the rest.
    fixed = workers + (careless_n or 0) + (spam_n or 0)
    total = fixed / (1.0 - shares)
    careless = careless_n if careless_n is not None else round(total * careless_share)
    spammers = spam_n if spam_n is not None else round(total * spam_share)
    careless_accuracy = (0.5, 0.6)
    if careless and "accuracy" not in careless_doc:
        raise ScenarioError(f"{where}.careless.accuracy", "[min, max] of the careless checkers' accuracy", None)
    if "accuracy" in careless_doc:
        careless_accuracy = _range(careless_doc["accuracy"], f"{where}.careless.accuracy", lo=0.0, hi=1.0)
    answer = spam_doc.get("answer", "positive")
    if answer not in SPAM_ANSWERS:
        raise ScenarioError(f"{where}.spammers.answer", f"one of {list(SPAM_ANSWERS)}", answer)
    return VerificationCrowd(workers=workers, accuracy=accuracy, careless=careless,
                             careless_accuracy=careless_accuracy, spammers=spammers, spam_answer=answer,
                             control=_parse_control(v.get("control"), f"{where}.control"))


def _parse_verification(value: object, pools: dict[str, PoolSettings]) -> dict[str, VerificationCrowd]:
    ver = _obj(value, "verification")
    _unknown(ver, set(VERIFICATION_POOLS), "verification")
    verification: dict[str, VerificationCrowd] = {}
    for pool in VERIFICATION_POOLS:
        crowd = verification[pool] = _parse_crowd(ver.get(pool), f"verification.{pool}")
        if crowd.total < pools[pool].overlap:
            raise ScenarioError(f"verification.{pool}.workers", f">= the pool overlap ({pools[pool].overlap})",
                                crowd.total)
    return verification


def _parse_api(value: object) -> ApiSettings | None:
    if value is None:
        return None
    doc = _obj(value, "api")
    _unknown(doc, {"operation_running_seconds", "operation_running_polls"}, "api")
    seconds = doc.get("operation_running_seconds", 0)
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not 0 <= seconds <= 3600:
        raise ScenarioError("api.operation_running_seconds", "a number of seconds within 0..3600", seconds)
    polls = _int(doc.get("operation_running_polls", 0), "api.operation_running_polls")
    return ApiSettings(float(seconds), polls)


#: The scenario kinds: what ``"kind"`` at the top of a document may say (default pedestrian).
SCENARIO_KINDS = ("pedestrian", "find_items")


def parse_scenario(doc: object) -> Scenario | FindItemsScenario:
    """Validate a scenario JSON document (already decoded): a :class:`Scenario` for the
    pedestrian kind (no ``"kind"``, or ``"pedestrian"``), a
    :class:`~emulator.crowd.find_items_scenario.FindItemsScenario` for ``"find_items"``."""
    top = _obj(doc, "(top level)")
    kind = top.get("kind", "pedestrian")
    if kind == "find_items":
        from emulator.crowd.find_items_scenario import parse_find_items_scenario  # it imports this module

        return parse_find_items_scenario(top)
    if kind != "pedestrian":
        raise ScenarioError("kind", f"one of {list(SCENARIO_KINDS)}", kind)
    _unknown(top, {"kind", "name", "description", "organizations", "pedestrians", "verification", "pace", "pools",
                   "fields", "behaviour", "api"}, "(top level)")
    name = _str(top.get("name"), "name")
    fields = _parse_fields(top.get("fields"))

    orgs = _parse_organizations(top.get("organizations"), fields)
    peds = _parse_pedestrians(top.get("pedestrians"))
    pools = _parse_pools(top.get("pools"))
    verification = _parse_verification(top.get("verification"), pools)

    return Scenario(
        name=name,
        organizations=orgs,
        pedestrians=peds,
        verification=verification,
        pace=_parse_pace(top.get("pace")),
        pools=pools,
        fields=fields,
        behaviour=_parse_behaviour(top.get("behaviour")),
        source=copy.deepcopy(top),
        api=_parse_api(top.get("api")),
    )


def builtin_scenarios() -> list[str]:
    """Names accepted by :func:`load_scenario_file` without a path."""
    return sorted(p.stem for p in SCENARIO_DIR.glob("*.json"))


def load_scenario_file(path_or_name: str | os.PathLike[str]) -> Scenario | FindItemsScenario:
    """Load a scenario by built-in name (``"demo"``, ``"find_items"``) or from a JSON file path;
    the document's ``kind`` decides the class (see :func:`parse_scenario`)."""
    text_name = os.fspath(path_or_name)
    builtin = SCENARIO_DIR / f"{text_name}.json"
    path = builtin if "/" not in text_name and builtin.is_file() else Path(text_name)
    try:
        raw = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(
            "file", f"a readable JSON file or a built-in name ({', '.join(builtin_scenarios())})",
            f"{text_name} ({exc.strerror})") from None
    try:
        doc = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ScenarioError("file", "valid JSON", f"{path}: {exc}") from None
    return parse_scenario(doc)
