"""Allocation tables: who walks where, what a verification task's content key is, who answers."""

from __future__ import annotations

from collections import Counter

from emulator.crowd.allocation import (
    assign_organizations,
    canonical,
    chosen_checkers,
    describe_content,
    org_of_photo,
    rank_checkers,
    unit_draw,
)
from emulator.crowd.photos import PhotoMarker
from emulator.crowd.scenario import Scenario

ORGS = [f"org-{i:02d}" for i in range(1, 13)]
PEOPLE = ["anna", "boris", "chen", "dasha", "eddie"]


def _m(photo_id: str, kind: str = "facade", quality: str = "good") -> PhotoMarker:
    return PhotoMarker(photo_id, "org-01", "Blue Door Coffee", "12 Linden Street", kind, quality, True)


def test_unit_draw_is_fixed_by_its_parts_and_spread_over_0_1() -> None:
    assert unit_draw(1, "a", "b") == unit_draw(1, "a", "b")
    assert unit_draw(1, "a", "b") != unit_draw(2, "a", "b")
    draws = [unit_draw(7, "x", i) for i in range(4000)]
    assert all(0.0 <= d < 1.0 for d in draws)
    assert 0.47 < sum(draws) / len(draws) < 0.53
    assert 0.18 < sum(d < 0.2 for d in draws) / len(draws) < 0.22


def test_organizations_are_dealt_evenly_and_the_deal_follows_the_seed() -> None:
    deal = assign_organizations(ORGS, PEOPLE, seed=1)
    assert set(deal) == set(ORGS) and set(deal.values()) == set(PEOPLE)
    assert sorted(Counter(deal.values()).values()) == [2, 2, 2, 3, 3]
    assert assign_organizations(ORGS, PEOPLE, seed=1) == deal
    assert len({tuple(sorted(assign_organizations(ORGS, PEOPLE, seed=s).items())) for s in range(10)}) > 5


def test_photo_identities_name_their_organization() -> None:
    assert org_of_photo("org-03/imgs_facade/2", ORGS) == "org-03"
    assert org_of_photo("a/b/org-03/imgs_menu/1", ["a/b/org-03"]) == "a/b/org-03"  # ids may hold slashes
    assert org_of_photo("x/1", ORGS) is None
    assert org_of_photo("org-99/imgs_facade/1", ORGS) is None


def test_quality_and_relevance_keys_follow_the_photo_not_the_link(demo: Scenario) -> None:
    one = {"image": "file:///tmp/a.jpg", "image_field": "imgs_facade", "pedestrian_assignment_id": "x1"}
    two = {"image": "http://127.0.0.1:9/b.jpg?sig=1", "image_field": "imgs_facade", "pedestrian_assignment_id": "x2"}
    a = describe_content("quality", one, {one["image"]: _m("org-01/imgs_facade/1")}, demo.fields)
    b = describe_content("quality", two, {two["image"]: _m("org-01/imgs_facade/1")}, demo.fields)
    assert a.readable and a.key == b.key and a.photo_ids == ("org-01/imgs_facade/1",)
    other_field = describe_content("quality", {**one, "image_field": "name_business"},
                                   {one["image"]: _m("org-01/imgs_facade/1")}, demo.fields)
    relevance = describe_content("relevance", one, {one["image"]: _m("org-01/imgs_facade/1")}, demo.fields)
    other_photo = describe_content("quality", one, {one["image"]: _m("org-01/imgs_facade/2")}, demo.fields)
    assert len({a.key, other_field.key, relevance.key, other_photo.key}) == 4


def test_a_link_that_does_not_open_makes_the_task_input_the_key(demo: Scenario) -> None:
    task = {"image": "file:///nowhere.jpg", "image_field": "imgs_facade", "name": "n"}
    content = describe_content("quality", task, {"file:///nowhere.jpg": None}, demo.fields)
    assert not content.readable and content.photo_ids == ()
    assert content.key == canonical(["input", "quality", task])
    assert describe_content("quality", dict(reversed(task.items())), {}, demo.fields).key == content.key


def test_visit_keys_follow_the_place_and_its_photos(demo: Scenario) -> None:
    place = {"name": "Blue Door Coffee", "address": "12 Linden Street", "coordinates": "55.7558,37.6173"}
    first = {"pedestrian_assignment_id": "run1", **place, "imgs_facade": ["u1"], "name_business": ["u2"]}
    second = {"pedestrian_assignment_id": "run2", **place, "imgs_facade": "v1", "name_business": ["v2"]}
    markers = {"u1": _m("org-01/imgs_facade/1"), "u2": _m("org-01/name_business/1"),
               "v1": _m("org-01/imgs_facade/1"), "v2": _m("org-01/name_business/1")}
    a = describe_content("visit", first, markers, demo.fields)
    b = describe_content("visit", second, markers, demo.fields)
    assert a.readable and a.key == b.key
    swapped = {**second, "imgs_facade": ["v2"], "name_business": ["v1"]}
    assert describe_content("visit", swapped, markers, demo.fields).key != a.key  # which field holds what counts
    no_photos = describe_content("visit", {"pedestrian_assignment_id": "r", **place}, {}, demo.fields)
    assert no_photos.readable and no_photos.key != a.key


def test_the_chosen_checkers_are_a_ranked_prefix_that_honours_the_task_limits() -> None:
    users = [f"u{i}" for i in range(9)]
    ranking = rank_checkers(3, "key", users)
    assert sorted(ranking) == users and rank_checkers(3, "key", reversed(users)) == ranking
    assert rank_checkers(3, "other key", users) != ranking
    assert chosen_checkers(ranking, overlap=3) == ranking[:3]
    # a worker the task is unavailable for, or who gave it back, is replaced by the next in line
    assert chosen_checkers(ranking, overlap=3, unavailable=[ranking[0]]) == ranking[1:4]
    assert chosen_checkers(ranking, overlap=3, gone=[ranking[1]]) == [ranking[0], *ranking[2:4]]
    assert chosen_checkers(ranking, overlap=2, reserved=[ranking[5], ranking[7], ranking[8]]) == [ranking[5], ranking[7]]
    assert chosen_checkers(ranking, overlap=None, unavailable=ranking[:2]) == ranking[2:]
    assert chosen_checkers(ranking, overlap=12) == ranking  # fewer workers than the overlap: all of them
    # raising the overlap later only adds workers; the ones already chosen stay chosen
    assert chosen_checkers(ranking, overlap=5)[:3] == chosen_checkers(ranking, overlap=3)
    # over many keys every worker gets a fair share of the work
    share = Counter(u for k in range(600) for u in chosen_checkers(rank_checkers(1, f"k{k}", users), overlap=3))
    assert min(share.values()) > 150 and max(share.values()) < 250
