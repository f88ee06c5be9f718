"""Control tasks of the verification pools: made at set-up from the scenario, with a known answer.

A scenario asks for them per pool (``verification.<pool>.control``: how many, and which share
of the tasks a checker sees). :func:`build_control_tasks` makes them as a pure function of the
scenario and the seed: each is a task input exactly like the ones the pipeline creates (a visit
of an organization with its photos, or one photo with its field), the photos' markers, and the
label a correct checker gives (``known_solutions``). Photos are served by the emulator at
``/_emulator/control/<token>.jpg`` (no token needed, like a public image link) and the crowd
reads their markers from the token without fetching them, so a restart on another port keeps
every answer.

- visit: an honest-looking visit (the pedestrian was there: ``yes``) or a cheat's (photos of
  another place, or ``no_org`` without photos, coordinates kilometres away: ``no``);
- quality: a sharp photo (``ok``) or a blurred or dark one (``bad``);
- relevance: a photo of what the field asks, of the task's organization (``relevant``), or of
  another kind of thing or another place (``not_relevant``).

About ``positive_share`` of a pool's control tasks have the positive label. Which pedestrian
kind of work a visit control imitates is drawn, and the known label is then computed with the
same rules the checkers use (:func:`emulator.crowd.behaviour.correct_answer`), so a control task
is never "wrong".

Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import hashlib
import random
import re
from dataclasses import dataclass
from typing import Any

from emulator.crowd.behaviour import correct_answer, plan_pedestrian_work
from emulator.crowd.photos import PhotoMarker
from emulator.crowd.scenario import VERIFICATION_POOLS, Organization, Scenario

#: Path of a control photo under the emulator's URL.
CONTROL_PREFIX = "/_emulator/control/"
CONTROL_PATH_RE = re.compile(r"/_emulator/control/([0-9a-f]{24})\.jpg$")


@dataclass(frozen=True)
class ControlTask:
    """One control task: its name (also its ``pedestrian_assignment_id``), input, known label, photos."""

    name: str
    pool: str
    input_values: dict[str, Any]
    known_label: str
    photos: dict[str, PhotoMarker]  # token -> marker

    def known_solutions(self, answer_field: str) -> list[dict[str, Any]]:
        return [{"output_values": {answer_field: self.known_label}, "correctness_weight": 1}]


def control_token(scenario_name: str, seed: int, photo_id: str) -> str:
    """An opaque, stable name for a control photo (it says nothing about the photo)."""
    return hashlib.sha256(f"control:{scenario_name}:{seed}:{photo_id}".encode()).hexdigest()[:24]


def control_photo_url(base_url: str, token: str) -> str:
    return f"{base_url.rstrip('/')}{CONTROL_PREFIX}{token}.jpg"


def token_of_url(url: str) -> str | None:
    """The token of a control photo link (any host and port), or None for another link."""
    path = url.split("?", 1)[0].split("#", 1)[0]
    match = CONTROL_PATH_RE.search(path)
    return match.group(1) if match else None


def _visit(scenario: Scenario, seed: int, name: str, positive: bool, rng: random.Random,
           url: Any) -> tuple[dict[str, Any], dict[str, PhotoMarker]]:
    f = scenario.fields
    org = rng.choice(scenario.organizations)
    work = plan_pedestrian_work("honest" if positive else "cheat", org, scenario, rng, photo_prefix=name)
    inputs: dict[str, Any] = {"pedestrian_assignment_id": name, **org.input_values(f.org_fields, f.extra_fields),
                              f.verdict_field: work.verdict, f.worker_coordinates_field: work.worker_coordinates}
    photos: dict[str, PhotoMarker] = {}
    for field, shots in work.photos.items():
        links = []
        for marker in shots:
            token = control_token(scenario.name, seed, marker.photo_id)
            photos[token] = marker
            links.append(url(token))
        inputs[field] = links
    return inputs, photos


def _photo_task(scenario: Scenario, seed: int, pool: str, name: str, positive: bool, rng: random.Random,
                url: Any) -> tuple[dict[str, Any], dict[str, PhotoMarker]]:
    f = scenario.fields
    existing = [o for o in scenario.organizations if o.exists]
    org = rng.choice(existing)
    field = rng.choice(list(f.photo_fields))
    kind = f.photo_fields[field]
    shown: Organization = org
    quality = "good"
    if pool == "quality" and not positive:
        quality = rng.choice(("blurred", "dark"))
    if pool == "relevance" and not positive:
        others = [o for o in existing if o.id != org.id]
        if rng.random() < 0.5 or not others:
            kind = rng.choice([k for k in f.photo_fields.values() if k != kind] or ["empty_place"])
        else:
            shown = rng.choice(others)
    photo_id = f"{name}/{field}/1"
    marker = PhotoMarker(photo_id=photo_id, org_id=shown.id, org_name=shown.name, address=shown.address,
                         kind=kind, quality=quality, visited=True)
    token = control_token(scenario.name, seed, photo_id)
    group = "main" if field in f.main_fields else field
    inputs = {"image": url(token), "image_field": field, "group": f"{name}/{group}",
              "pedestrian_assignment_id": name, "name": org.name, "address": org.address}
    return inputs, {token: marker}


def build_control_tasks(scenario: Scenario, seed: int, base_url: str = "") -> list[ControlTask]:
    """Every control task of the scenario, pool by pool (visit, quality, relevance), in order.

    A pure function of (scenario, seed); ``base_url`` only prefixes the photo links.
    """
    out: list[ControlTask] = []

    def url(token: str) -> str:
        return control_photo_url(base_url, token)

    for pool in VERIFICATION_POOLS:
        control = scenario.verification[pool].control
        if control is None:
            continue
        labels = scenario.fields.labels(pool)
        for i in range(control.tasks):
            name = f"control-{pool}-{i + 1:03d}"
            rng = random.Random(f"{seed}:control:{scenario.name}:{name}")
            positive = rng.random() < control.positive_share
            if pool == "visit":
                inputs, photos = _visit(scenario, seed, name, positive, rng, url)
            else:
                inputs, photos = _photo_task(scenario, seed, pool, name, positive, rng, url)
            by_url: dict[str, PhotoMarker | None] = {url(t): m for t, m in photos.items()}
            ok = correct_answer(pool, inputs, by_url, scenario.fields)
            out.append(ControlTask(name, pool, inputs, labels.accept_label if ok else labels.reject_label, photos))
    return out
