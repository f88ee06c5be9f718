"""The ``find_items`` scenario kind: find a product for a picture, verify it, compare the finds.

It emulates the pipeline of toloka-kit's streaming example (find items -> verification ->
side-by-side). A document with ``"kind": "find_items"`` (the built-in one is
``scenarios/find_items.json``) is validated here into frozen dataclasses, with the same
:class:`~emulator.crowd.scenario.ScenarioError` (JSON path, expected, found) as the
pedestrian kind. :func:`emulator.crowd.scenario.parse_scenario` dispatches on ``kind``.

Field names and labels are fixed by the contract with the daemon (see the constants below).
"""

from __future__ import annotations

import copy
import hashlib
import json
from dataclasses import dataclass
from typing import Any, ClassVar

from emulator.crowd.scenario import (
    PoolSettings,
    ScenarioError,
    VerificationCrowd,
    _int,
    _obj,
    _prob,
    _range,
    _str,
    _unknown,
    parse_pool_settings,
)

KIND = "find_items"
FINDER_KINDS = ("good", "sloppy", "junk")
#: The three pools, in pipeline order (keys of ``setup_result["pools"]``).
FIND_ITEMS_POOLS = ("find_items", "verification", "sbs")
#: The pools whose workers are checkers (a skill each).
CHECK_POOLS = ("verification", "sbs")

IMAGE_FIELD = "image"
LINK_FIELD = "found_link"
ASSIGNMENT_FIELD = "assignment_id"
LEFT_FIELD = "left_link"
RIGHT_FIELD = "right_link"
ANSWER_FIELD = "result"
YES, NO = "Yes", "No"
LEFT, RIGHT = "left", "right"
ACCEPT_COMMENT = "Well done!"
REJECT_COMMENT = "Incorrect object."

#: Candidates per image are drawn from this many similarity recipes (see catalogue.py).
MAX_CANDIDATES = 8


@dataclass(frozen=True)
class Finder:
    """A worker of the find_items pool: ``good``, ``sloppy`` or ``junk`` (a cheat)."""

    name: str
    kind: str


@dataclass(frozen=True)
class CatalogueSettings:
    """Size of the synthetic shop: query images, candidates per image (the first ``matching``
    of them count as a right find), and junk products unrelated to any image."""

    images: int
    candidates: int
    matching: int
    junk_products: int


@dataclass(frozen=True)
class FindItemsPace:
    """Simulated seconds (divided by ``speed`` for real time) of the crowd's work."""

    find_seconds: tuple[float, float]
    find_start_seconds: tuple[float, float]
    verification_seconds_per_task: tuple[float, float]
    tasks_per_assignment: tuple[int, int]


@dataclass(frozen=True)
class FindItemsBehaviour:
    """Probabilities that shape what finders submit."""

    good_wrong_rate: float = 0.1  # a good finder submits a plausible but wrong candidate
    sloppy_wrong_rate: float = 0.6  # a sloppy one does, this often
    junk_unrelated_rate: float = 0.4  # a junk finder links another image's product (else a junk product)


@dataclass(frozen=True)
class FindItemsScenario:
    """A validated find_items scenario (see the module docstring)."""

    kind: ClassVar[str] = KIND

    name: str
    catalogue: CatalogueSettings
    links_per_image: int
    finders: tuple[Finder, ...]
    verification: VerificationCrowd
    sbs: VerificationCrowd
    pace: FindItemsPace
    pools: dict[str, PoolSettings]
    behaviour: FindItemsBehaviour
    source: dict[str, Any]  # the validated JSON document, for hashing and re-export

    @property
    def digest(self) -> str:
        """A stable fingerprint: setup() refuses to mix two different scenarios in one store."""
        blob = json.dumps(self.source, sort_keys=True, ensure_ascii=False).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def checkers(self, pool: str) -> VerificationCrowd:
        """The crowd of a checking pool (``verification`` or ``sbs``)."""
        return {"verification": self.verification, "sbs": self.sbs}[pool]


# ---------------------------------------------------------------- sections


def _crowd(value: object, where: str) -> VerificationCrowd:
    doc = _obj(value, where)
    _unknown(doc, {"workers", "accuracy"}, where)
    return VerificationCrowd(
        workers=_int(doc.get("workers"), f"{where}.workers", 1),
        accuracy=_range(doc.get("accuracy"), f"{where}.accuracy", lo=0.0, hi=1.0),
    )


def _catalogue(value: object) -> CatalogueSettings:
    doc = _obj(value, "catalogue")
    _unknown(doc, {"images", "candidates", "matching", "junk_products"}, "catalogue")
    images = _int(doc.get("images"), "catalogue.images", 2)
    candidates = _int(doc.get("candidates"), "catalogue.candidates", 2)
    if candidates > MAX_CANDIDATES:
        raise ScenarioError("catalogue.candidates", f"an integer between 2 and {MAX_CANDIDATES}", candidates)
    matching = _int(doc.get("matching"), "catalogue.matching", 1)
    if matching > candidates:
        raise ScenarioError("catalogue.matching", f"at most catalogue.candidates ({candidates})", matching)
    junk = _int(doc.get("junk_products"), "catalogue.junk_products", 1)
    return CatalogueSettings(images=images, candidates=candidates, matching=matching, junk_products=junk)


