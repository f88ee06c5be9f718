"""Scenario files: the demo loads with toloka.ini's field names; mistakes name their place."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from emulator.crowd.scenario import DEFAULT_SPEED, Scenario, ScenarioError, builtin_scenarios, load_scenario_file, parse_scenario


def test_demo_is_small_and_has_the_people_the_demo_needs(demo: Scenario) -> None:
    assert "demo" in builtin_scenarios()
    orgs = demo.organizations
    assert 10 <= len(orgs) <= 14
    assert sum(not o.exists for o in orgs) == 2
    kinds = [p.kind for p in demo.pedestrians]
    assert 4 <= len(kinds) <= 5 and kinds.count("cheat") == 1 and kinds.count("sloppy") == 1
    assert all(8 <= demo.verification[p].workers <= 10 for p in ("visit", "quality", "relevance"))
    # at the default speed, a pedestrian's longest walk takes ten real seconds at most
    assert demo.pace.pedestrian_seconds[1] / DEFAULT_SPEED <= 10


def test_demo_pools_as_the_brief_says(demo: Scenario) -> None:
    ped = demo.pools["pedestrian"]
    assert ped.overlap == 1 and ped.auto_accept_solutions is False and ped.auto_accept_period_day
    assert ped.reward == Decimal("0.50")
    for kind in ("visit", "quality", "relevance"):
        assert demo.pools[kind].auto_accept_solutions is True
        assert isinstance(demo.pools[kind].reward, Decimal)


def test_default_fields_are_exactly_those_of_the_example_toloka_ini(demo: Scenario) -> None:
    f = demo.fields
    assert f.org_fields == ("name", "address", "coordinates")
    assert f.extra_fields == ("segment", "phone", "website")
    assert (f.verdict_field, f.verdict_ok, f.verdict_no_org) == ("verdict", "ok", "no_org")
    assert (f.worker_coordinates_field, f.comment_field) == ("worker_coordinates", "comment")
    assert list(f.main_fields) == ["imgs_facade", "name_business", "hoo_business", "imgs_name_address"]
    assert f.required_fields == ("imgs_facade", "name_business", "imgs_name_address")
    assert list(f.bonus_fields) == ["imgs_interior", "imgs_covid_policy", "imgs_outdoor_seating", "imgs_menu"]
    assert f.bonus_flags == ("can_take_interior", "can_take_covid_policy", "can_take_outdoor_seating",
                             "can_take_menu")
    assert f.bonus_flag_yes == "yes" and f.flag_of("imgs_menu") == "can_take_menu"
    assert (f.visit.answer_field, f.visit.accept_label, f.visit.reject_label) == ("result", "yes", "no")
    assert (f.quality.accept_label, f.quality.reject_label) == ("ok", "bad")
    assert (f.relevance.accept_label, f.relevance.reject_label) == ("relevant", "not_relevant")


def test_field_names_and_labels_are_configurable(demo_doc: dict[str, Any]) -> None:
    demo_doc["fields"] = {"verdict_field": "answer", "quality": {"accept_label": "GOOD", "reject_label": "BAD"},
                          "bonus_fields": {"photo_menu": "menu"}, "bonus_flags": ["menu_ok"]}
    s = parse_scenario(demo_doc)
    assert s.fields.verdict_field == "answer"
    assert s.fields.quality.accept_label == "GOOD" and s.fields.quality.answer_field == "result"
    assert s.fields.photo_fields["photo_menu"] == "menu" and s.fields.flag_of("photo_menu") == "menu_ok"


def _set(doc: dict[str, Any], path: str, value: Any) -> None:
    keys = path.split(".")
    target: Any = doc
    for key in keys[:-1]:
        target = target[int(key)] if isinstance(target, list) else target[key]
    last = keys[-1]
    if value is _DELETE:
        del target[last]
    elif isinstance(target, list):
        target[int(last)] = value
    else:
        target[last] = value


_DELETE = object()


@pytest.mark.parametrize(
    ("path", "value", "where"),
    [
        ("organizations.0.coordinates", "55.7;37.6", "organizations[0].coordinates"),
        ("organizations.0.coordinates", "95,37", "organizations[0].coordinates"),
        ("organizations.1.id", "org-01", "organizations"),
        ("organizations.2.name", _DELETE, "organizations[2].name"),
        ("organizations.2.colour", "red", "organizations[2]"),
        ("pedestrians.0.kind", "lazy", "pedestrians[0].kind"),
        ("verification.visit.accuracy", [0.9, 0.5], "verification.visit.accuracy"),
        ("verification.quality.accuracy", [0.5, 1.5], "verification.quality.accuracy"),
        ("verification.relevance.workers", 2, "verification.relevance.workers"),
        ("pace.tasks_per_assignment", [1.5, 3], "pace.tasks_per_assignment"),
        ("pace.pedestrian_seconds", _DELETE, "pace.pedestrian_seconds"),
        ("pools.pedestrian.auto_accept_solutions", True, "pools.pedestrian.auto_accept_solutions"),
        ("pools.visit.reward", "a lot", "pools.visit.reward"),
        ("pools.quality.reward", "-1", "pools.quality.reward"),
        ("pools.relevance", _DELETE, "pools.relevance"),
        ("behaviour.hostile_comment_rate", 2, "behaviour.hostile_comment_rate"),
        ("fields", {"required_fields": ["imgs_menu"]}, "fields.required_fields"),
        ("fields", {"bonus_flags": ["one"]}, "fields.bonus_flags"),
        ("fields", {"main_fields": {"imgs_facade": "selfie"}}, "fields.main_fields.imgs_facade"),
        ("name", "", "name"),
    ],
)
def test_mistakes_raise_scenario_error_naming_the_place(demo_doc: dict[str, Any], path: str, value: Any,
                                                         where: str) -> None:
    _set(demo_doc, path, value)
    with pytest.raises(ScenarioError) as info:
        parse_scenario(demo_doc)
    assert info.value.where == where
    assert str(info.value).startswith(f"scenario {where}: expected ")


def test_load_from_a_file_path_and_clear_errors_for_missing_or_broken_files(tmp_path: Path,
                                                                             demo_doc: dict[str, Any]) -> None:
    demo_doc["name"] = "mine"
    good = tmp_path / "mine.json"
    good.write_text(json.dumps(demo_doc), encoding="utf-8")
    assert load_scenario_file(str(good)).name == "mine"
    with pytest.raises(ScenarioError, match="built-in name"):
        load_scenario_file("no-such-scenario")
    broken = tmp_path / "broken.json"
    broken.write_text("{not json", encoding="utf-8")
    with pytest.raises(ScenarioError, match="valid JSON"):
        load_scenario_file(str(broken))


def test_digest_changes_with_the_content(demo_doc: dict[str, Any]) -> None:
    a = parse_scenario(demo_doc)
    demo_doc["pedestrians"][0]["name"] = "zed"
    assert parse_scenario(demo_doc).digest != a.digest
