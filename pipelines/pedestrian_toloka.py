"""The pedestrian pipeline's Toloka side: four projects, three skills, four pools (``pipeline.py setup``).

Every field name and label comes from the parsed ``toloka.ini`` sections
(:class:`~handlers.settings.PedestrianConfig`), so the specs match exactly what
the handlers send and read:

- pedestrian: input = ``org_fields`` (the ``org_coordinates_field`` typed as
  coordinates) and ``extra_fields``; output = ``verdict_field`` (``verdict_ok`` or
  ``verdict_no_org``), ``worker_coordinates_field`` (the device's location),
  ``comment_field``, one photo list per main and bonus field and one yes/no flag
  per bonus field. Reviewed by the daemon: no auto-accept, a review period.
- visit: input = what ``handlers/pedestrian.py`` ``_visit_task`` sends (the
  pedestrian assignment id, the organization, the verdict, the worker's
  coordinates, one list of photo links per photo field); output = ``answer_field``.
- quality, relevance: input = what ``handlers/verification.py`` ``photo_task``
  sends (``image``, ``image_field``, ``photo_id``, ``group``,
  ``pedestrian_assignment_id``, ``name``, ``address``); output = ``answer_field``.
  Checking pools accept by themselves (the daemon reads their accepted answers).

A task is never shown to the pedestrian whose work it checks: the daemon puts
that worker in every checking task's ``unavailable_for``; no pool setting is needed.
Task interfaces are Template Builder configs (docs/toloka-setup.md shows them).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import timedelta
from decimal import Decimal
from typing import Any

from engine.toloka_setup import PoolPlan, ProjectPlan, SetupPlan, SetupRequest, SkillPlan
from handlers.settings import PedestrianConfig, PedestrianSettings, ValidationSettings

#: Rewards per assignment (in the account's currency) when ``setup`` is not told otherwise.
DEFAULT_REWARDS = {"pedestrian": Decimal("0.50"), "visit": Decimal("0.02"), "quality": Decimal("0.02"),
                   "relevance": Decimal("0.02")}
#: Days Toloka waits before accepting a pedestrian assignment by itself (the daemon decides before).
REVIEW_DAYS = 7
#: Most tasks per suite in each checking pool (a visit task shows all photos of one visit).
TASKS_PER_SUITE = {"visit": 3, "quality": 5, "relevance": 5}
#: Seconds a worker may hold a suite.
MAX_DURATION_S = {"pedestrian": 4 * 3600, "visit": 600, "quality": 600, "relevance": 600}
#: The three checking pools: INI section, project title, the question asked, the labels' captions.
CHECKS = {
    "visit": ("ValidationVisit", "Did the pedestrian really go there?",
              "Do the photos show this organization, taken on the spot?", ("Yes", "No")),
    "quality": ("ValidationQuality", "Is the photo sharp and usable?",
                "Is this photo sharp, well lit and readable?", ("Good", "Bad")),
    "relevance": ("ValidationRelevance", "Does the photo show what it should?",
                  "Does the photo show what its caption asks for?", ("Relevant", "Not relevant")),
}
_TB_CORE = "1.0.0"


def _string(required: bool = True, allowed: list[str] | None = None) -> dict[str, Any]:
    spec: dict[str, Any] = {"type": "string", "required": required}
    if allowed is not None:
        spec["allowed_values"] = allowed
    return spec


def _input(path: str) -> dict[str, Any]:
    return {"type": "data.input", "path": path}


def _output(path: str) -> dict[str, Any]:
    return {"type": "data.output", "path": path}


def _view_spec(view: dict[str, Any], plugins: list[dict[str, Any]]) -> dict[str, Any]:
    """A Template Builder ``view_spec``: the config as JSON text, every component locked to 1.0.0."""
    config = {"view": view, "plugins": plugins}
    lock = {"core": _TB_CORE}
    for component in _types(config):
        if not component.startswith("data."):
            lock[component] = "1.0.0"
    return {"type": "tb", "config": json.dumps(config, indent=2, ensure_ascii=False), "lock": lock,
            "inferDataSpec": False, "settings": {"showSubmit": True, "showFinish": True, "showTimer": True,
                                                 "showTitle": True, "showInstructions": True,
                                                 "showFullscreen": True, "showSkip": True, "showMessage": True,
                                                 "showReward": True}}


def _types(node: object) -> list[str]:
    """Every component ``type`` in a config, in order of appearance, once each."""
    found: dict[str, None] = {}
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            if isinstance(item.get("type"), str):
                found[item["type"]] = None
            stack.extend(reversed(list(item.values())))
        elif isinstance(item, list):
            stack.extend(reversed(item))
    return list(found)


def _toloka_plugin() -> dict[str, Any]:
    return {"type": "plugin.toloka", "layout": {"kind": "scroll", "taskWidth": 600}}


#: What the photo fields of the example configuration ask for, in words; other names are spelt out.
CAPTIONS = {
    "imgs_facade": "The facade with the entrance",
    "name_business": "The sign with the organization's name",
    "hoo_business": "The opening hours",
    "imgs_name_address": "The plate with the name and the address",
    "imgs_interior": "The interior",
    "imgs_covid_policy": "The notice about hygiene rules",
    "imgs_outdoor_seating": "The outdoor seating",
    "imgs_menu": "The menu",
}


def _caption(name: str) -> str:
    """What a field asks for, for a person: :data:`CAPTIONS`, else ``imgs_name_address`` -> ``Name address``."""
    if name in CAPTIONS:
        return CAPTIONS[name]
    words = name.removeprefix("imgs_").removeprefix("can_take_").replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def _lower(caption: str) -> str:
    return caption[:1].lower() + caption[1:]


def _spelt_out(data: dict[str, Any], values: dict[str, str]) -> dict[str, Any]:
    """``data`` shown as the caption of its value (``helper.switch``), or as it is when unknown."""
    return {"type": "helper.switch", "default": data,
            "cases": [{"condition": {"type": "condition.equals", "data": data, "to": value}, "result": caption}
                      for value, caption in values.items()]}


# --- specs -----------------------------------------------------------------------------


def pedestrian_specs(p: PedestrianSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input_spec, output_spec) of the pedestrian project."""
    inputs: dict[str, Any] = {}
    for name in p.org_fields:
        inputs[name] = ({"type": "coordinates", "required": True} if name == p.org_coordinates_field
                        else _string())
    for name in p.extra_fields:
        inputs[name] = _string(required=False)
    outputs: dict[str, Any] = {
        p.verdict_field: _string(allowed=[p.verdict_ok, p.verdict_no_org]),
        p.worker_coordinates_field: {"type": "coordinates", "required": True, "current_location": True},
        p.comment_field: _string(required=False),
    }
    # Photos are required by the interface only when the organization is there (a "no organization"
    # visit may have none), so the spec leaves them optional; the daemon checks required_fields itself.
    for name in (*p.main_fields, *p.bonus_fields):
        outputs[name] = {"type": "array_file", "required": False}
    for flag in p.bonus_flags:
        outputs[flag] = _string(required=False, allowed=[p.bonus_flag_yes, _no(p)])
    return inputs, outputs


