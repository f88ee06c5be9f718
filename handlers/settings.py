"""The pedestrian pipeline's INI sections, parsed into typed settings.

``[PedestrianProject]`` (the field pool and the names of its inputs and outputs)
and the three ``[Validation*]`` sections (one verification pool each). Every
mistake raises :class:`~common.errors.ConfigError` naming section, key,
expected and found, including cross-field mistakes (required fields that are
not main fields, flags that do not match bonus fields, equal accept/reject
labels, one pool used twice).

Each handler reads only its own pool's section. The one cross-section default
is resolved here: a ``[ValidationVisit]`` without ``accept_comment`` (the
comment of accepting work whose organization does not exist) takes
``[ValidationRelevance] accept_comment``, as the v1 daemon did.
"""

from __future__ import annotations

import configparser
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Literal

from aggregation.evidence import FALLBACKS, Policy
from common import ini
from common.errors import ConfigError
from engine.config import list_may_be_empty, optional_str, pool_id_of, shown

Event = Literal["submitted", "accepted"]
Aggregation = Literal["MajorityVote", "DawidSkene", "Wawa"]
AGGREGATIONS: tuple[Aggregation, ...] = ("MajorityVote", "DawidSkene", "Wawa")
EVENTS: tuple[Event, ...] = ("submitted", "accepted")

DEFAULT_MAIN_FIELDS = ("imgs_facade", "name_business", "hoo_business", "imgs_name_address")
DEFAULT_REQUIRED_FIELDS = ("imgs_facade", "name_business", "imgs_name_address")
DEFAULT_BONUS_FIELDS = ("imgs_interior", "imgs_covid_policy", "imgs_outdoor_seating", "imgs_menu")
DEFAULT_BONUS_FLAGS = ("can_take_interior", "can_take_covid_policy", "can_take_outdoor_seating", "can_take_menu")
DEFAULT_ACCEPT_COMMENT = "Good job"

VALIDATION_SECTIONS = ("ValidationVisit", "ValidationQuality", "ValidationRelevance")
#: The dynamic-overlap policy's keys; any of them switches a pool from fixed ``overlap`` to the policy.
POLICY_KEYS = ("min_overlap", "max_overlap", "confidence", "reject_confidence", "fallback")
RESTRICT_KEYS = ("restrict_below", "restrict_after_controls")
#: The recommended policy (what ``toloka.ini`` and the emulator's ``--config-out`` write).
RECOMMENDED_POLICY = Policy(min_overlap=2, max_overlap=17, confidence=0.99, reject_confidence=0.99, fallback="lean")
_VALIDATION_KEYS = frozenset({
    "pool_id", "skill_id", "event", "overlap", "answer_field", "accept_label", "reject_label",
    "aggregation", "default_skill", "reject_comment", "accept_comment", *POLICY_KEYS, *RESTRICT_KEYS,
})
SECTIONS: dict[str, frozenset[str]] = {
    "PedestrianProject": frozenset({
        "pool_id", "event", "org_fields", "extra_fields", "verdict_field", "verdict_ok", "verdict_no_org",
        "worker_coordinates_field", "comment_field", "main_fields", "required_fields", "bonus_fields",
        "bonus_flags", "bonus_flag_yes", "bonus_per_field", "org_coordinates_field", "max_distance_m",
        "restrict_after_rejections",
    }),
    **dict.fromkeys(VALIDATION_SECTIONS, _VALIDATION_KEYS),
}


