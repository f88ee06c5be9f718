"""The find_items scenario's parts, without a server: scenario validation, the catalogue and
its pictures, what finders and checkers do."""

from __future__ import annotations

import copy
import io
import json
import random
from collections import Counter
from typing import Any

import pytest
from PIL import Image

from emulator.crowd.catalogue import (
    IMAGE_CATEGORIES,
    JUNK_CATEGORIES,
    build_catalogue,
    image_of_url,
    image_url,
    parse_catalogue_url,
    product_of_url,
    product_url,
    render_image,
    render_product,
)
from emulator.crowd.find_items_behaviour import comparison_truth, give_answer, plan_find, verification_truth
from emulator.crowd.find_items_scenario import CatalogueSettings, FindItemsBehaviour, FindItemsScenario
from emulator.crowd.scenario import SCENARIO_DIR, Scenario, ScenarioError, load_scenario_file, parse_scenario


@pytest.fixture
def doc() -> dict[str, Any]:
    """A fresh, mutable copy of the built-in find_items scenario."""
    return copy.deepcopy(json.loads((SCENARIO_DIR / "find_items.json").read_text(encoding="utf-8")))


# ---------------------------------------------------------------- scenario


def test_the_built_in_scenario_has_the_demo_size() -> None:
    scenario = load_scenario_file("find_items")
    assert isinstance(scenario, FindItemsScenario) and scenario.kind == "find_items"
    assert (scenario.catalogue.images, scenario.catalogue.candidates, scenario.catalogue.matching) == (10, 5, 3)
    assert scenario.pools["find_items"].overlap == 4 and scenario.links_per_image == 4
    assert scenario.pools["find_items"].auto_accept_solutions is False
    assert scenario.pools["find_items"].auto_accept_period_day == 7
    assert scenario.pools["verification"].auto_accept_solutions and scenario.pools["sbs"].auto_accept_solutions
    kinds = Counter(f.kind for f in scenario.finders)
    assert len(scenario.finders) == 12 and kinds["junk"] == 3 and kinds["good"] > kinds["sloppy"]
    assert (scenario.verification.workers, scenario.verification.accuracy) == (9, (0.8, 0.97))
    assert (scenario.sbs.workers, scenario.sbs.accuracy) == (9, (0.75, 0.95))
    # the pedestrian demo is still what it was, and says so
    demo = load_scenario_file("demo")
    assert isinstance(demo, Scenario) and demo.kind == "pedestrian"


def test_kind_picks_the_parser(doc: dict[str, Any]) -> None:
    assert isinstance(parse_scenario(doc), FindItemsScenario)
    doc["kind"] = "treasure_hunt"
    with pytest.raises(ScenarioError, match=r"scenario kind: expected one of \['pedestrian', 'find_items'\]"):
        parse_scenario(doc)
    demo = json.loads((SCENARIO_DIR / "demo.json").read_text(encoding="utf-8"))
    assert isinstance(parse_scenario({**demo, "kind": "pedestrian"}), Scenario)