def _no(p: PedestrianSettings) -> str:
    return "no" if p.bonus_flag_yes != "no" else "not"


def visit_specs(p: PedestrianSettings, v: ValidationSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input_spec, output_spec) of the visit project: what ``_visit_task`` sends."""
    inputs: dict[str, Any] = {"pedestrian_assignment_id": _string()}
    for name in p.org_fields:
        inputs[name] = ({"type": "coordinates", "required": True} if name == p.org_coordinates_field
                        else _string())
    for name in p.extra_fields:
        inputs[name] = _string(required=False)
    inputs[p.verdict_field] = _string(allowed=[p.verdict_ok, p.verdict_no_org])
    inputs[p.worker_coordinates_field] = _string(required=False)
    for name in (*p.main_fields, *p.bonus_fields):
        inputs[name] = {"type": "array_url", "required": False}
    return inputs, _answer_spec(v)


def photo_specs(v: ValidationSettings) -> tuple[dict[str, Any], dict[str, Any]]:
    """(input_spec, output_spec) of the quality and relevance projects: what ``photo_task`` sends."""
    inputs = {
        "image": {"type": "url", "required": True},
        "image_field": _string(),
        "photo_id": _string(),
        "group": _string(),
        "pedestrian_assignment_id": _string(),
        "name": _string(required=False),
        "address": _string(required=False),
    }
    return inputs, _answer_spec(v)


def _answer_spec(v: ValidationSettings) -> dict[str, Any]:
    return {v.answer_field: _string(allowed=[v.accept_label, v.reject_label])}


# --- task interfaces --------------------------------------------------------------------


def pedestrian_view(p: PedestrianSettings) -> dict[str, Any]:
    """The field task for the mobile app: the organization on a map, the verdict, photos from the camera.

    The worker's location is saved into ``worker_coordinates_field`` as the task opens
    (``plugin.trigger`` with the device location); photos are taken with the camera only
    (no gallery), several per field; the required photo fields must be filled when the
    organization is there.
    """
    here = {"type": "condition.equals", "data": _output(p.verdict_field), "to": p.verdict_ok}
    title = {"type": "helper.join", "by": ", ", "items": [_input(n) for n in p.org_fields
                                                          if n != p.org_coordinates_field]}
    items: list[dict[str, Any]] = [{"type": "view.text", "label": "Organization", "content": title}]
    if p.org_coordinates_field in p.org_fields:
        items.append({"type": "view.map", "label": "Where it should be",
                      "center": _input(p.org_coordinates_field),
                      "markers": [{"position": _input(p.org_coordinates_field), "label": "Here"}]})
    items.append({"type": "field.button-radio-group", "label": "Is the organization there?",
                  "data": _output(p.verdict_field),
                  "options": [{"label": "Yes, it is there", "value": p.verdict_ok},
                              {"label": "No, it is not there", "value": p.verdict_no_org}],
                  "validation": {"type": "condition.required"}})
    camera = {"photo": True, "video": False, "gallery": False, "fileSystem": False}
    for name in p.main_fields:
        field: dict[str, Any] = {"type": "field.media-file", "label": _caption(name), "data": _output(name),
                                 "accept": camera, "multiple": True}
        if name in p.required_fields:
            field["validation"] = {"type": "condition.any", "conditions": [
                {"type": "condition.not", "condition": here},
                {"type": "condition.required", "data": _output(name)}]}
        items.append(field)
    for name, flag in zip(p.bonus_fields, p.bonus_flags, strict=True):
        what = _lower(_caption(name))
        items.append({"type": "field.button-radio-group", "label": f"Bonus: can you photograph {what}?",
                      "data": _output(flag),
                      "options": [{"label": "Yes", "value": p.bonus_flag_yes}, {"label": "No", "value": _no(p)}]})
        items.append({"type": "field.media-file", "label": f"Bonus photos: {what}", "data": _output(name),
                      "accept": camera, "multiple": True,
                      "validation": {"type": "condition.any", "conditions": [
                          {"type": "condition.not", "condition": {"type": "condition.equals",
                                                                  "data": _output(flag), "to": p.bonus_flag_yes}},
                          {"type": "condition.required", "data": _output(name)}]}})
    items.append({"type": "field.textarea", "label": "Comment (optional)", "data": _output(p.comment_field)})
    location = {"type": "plugin.trigger", "fireImmediately": True,
                "action": {"type": "action.set", "data": _output(p.worker_coordinates_field),
                           "payload": {"type": "@yandex-toloka/data.location"}}}
    return _view_spec({"type": "view.list", "items": items}, [location, _toloka_plugin()])


def _answer_field(v: ValidationSettings, question: str, captions: tuple[str, str]) -> dict[str, Any]:
    return {"type": "field.button-radio-group", "label": question, "data": _output(v.answer_field),
            "options": [{"label": captions[0], "value": v.accept_label},
                        {"label": captions[1], "value": v.reject_label}],
            "validation": {"type": "condition.required"}}


def visit_view(p: PedestrianSettings, v: ValidationSettings) -> dict[str, Any]:
    """The visit check: the organization, what the pedestrian said, every photo, the question."""
    _, question, captions = CHECKS["visit"][1:]
    org = [{"type": "view.text", "label": _caption(n), "content": _input(n)} for n in p.org_fields]
    said = {"type": "view.text", "label": "The pedestrian says",
            "content": _spelt_out(_input(p.verdict_field), {
                p.verdict_ok: "The organization is there", p.verdict_no_org: "The organization is not there"})}
    photos = [{"type": "view.list", "label": _caption(n), "items": {
        "type": "helper.transform", "into": {"type": "view.image", "url": {"type": "data.local", "path": "item"},
                                             "rotatable": True, "popup": True, "ratio": [1, 1]},
        "items": _input(n)}} for n in (*p.main_fields, *p.bonus_fields)]
    items = [*org, said, *photos, _answer_field(v, question, captions)]
    return _view_spec({"type": "view.list", "items": items}, [_toloka_plugin()])


def photo_view(kind: str, p: PedestrianSettings, v: ValidationSettings) -> dict[str, Any]:
    """A quality or relevance check: one photo, what it should show, the organization, the question."""
    _, question, captions = CHECKS[kind][1:]
    fields = {name: _caption(name) for name in (*p.main_fields, *p.bonus_fields)}
    items = [
        {"type": "view.text", "label": "Organization",
         "content": {"type": "helper.join", "by": ", ", "items": [_input("name"), _input("address")]}},
        {"type": "view.text", "label": "The photo should show", "content": _spelt_out(_input("image_field"), fields)},
        {"type": "view.image", "url": _input("image"), "rotatable": True, "popup": True, "ratio": [1, 1]},
        _answer_field(v, question, captions),
    ]
    return _view_spec({"type": "view.list", "items": items}, [_toloka_plugin()])


# --- the plan ---------------------------------------------------------------------------


def _project(key: str, title: str, description: str, specs: tuple[dict[str, Any], dict[str, Any]],
             view: dict[str, Any], **extra: Any) -> ProjectPlan:
    inputs, outputs = specs
    return ProjectPlan(key, {
        "public_name": title,
        "public_description": description,
        "public_instructions": description,
        "task_spec": {"input_spec": inputs, "output_spec": outputs, "view_spec": view},
        "assignments_issuing_type": "AUTOMATED",
        **extra,
    })


def projects(config: PedestrianConfig) -> tuple[ProjectPlan, ...]:
    """The four projects (specs and interfaces from ``config``'s field names and labels)."""
    p = config.pedestrian
    place = [f"{{{{inputParams['{n}']}}}}" for n in p.org_fields if n != p.org_coordinates_field]
    plans = [_project(
        "pedestrian", "Visit an organization and photograph it",
        "Go to the organization on the map. Say whether it is there; if it is, photograph its facade, "
        "its name and its opening hours; bonus photos are paid extra.",
        pedestrian_specs(p), pedestrian_view(p),
        # Field tasks: workers pick an organization on the map of the mobile app.
        assignments_issuing_type="MAP_SELECTOR",
        assignments_issuing_view_config={"title_template": place[0] if place else "Organization",
                                         "description_template": ", ".join(place[1:]) or "Visit and photograph",
                                         "map_provider": "GOOGLE"},
    )]
    plans.append(_project("visit", CHECKS["visit"][1], "Look at the photos a pedestrian took and say whether "
                          "they show this organization, taken on the spot.", visit_specs(p, config.visit),
                          visit_view(p, config.visit)))
    for kind in ("quality", "relevance"):
        v: ValidationSettings = getattr(config, kind)
        plans.append(_project(kind, CHECKS[kind][1], CHECKS[kind][2], photo_specs(v), photo_view(kind, p, v)))
    return tuple(plans)


def skills(name: str) -> tuple[SkillPlan, ...]:
    """One skill per checking pool: the checkers' accuracy on its control tasks (the daemon's prior)."""
    return tuple(SkillPlan(kind, f"{name} {kind} check accuracy",
                           {"hidden": True, "training": False,
                            "public_requester_description": {"EN": f"Accuracy on {kind} control tasks"}},
                           CHECKS[kind][0])
                 for kind in CHECKS)


def pools(config: PedestrianConfig, request: SetupRequest) -> tuple[PoolPlan, ...]:
    """The four pools with the recommended settings (see docs/toloka-setup.md)."""
    expires = (request.now + timedelta(days=365)).replace(microsecond=0).isoformat()
    rewards = {**DEFAULT_REWARDS, **request.rewards}

    def common(kind: str, overlap: int) -> dict[str, Any]:
        return {
            "private_name": f"{request.name}: {kind}",
            "may_contain_adult_content": False,
            "reward_per_assignment": rewards[kind],
            "assignment_max_duration_seconds": MAX_DURATION_S[kind],
            "will_expire": expires,
            "defaults": {"default_overlap_for_new_task_suites": overlap, "default_overlap_for_new_tasks": overlap},
        }

    def pedestrian(project_id: str, skill_ids: Mapping[str, str]) -> Mapping[str, Any]:
        return {
            **common("pedestrian", 1),
            # The daemon accepts or rejects every visit itself, before Toloka would after REVIEW_DAYS.
            "auto_accept_solutions": False,
            "auto_accept_period_day": REVIEW_DAYS,
            "assignments_issuing_config": {"issue_task_suites_in_creation_order": False},
            "mixer_config": {"real_tasks_count": 1, "golden_tasks_count": 0, "training_tasks_count": 0},
            # Field tasks need the mobile app (camera, location).
            "filter": {"and": [{"or": [{"category": "computed", "key": "client_type", "operator": "EQ",
                                        "value": "TOLOKA_APP"}]}]},
        }

    def check(kind: str) -> PoolPlan:
        v: ValidationSettings = getattr(config, kind)

        def build(project_id: str, skill_ids: Mapping[str, str]) -> Mapping[str, Any]:
            doc: dict[str, Any] = {
                **common(kind, v.overlap),
                # The daemon reads the checkers' answers once accepted: these pools accept by themselves.
                "auto_accept_solutions": True,
                # Up to TASKS_PER_SUITE tasks a suite, fewer when fewer wait (the daemon sends them as
                # work comes in), and one control task in each suite when the pool was given some.
                "mixer_config": {"real_tasks_count": TASKS_PER_SUITE[kind], "min_real_tasks_count": 1,
                                 "golden_tasks_count": int(kind in request.control_pools),
                                 "training_tasks_count": 0},
            }
            if kind in skill_ids:
                # The checker's skill = their share of right answers on control tasks (after 3 of them).
                doc["quality_control"] = {"configs": [{
                    "collector_config": {"type": "GOLDEN_SET", "parameters": {"history_size": 10}},
                    "rules": [{"conditions": [{"key": "total_answers_count", "operator": "GTE", "value": 3}],
                               "action": {"type": "SET_SKILL_FROM_OUTPUT_FIELD",
                                          "parameters": {"skill_id": skill_ids[kind],
                                                         "from_field": "correct_answers_rate"}}}],
                }]}
            return doc

        return PoolPlan(kind, kind, build, CHECKS[kind][0], control_field=v.answer_field)

    return (PoolPlan("pedestrian", "pedestrian", pedestrian, "PedestrianProject"),
            *(check(kind) for kind in CHECKS))


def setup_plan(config: PedestrianConfig, request: SetupRequest) -> SetupPlan:
    """The ``toloka_setup`` hook of the pedestrian pipeline."""
    return SetupPlan(projects(config), skills(request.name), pools(config, request))
