"""Behaviour tables: what each kind of pedestrian submits, what a checker answers."""

from __future__ import annotations

import random
from collections import Counter
from typing import Any

import pytest

from emulator.crowd.behaviour import (
    HOSTILE_COMMENTS,
    answer_task,
    correct_answer,
    distance_m,
    expected_outcome,
    parse_coordinates,
    pedestrian_output_values,
    photo_urls,
    plan_pedestrian_work,
)
from emulator.crowd.photos import PhotoMarker
from emulator.crowd.scenario import Scenario

ORG = {"name": "Blue Door Coffee", "address": "12 Linden Street", "coordinates": "55.75580,37.61730"}


def _m(kind: str = "facade", quality: str = "good", visited: bool = True, name: str = ORG["name"],
       address: str = ORG["address"]) -> PhotoMarker:
    return PhotoMarker("p", "org-01", name, address, kind, quality, visited)


def _visit_input(**photos: list[str]) -> dict[str, Any]:
    return {"pedestrian_assignment_id": "a1", **ORG, "verdict": "ok",
            "worker_coordinates": "55.75590,37.61740", **photos}


@pytest.mark.parametrize(
    ("markers", "inputs", "expected"),
    [
        ({"u1": _m(), "u2": _m("signboard")}, {"imgs_facade": ["u1"], "name_business": ["u2"]}, True),
        ({"u1": _m()}, {"imgs_facade": "u1"}, True),  # a bare string instead of a list
        ({"u1": _m(quality="blurred")}, {"imgs_facade": ["u1"]}, True),  # quality is not the visit's business
        ({"u1": _m(), "u2": _m(visited=False)}, {"imgs_facade": ["u1", "u2"]}, False),
        ({"u1": _m(name="Kazimir Books", address="3 Market Square", visited=False)}, {"imgs_facade": ["u1"]}, False),
        ({"u1": _m(name="Kazimir Books")}, {"imgs_facade": ["u1"]}, False),  # another organization
        ({"u1": None}, {"imgs_facade": ["u1"]}, False),  # the link does not open / no marker
        ({}, {}, False),  # no photos at all: nothing proves a visit
        ({"u1": _m()}, {"imgs_facade": ["u1"], "worker_coordinates": "55.95,37.9"}, False),  # far away
    ],
)
def test_correct_visit_table(demo: Scenario, markers: dict[str, Any], inputs: dict[str, Any], expected: bool) -> None:
    task = _visit_input()
    task.update(inputs)
    assert correct_answer("visit", task, markers, demo.fields) is expected


@pytest.mark.parametrize(
    ("marker", "field", "quality", "relevance"),
    [
        (_m("facade"), "imgs_facade", True, True),
        (_m("facade", "blurred"), "imgs_facade", False, True),
        (_m("facade", "dark"), "imgs_facade", False, True),
        (_m("facade"), "hoo_business", True, False),  # wrong kind for the field
        (_m("menu"), "imgs_menu", True, True),
        (_m("menu", name="Kazimir Books"), "imgs_menu", True, False),  # another organization's menu
        (_m("menu"), "no_such_field", True, False),
        (None, "imgs_facade", False, False),
    ],
)
def test_quality_and_relevance_table(demo: Scenario, marker: PhotoMarker | None, field: str, quality: bool,
                                     relevance: bool) -> None:
    task = {"image": "u", "image_field": field, "group": "a1/main", "pedestrian_assignment_id": "a1",
            "name": ORG["name"], "address": ORG["address"]}
    assert correct_answer("quality", task, {"u": marker}, demo.fields) is quality
    assert correct_answer("relevance", task, {"u": marker}, demo.fields) is relevance


def test_accurate_and_inaccurate_workers(demo: Scenario) -> None:
    task = {"input_values": {"image": "u", "image_field": "imgs_facade", "name": ORG["name"]}}
    markers = {"u": _m("facade", "blurred")}
    rng = random.Random(1)
    assert {answer_task("quality", task, markers, demo.fields, 1.0, rng.random()) for _ in range(50)} == {("bad", "bad")}
    assert {answer_task("quality", task, markers, demo.fields, 0.0, rng.random()) for _ in range(50)} == {("ok", "bad")}
    given = Counter(answer_task("relevance", task, markers, demo.fields, 0.8, rng.random())[0] for _ in range(2000))
    assert 0.75 < given["relevant"] / 2000 < 0.85
    # the draw alone decides: below the accuracy is right, at or above it is wrong
    assert answer_task("quality", task, markers, demo.fields, 0.8, 0.7999)[0] == "bad"
    assert answer_task("quality", task, markers, demo.fields, 0.8, 0.8)[0] == "ok"