@pytest.mark.parametrize(("change", "where", "expected"), [
    (lambda d: d.pop("catalogue"), "catalogue", "a JSON object"),
    (lambda d: d["catalogue"].update(images=1), "catalogue.images", "an integer >= 2"),
    (lambda d: d["catalogue"].update(candidates=9), "catalogue.candidates", "between 2 and 8"),
    (lambda d: d["catalogue"].update(matching=6), "catalogue.matching", "at most catalogue.candidates"),
    (lambda d: d["catalogue"].update(junk_products=0), "catalogue.junk_products", "an integer >= 1"),
    (lambda d: d["catalogue"].update(colour="red"), "catalogue", "only keys"),
    (lambda d: d["finders"][0].update(kind="lazy"), r"finders\[0\].kind", "one of"),
    (lambda d: d["finders"][1].update(name=d["finders"][0]["name"]), "finders", "unique names"),
    (lambda d: d.update(finders=d["finders"][:3]), "finders", "at least pools.find_items.overlap"),
    (lambda d: d.update(links_per_image=5), "links_per_image", "at most pools.find_items.overlap"),
    (lambda d: d.update(links_per_image=1), "links_per_image", "an integer >= 2"),
    (lambda d: d["verification"].update(workers=2), "verification.workers", ">= the pool overlap"),
    (lambda d: d["sbs"].update(accuracy=[0.9, 0.8]), "sbs.accuracy", "min <= max"),
    (lambda d: d["pools"]["find_items"].update(auto_accept_solutions=True), "pools.find_items.auto_accept_solutions",
     "false"),
    (lambda d: d["pools"]["sbs"].pop("reward"), "pools.sbs.reward", "a decimal amount"),
    (lambda d: d["pools"].pop("verification"), "pools.verification", "a pool object"),
    (lambda d: d["pace"].pop("find_seconds"), "pace.find_seconds", r"\[min, max\]"),
    (lambda d: d["behaviour"].update(junk_unrelated_rate=2), "behaviour.junk_unrelated_rate", "between 0 and 1"),
    (lambda d: d.update(organizations=[]), r"\(top level\)", "only keys"),
])
def test_mistakes_name_the_json_path(doc: dict[str, Any], change: Any, where: str, expected: str) -> None:
    change(doc)
    with pytest.raises(ScenarioError, match=f"scenario {where}: expected .*{expected}"):
        parse_scenario(doc)


def test_the_digest_follows_the_document(doc: dict[str, Any]) -> None:
    first = parse_scenario(doc)
    again = parse_scenario(copy.deepcopy(doc))
    doc["links_per_image"] = 2
    assert first.digest == again.digest != parse_scenario(doc).digest


# ---------------------------------------------------------------- catalogue

SETTINGS = CatalogueSettings(images=10, candidates=5, matching=3, junk_products=8)


def test_the_catalogue_is_a_function_of_the_seed() -> None:
    a, b = build_catalogue("find_items", 1, SETTINGS), build_catalogue("find_items", 1, SETTINGS)
    assert a == b
    other = build_catalogue("find_items", 2, SETTINGS)
    assert set(other.products).isdisjoint(a.products)
    assert [i.category for i in other.images.values()] != [i.category for i in a.images.values()]


def test_candidates_come_in_decreasing_similarity() -> None:
    catalogue = build_catalogue("find_items", 4, SETTINGS)
    assert list(catalogue.images) == [f"img-{n:02d}" for n in range(1, 11)]
    assert len(catalogue.products) == 10 * 5 + 8 and len(catalogue.junk) == 8
    for image in catalogue.images.values():
        looks = [catalogue.products[p] for p in image.candidates]
        true = looks[0]
        assert (true.category, true.colour, true.pattern) == (image.category, image.colour, image.pattern)
        assert (looks[1].category, looks[1].colour) == (image.category, image.colour)
        assert looks[1].pattern != true.pattern
        assert looks[2].category == image.category and looks[2].colour != image.colour
        assert looks[4].category != image.category
        shared = [(p.category == image.category) * 4 + (p.colour == image.colour) * 2 + (p.pattern == image.pattern)
                  for p in looks]
        assert shared == sorted(shared, reverse=True)
        assert image.matching_ids == image.candidates[:3] and image.wrong_ids == image.candidates[3:]
        assert [catalogue.relevance(image.id, p) for p in image.candidates] == [0, 1, 2, 3, 4]
        assert all(catalogue.products[p].position == n and catalogue.products[p].image_id == image.id
                   for n, p in enumerate(image.candidates))
    for junk in catalogue.junk:
        product = catalogue.products[junk]
        assert product.junk and product.category in JUNK_CATEGORIES and product.category not in IMAGE_CATEGORIES
        assert catalogue.relevance("img-01", junk) == 5 and not catalogue.matches("img-01", junk)
    other_image = catalogue.images["img-02"].candidates[0]
    assert catalogue.relevance("img-01", other_image) == 5 and catalogue.relevance("img-99", other_image) == 5