@dataclass(frozen=True, slots=True)
class PedestrianSettings:
    """``[PedestrianProject]``: the field pool and the names of its inputs and outputs."""

    pool_id: str
    event: Event
    org_fields: tuple[str, ...]
    extra_fields: tuple[str, ...]
    verdict_field: str
    verdict_ok: str
    verdict_no_org: str
    worker_coordinates_field: str
    comment_field: str
    main_fields: tuple[str, ...]
    required_fields: tuple[str, ...]
    bonus_fields: tuple[str, ...]
    bonus_flags: tuple[str, ...]
    bonus_flag_yes: str
    bonus_per_field: Decimal
    org_coordinates_field: str = "coordinates"  # the task input with the organization's "lat,lon"
    max_distance_m: float = 500.0  # worker coordinates beyond this count against a visit (0: no check)
    restrict_after_rejections: int = 0  # "Incorrect object" rejections that bar a pedestrian (0: never)

    def bonus_flag_of(self, bonus_field: str) -> str:
        """The flag output (e.g. ``can_take_menu``) that enables ``bonus_field``."""
        return self.bonus_flags[self.bonus_fields.index(bonus_field)]


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """One verification pool (``[ValidationVisit]``, ``[ValidationQuality]``, ``[ValidationRelevance]``)."""

    section: str
    pool_id: str
    skill_id: str | None  # None: every worker weighs default_skill
    event: Event
    overlap: int  # the overlap tasks are created with (min_overlap under a policy)
    answer_field: str
    accept_label: str
    reject_label: str
    aggregation: Aggregation
    default_skill: float
    reject_comment: str
    accept_comment: str
    policy: Policy | None = None  # None: fixed overlap, the aggregation method's label decides
    restrict_below: float | None = None  # learned accuracy under which a checker is barred (None: never)
    restrict_after_controls: int = 10  # ... once they answered at least this many control tasks


@dataclass(frozen=True, slots=True)
class PedestrianConfig:
    """The four pools' settings: what the pedestrian handlers read."""

    pedestrian: PedestrianSettings
    visit: ValidationSettings
    quality: ValidationSettings
    relevance: ValidationSettings

    def pools(self) -> dict[str, str]:
        """Pool name -> pool id, in flow order."""
        return {
            "pedestrian": self.pedestrian.pool_id,
            "visit": self.visit.pool_id,
            "quality": self.quality.pool_id,
            "relevance": self.relevance.pool_id,
        }


def parse(cfg: configparser.ConfigParser) -> PedestrianConfig:
    """All four sections, checked, with the one cross-section default resolved.

    Every section is read even when an earlier one has mistakes; they are raised together.
    """
    with ini.collecting() as problems:
        pedestrian = problems.section(lambda: parse_pedestrian(cfg))
        relevance = problems.section(lambda: parse_validation(cfg, "ValidationRelevance", DEFAULT_ACCEPT_COMMENT))
        comment = relevance.accept_comment if relevance is not None else DEFAULT_ACCEPT_COMMENT
        visit = problems.section(lambda: parse_validation(cfg, "ValidationVisit", comment))
        quality = problems.section(lambda: parse_validation(cfg, "ValidationQuality", comment))
        problems.raise_if_any()
    assert pedestrian is not None and visit is not None and quality is not None and relevance is not None
    _check_distinct_pools(pedestrian, (visit, quality, relevance))
    return PedestrianConfig(pedestrian=pedestrian, visit=visit, quality=quality, relevance=relevance)