def _finders(value: object) -> tuple[Finder, ...]:
    if not isinstance(value, list) or not value:
        raise ScenarioError("finders", "a non-empty list", value)
    finders = []
    for i, item in enumerate(value):
        where = f"finders[{i}]"
        doc = _obj(item, where)
        _unknown(doc, {"name", "kind"}, where)
        kind = doc.get("kind")
        if kind not in FINDER_KINDS:
            raise ScenarioError(f"{where}.kind", f"one of {list(FINDER_KINDS)}", kind)
        finders.append(Finder(_str(doc.get("name"), f"{where}.name"), kind))
    names = [f.name for f in finders]
    if len(set(names)) != len(names):
        raise ScenarioError("finders", "unique names", names)
    return tuple(finders)


def _pace(value: object) -> FindItemsPace:
    doc = _obj(value, "pace")
    allowed = {"find_seconds", "find_start_seconds", "verification_seconds_per_task", "tasks_per_assignment"}
    _unknown(doc, allowed, "pace")
    for key in sorted(allowed):
        if key not in doc:
            raise ScenarioError(f"pace.{key}", "[min, max]", None)
    return FindItemsPace(
        find_seconds=_range(doc["find_seconds"], "pace.find_seconds", lo=1),
        find_start_seconds=_range(doc["find_start_seconds"], "pace.find_start_seconds"),
        verification_seconds_per_task=_range(doc["verification_seconds_per_task"],
                                             "pace.verification_seconds_per_task", lo=1),
        tasks_per_assignment=_range(doc["tasks_per_assignment"], "pace.tasks_per_assignment", lo=1, integer=True),
    )


def _pools(value: object) -> dict[str, PoolSettings]:
    doc = _obj(value, "pools")
    _unknown(doc, set(FIND_ITEMS_POOLS), "pools")
    pools: dict[str, PoolSettings] = {}
    for kind in FIND_ITEMS_POOLS:
        where = f"pools.{kind}"
        if kind not in doc:
            raise ScenarioError(where, "a pool object", None)
        finding = kind == "find_items"
        pools[kind] = parse_pool_settings(
            doc[kind], where, reviewed=finding, why_reviewed="the requester reviews the finds",
            default_overlap=4 if finding else 3, default_duration=3600 if finding else 1200, period_required=False,
        )
    return pools


def _behaviour(value: object) -> FindItemsBehaviour:
    if value is None:
        return FindItemsBehaviour()
    doc = _obj(value, "behaviour")
    _unknown(doc, set(FindItemsBehaviour.__dataclass_fields__), "behaviour")
    return FindItemsBehaviour(**{k: _prob(v, f"behaviour.{k}") for k, v in doc.items()})


def parse_find_items_scenario(top: dict[str, Any]) -> FindItemsScenario:
    """Validate a decoded find_items scenario document (``top["kind"] == "find_items"``)."""
    _unknown(top, {"kind", "name", "description", "catalogue", "links_per_image", "finders", "verification",
                   "sbs", "pace", "pools", "behaviour"}, "(top level)")
    if top.get("kind") != KIND:
        raise ScenarioError("kind", f'"{KIND}"', top.get("kind"))
    name = _str(top.get("name"), "name")
    if "description" in top and not isinstance(top["description"], str):
        raise ScenarioError("description", "a string", top["description"])
    catalogue = _catalogue(top.get("catalogue"))
    finders = _finders(top.get("finders"))
    verification = _crowd(top.get("verification"), "verification")
    sbs = _crowd(top.get("sbs"), "sbs")
    pools = _pools(top.get("pools"))
    links = _int(top.get("links_per_image"), "links_per_image", 2)

    finding = pools["find_items"].overlap
    if links > finding:
        raise ScenarioError("links_per_image", f"at most pools.find_items.overlap ({finding})", links)
    if len(finders) < finding:
        raise ScenarioError("finders", f"at least pools.find_items.overlap ({finding}) finders", len(finders))
    for pool, crowd in (("verification", verification), ("sbs", sbs)):
        if crowd.workers < pools[pool].overlap:
            raise ScenarioError(f"{pool}.workers", f">= the pool overlap ({pools[pool].overlap})", crowd.workers)

    return FindItemsScenario(
        name=name,
        catalogue=catalogue,
        links_per_image=links,
        finders=finders,
        verification=verification,
        sbs=sbs,
        pace=_pace(top.get("pace")),
        pools=pools,
        behaviour=_behaviour(top.get("behaviour")),
        source=copy.deepcopy(top),
    )