def test_golden_tasks_are_answered_against_their_known_solution(demo: Scenario) -> None:
    # The photo is perfect, but the known solution says "bad": a perfect worker follows the truth it is paid for.
    task = {"input_values": {"image": "u", "image_field": "imgs_facade", "name": ORG["name"]},
            "known_solutions": [{"output_values": {"result": "bad"}, "correctness_weight": 1}]}
    assert answer_task("quality", task, {"u": _m()}, demo.fields, 1.0, 0.5) == ("bad", "bad")
    assert answer_task("quality", task, {"u": _m()}, demo.fields, 0.0, 0.5) == ("ok", "bad")


def _plans(demo: Scenario, kind: str, org_index: int, n: int = 60) -> list[Any]:
    org = demo.organizations[org_index]
    return [plan_pedestrian_work(kind, org, demo, random.Random(i), photo_prefix=f"a{i}") for i in range(n)]


def test_honest_pedestrian_goes_and_takes_good_relevant_photos(demo: Scenario) -> None:
    org = demo.organizations[0]
    for work in _plans(demo, "honest", 0):
        assert work.verdict == "ok" and work.visited
        assert distance_m(org.lat_lon, parse_coordinates(work.worker_coordinates)) < 100
        assert set(demo.fields.main_fields) <= set(work.photos)
        for name, shots in work.photos.items():
            assert all(m.org_id == org.id and m.visited for m in shots)
        bonus_taken = [b for b in demo.fields.bonus_fields if b in work.photos]
        assert all(work.flags[demo.fields.flag_of(b)] == "yes" for b in bonus_taken)
        outcome = expected_outcome(work, org, demo.fields)
        assert outcome["outcome"] in ("accept", "reject")  # reject only if the rare spoiled shot hit a required field
    outcomes = Counter(expected_outcome(w, org, demo.fields)["outcome"] for w in _plans(demo, "honest", 0))
    assert outcomes["accept"] >= 50


def test_honest_pedestrian_reports_no_org_with_proof_photos(demo: Scenario) -> None:
    index = next(i for i, o in enumerate(demo.organizations) if not o.exists)
    org = demo.organizations[index]
    for work in _plans(demo, "honest", index, 20):
        assert work.verdict == "no_org" and work.visited
        kinds = {m.kind for shots in work.photos.values() for m in shots}
        assert "empty_place" in kinds
        assert expected_outcome(work, org, demo.fields)["outcome"] == "no_org"


def test_sloppy_pedestrian_spoils_photos_and_gets_rejected_sometimes(demo: Scenario) -> None:
    plans = _plans(demo, "sloppy", 1, 80)
    qualities = Counter(m.quality for w in plans for shots in w.photos.values() for m in shots)
    assert qualities["blurred"] > 0 and qualities["dark"] > 0 and qualities["good"] > 0
    outcomes = Counter(expected_outcome(w, demo.organizations[1], demo.fields)["outcome"] for w in plans)
    assert outcomes["reject"] > 10 and outcomes["accept"] > 5


def test_cheat_never_goes_and_shows_another_place(demo: Scenario) -> None:
    org = demo.organizations[2]
    plans = _plans(demo, "cheat", 2, 80)
    verdicts = Counter(w.verdict for w in plans)
    assert verdicts["ok"] > 0 and verdicts["no_org"] > 0
    for work in plans:
        assert not work.visited
        assert distance_m(org.lat_lon, parse_coordinates(work.worker_coordinates)) > 4000
        assert all(m.org_id != org.id and not m.visited for shots in work.photos.values() for m in shots)
        if work.verdict == "no_org":
            assert work.photos == {}
        assert expected_outcome(work, org, demo.fields)["outcome"] == "reject"


def test_comments_include_hostile_text_sometimes(demo: Scenario) -> None:
    comments = {w.comment for w in _plans(demo, "honest", 0, 200)}
    assert comments & set(HOSTILE_COMMENTS)
    assert any("\t" in c for c in comments) and any("\n" in c for c in comments)
    assert any(c.startswith("=") for c in comments)


def test_output_values_hold_attachment_ids_as_string_or_list_and_all_flags(demo: Scenario) -> None:
    seen_shapes = set()
    for work in _plans(demo, "honest", 0, 40):
        ids = {name: [f"att-{name}-{i}" for i in range(len(shots))] for name, shots in work.photos.items()}
        out = pedestrian_output_values(work, ids, demo.fields)
        assert out["verdict"] == "ok" and out["worker_coordinates"] == work.worker_coordinates
        assert set(demo.fields.bonus_flags) <= set(out)
        for name in demo.fields.photo_fields:
            value = out[name]
            if name not in ids:
                assert value is None
            else:
                assert photo_urls(value) == ids[name]
                seen_shapes.add(type(value))
    assert seen_shapes == {str, list}