def test_links_name_what_they_show_whatever_the_host() -> None:
    url = image_url("http://127.0.0.1:8000/", "img-03")
    assert url == "http://127.0.0.1:8000/_emulator/catalogue/images/img-03.jpg"
    assert image_of_url(url) == "img-03" and product_of_url(url) is None
    assert image_of_url(url.replace("8000", "9999") + "?x=1") == "img-03"
    link = product_url("http://h", "0a1b2c3d4e5f")
    assert product_of_url(link) == "0a1b2c3d4e5f" and parse_catalogue_url(link) == ("products", "0a1b2c3d4e5f")
    for junk in (None, 3, "", "img-03", "http://h/_emulator/catalogue/images/../x.jpg", "http://h/photo.jpg",
                 "http://[bad"):
        assert parse_catalogue_url(junk) is None


def test_pictures_are_small_deterministic_jpegs() -> None:
    catalogue = build_catalogue("find_items", 4, SETTINGS)
    image = catalogue.images["img-01"]
    data = render_image(image, seed=4)
    assert data == render_image(image, seed=4) and data[:2] == b"\xff\xd8" and len(data) < 40_000
    with Image.open(io.BytesIO(data)) as decoded:
        assert decoded.format == "JPEG" and decoded.size == (256, 256)
    pictures = {render_product(catalogue.products[p], seed=4) for p in image.candidates}
    assert len(pictures) == 5  # drawn differently
    for junk in catalogue.junk:
        assert render_product(catalogue.products[junk], seed=4)[:2] == b"\xff\xd8"


# ---------------------------------------------------------------- behaviour


def test_finders_by_kind() -> None:
    catalogue = build_catalogue("find_items", 5, SETTINGS)
    image = catalogue.images["img-01"]
    behaviour = FindItemsBehaviour(good_wrong_rate=0.1, sloppy_wrong_rate=0.6, junk_unrelated_rate=0.4)
    picks: dict[str, Counter[str]] = {}
    for kind in ("good", "sloppy", "junk"):
        rng = random.Random(f"finders:{kind}")
        picks[kind] = Counter(plan_find(kind, image, catalogue, behaviour, rng) for _ in range(2000))
    good, sloppy, junk = picks["good"], picks["sloppy"], picks["junk"]
    assert sum(good[p] for p in image.matching_ids) / 2000 == pytest.approx(0.9, abs=0.03)
    assert good[image.candidates[0]] > good[image.candidates[1]] > good[image.candidates[2]]
    assert sum(sloppy[p] for p in image.wrong_ids) / 2000 == pytest.approx(0.6, abs=0.04)
    assert not set(junk) & set(image.candidates)
    assert sum(junk[p] for p in catalogue.junk) / 2000 == pytest.approx(0.6, abs=0.04)
    with pytest.raises(ValueError, match="unknown finder kind"):
        plan_find("lazy", image, catalogue, behaviour, random.Random(0))
    # the same draw, the same find
    assert plan_find("good", image, catalogue, behaviour, random.Random("x")) == \
        plan_find("good", image, catalogue, behaviour, random.Random("x"))


def test_right_answers_of_the_checks() -> None:
    catalogue = build_catalogue("find_items", 5, SETTINGS)
    image = catalogue.images["img-02"]
    first, second, wrong = image.candidates[0], image.candidates[2], image.candidates[4]
    assert verification_truth(catalogue, image.id, second) == "Yes"
    assert verification_truth(catalogue, image.id, wrong) == "No"
    assert verification_truth(catalogue, image.id, catalogue.junk[0]) == "No"
    assert verification_truth(catalogue, None, first) == "No"
    assert comparison_truth(catalogue, image.id, first, second, 0.9) == ("left", False)
    assert comparison_truth(catalogue, image.id, wrong, second, 0.1) == ("right", False)
    assert comparison_truth(catalogue, image.id, second, catalogue.junk[0], 0.9) == ("left", False)
    assert comparison_truth(catalogue, image.id, catalogue.junk[0], catalogue.junk[1], 0.2) == ("left", True)
    assert comparison_truth(catalogue, image.id, first, first, 0.7) == ("right", True)
    assert give_answer("Yes", "No", 0.8, 0.79) == "Yes" and give_answer("Yes", "No", 0.8, 0.8) == "No"