def parse_pedestrian(cfg: configparser.ConfigParser) -> PedestrianSettings:
    """``[PedestrianProject]`` with its cross-field checks."""
    s = "PedestrianProject"
    main_fields = tuple(ini.get_list(cfg, s, "main_fields", DEFAULT_MAIN_FIELDS))
    required = tuple(ini.get_list(cfg, s, "required_fields", DEFAULT_REQUIRED_FIELDS))
    bonus_fields = list_may_be_empty(cfg, s, "bonus_fields", DEFAULT_BONUS_FIELDS)
    bonus_flags = list_may_be_empty(cfg, s, "bonus_flags", DEFAULT_BONUS_FLAGS)
    keys = ini.Gather(s)  # a missing pool_id or bonus_per_field does not hide the other keys' mistakes
    pool_id = keys.read(lambda: pool_id_of(cfg, s))
    bonus_per_field = keys.read(lambda: ini.get_decimal(cfg, s, "bonus_per_field", minimum=Decimal(0)))
    settings = PedestrianSettings(
        pool_id=pool_id or "",  # a placeholder only when keys.done() below raises
        event=ini.get_choice(cfg, s, "event", EVENTS, "submitted"),
        org_fields=tuple(ini.get_list(cfg, s, "org_fields", ("name", "address", "coordinates"))),
        extra_fields=list_may_be_empty(cfg, s, "extra_fields", ()),
        verdict_field=ini.get_str(cfg, s, "verdict_field", "verdict"),
        verdict_ok=ini.get_str(cfg, s, "verdict_ok", "ok"),
        verdict_no_org=ini.get_str(cfg, s, "verdict_no_org", "no_org"),
        worker_coordinates_field=ini.get_str(cfg, s, "worker_coordinates_field", "worker_coordinates"),
        comment_field=ini.get_str(cfg, s, "comment_field", "comment"),
        main_fields=main_fields,
        required_fields=required,
        bonus_fields=bonus_fields,
        bonus_flags=bonus_flags,
        bonus_flag_yes=ini.get_str(cfg, s, "bonus_flag_yes", "yes"),
        bonus_per_field=bonus_per_field or Decimal(0),
        org_coordinates_field=ini.get_str(cfg, s, "org_coordinates_field", "coordinates"),
        max_distance_m=ini.get_float(cfg, s, "max_distance_m", 500.0, minimum=0.0),
        restrict_after_rejections=ini.get_int(cfg, s, "restrict_after_rejections", 0, minimum=0),
    )
    keys.done()
    _check_pedestrian(cfg, settings)
    return settings


def _check_pedestrian(cfg: configparser.ConfigParser, p: PedestrianSettings) -> None:
    s = "PedestrianProject"
    outside = [name for name in p.required_fields if name not in p.main_fields]
    if outside:
        raise ConfigError(
            s, "required_fields",
            f"names taken from main_fields ({', '.join(p.main_fields)}); not there: {', '.join(outside)}",
            shown(cfg, s, "required_fields", p.required_fields),
        )
    both = [name for name in p.bonus_fields if name in p.main_fields]
    if both:
        raise ConfigError(
            s, "bonus_fields", f"names not in main_fields; in both: {', '.join(both)}",
            shown(cfg, s, "bonus_fields", p.bonus_fields),
        )
    if len(p.bonus_flags) != len(p.bonus_fields):
        raise ConfigError(
            s, "bonus_flags",
            f"one flag per bonus field, in the same order ({len(p.bonus_fields)} for "
            f"{', '.join(p.bonus_fields) or 'no bonus fields'}), got {len(p.bonus_flags)}",
            shown(cfg, s, "bonus_flags", p.bonus_flags),
        )
    if p.verdict_ok == p.verdict_no_org:
        raise ConfigError(s, "verdict_no_org", f"a value different from verdict_ok ({p.verdict_ok!r})",
                          p.verdict_no_org)
    overlap = set(p.org_fields) & set(p.extra_fields)
    if overlap:
        raise ConfigError(
            s, "extra_fields", f"names not already in org_fields; in both: {', '.join(sorted(overlap))}",
            shown(cfg, s, "extra_fields", p.extra_fields),
        )


def parse_validation(cfg: configparser.ConfigParser, section: str, accept_comment: str) -> ValidationSettings:
    """One verification section with its checks; ``accept_comment`` is the default of that key."""
    # Every key is read even after a missing one or a refused value, so all of the
    # section's mistakes are reported together (see common/ini.py's Gather).
    keys = ini.Gather(section)
    pool_id = keys.read(lambda: pool_id_of(cfg, section))
    accept = keys.read(lambda: ini.get_str(cfg, section, "accept_label"))
    reject = keys.read(lambda: ini.get_str(cfg, section, "reject_label"))
    if accept is not None and accept == reject:
        keys.refuse(ConfigError(section, "reject_label", f"a label different from accept_label ({accept!r})", reject))
    placeholder: Policy | None = RECOMMENDED_POLICY  # only kept when keys.done() below raises
    policy = keys.check(lambda: parse_policy(cfg, section), placeholder)
    overlap = policy.min_overlap if policy else keys.read(lambda: ini.get_int(cfg, section, "overlap", minimum=1))
    reject_comment = keys.read(lambda: ini.get_str(cfg, section, "reject_comment"))
    settings = ValidationSettings(
        section=section,
        pool_id=pool_id or "",
        skill_id=optional_str(cfg, section, "skill_id"),
        event=ini.get_choice(cfg, section, "event", EVENTS, "accepted"),
        overlap=overlap or 0,
        answer_field=ini.get_str(cfg, section, "answer_field", "result"),
        accept_label=accept or "",
        reject_label=reject or "",
        aggregation=ini.get_choice(cfg, section, "aggregation", AGGREGATIONS, "MajorityVote"),
        default_skill=ini.get_float(cfg, section, "default_skill", 50.0, minimum=0.0, maximum=100.0),
        reject_comment=reject_comment or "",
        accept_comment=optional_str(cfg, section, "accept_comment") or accept_comment,
        policy=policy,
        restrict_below=ini.get_float(cfg, section, "restrict_below", None, minimum=0.0, maximum=1.0),
        restrict_after_controls=ini.get_int(cfg, section, "restrict_after_controls", 10, minimum=1),
    )
    keys.done()  # raises if anything above was missing or refused: the placeholders never leave
    return settings


def parse_policy(cfg: configparser.ConfigParser, section: str) -> Policy | None:
    """The dynamic-overlap policy of one verification section, or None for a fixed ``overlap``.

    A file written before the policy existed has only ``overlap`` and keeps its
    behaviour. Any policy key switches the pool to the policy; the keys not
    given take the recommended values. ``overlap`` next to them is refused:
    it would be unclear which one counts.
    """
    given = [key for key in POLICY_KEYS if ini.get_str(cfg, section, key, "")]
    if not given:
        return None
    if ini.get_str(cfg, section, "overlap", ""):
        raise ConfigError(
            section, "overlap",
            f"no fixed overlap next to the dynamic policy ({', '.join(given)}); remove overlap or the policy keys",
            cfg.get(section, "overlap"),
        )
    r = RECOMMENDED_POLICY
    low = ini.get_int(cfg, section, "min_overlap", r.min_overlap, minimum=1, maximum=100)
    high = ini.get_int(cfg, section, "max_overlap", max(r.max_overlap, low), minimum=1, maximum=100)
    if high < low:
        raise ConfigError(section, "max_overlap", f"an integer >= min_overlap ({low})", str(high))
    confidence = ini.get_float(cfg, section, "confidence", r.confidence, minimum=0.5, maximum=0.9999)
    reject = ini.get_float(cfg, section, "reject_confidence", max(r.reject_confidence, confidence),
                           minimum=0.5, maximum=0.9999)
    if reject < confidence:
        raise ConfigError(
            section, "reject_confidence",
            f"a probability >= confidence ({confidence:g}): rejecting needs at least as much evidence as accepting",
            str(reject),
        )
    fallback = ini.get_choice(cfg, section, "fallback", FALLBACKS, r.fallback)
    return Policy(min_overlap=low, max_overlap=high, confidence=confidence, reject_confidence=reject,
                  fallback=fallback)


def _check_distinct_pools(pedestrian: PedestrianSettings, validations: Sequence[ValidationSettings]) -> None:
    seen = {pedestrian.pool_id: "PedestrianProject"}
    for v in validations:
        if v.pool_id in seen:
            raise ConfigError(
                v.section, "pool_id", f"a pool id different from [{seen[v.pool_id]}] pool_id", v.pool_id
            )
        seen[v.pool_id] = v.section
