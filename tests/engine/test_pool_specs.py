"""engine.pool_specs: each rule of 'does this project fit the pipeline', on plain project JSON.

The emulator tests (tests/commands/test_check.py) run the same comparison over
HTTP; these pin each rule and its words, and the pedestrian pipeline's
expectations against the example toloka.ini.
"""

from __future__ import annotations

from typing import Any

import pytest
from engine_helpers import EXAMPLE_INI

from common.errors import ConfigError
from common.ini import ConfigErrors
from engine.pool_specs import OutputField, PoolExpectation, PoolSpecError, compare, raise_on_mismatch, reports
from pipelines import load_settings
from pipelines.pedestrian_pools import expected_pools

CHECK = PoolExpectation("ValidationQuality", sends=("image", "name"), may_send=("photo_id",),
                        outputs=(OutputField("result", ("ok", "bad"), keys="[ValidationQuality] accept_label"),))
AUTO = {"auto_accept_solutions": True}


def project(inputs: dict[str, Any], outputs: dict[str, Any]) -> dict[str, Any]:
    return {"task_spec": {"input_spec": inputs, "output_spec": outputs}}


def labels(*values: str) -> dict[str, Any]:
    return {"result": {"type": "string", "required": True, "allowed_values": list(values)}}


STRING = {"type": "string", "required": True}
OPTIONAL = {"type": "string", "required": False}
GOOD = project({"image": STRING, "name": STRING, "photo_id": OPTIONAL}, labels("ok", "bad"))


def test_a_fitting_project_has_no_problem() -> None:
    """Every sent field declared, labels exactly the pipeline's, the pool accepts by itself."""
    assert compare(CHECK, GOOD, AUTO) == []


@pytest.mark.parametrize(
    ("doc", "pool", "words"),
    [
        (project({"image": STRING, "name": STRING}, labels("ok", "bad")), AUTO,
         "no input field 'photo_id', which the pipeline sends"),
        (project({"image": STRING, "name": STRING, "photo_id": STRING, "city": STRING}, labels("ok", "bad")), AUTO,
         "requires input field 'photo_id', 'city', which the pipeline does not send"),
        (project({"image": STRING, "name": STRING, "photo_id": OPTIONAL}, {}), AUTO, "no output field 'result'"),
        (project({"image": STRING, "name": STRING, "photo_id": OPTIONAL}, {"result": STRING}), AUTO,
         "output field 'result' lists no allowed values, expected ok/bad ([ValidationQuality] accept_label)"),
        (project({"image": STRING, "name": STRING, "photo_id": OPTIONAL}, labels("ok", "bad", "unsure")), AUTO,
         "labels ok/bad/unsure, expected ok/bad"),
        (GOOD, {"auto_accept_solutions": False}, "reads accepted work ([ValidationQuality] event = accepted)"),
        ({"public_name": "no spec"}, AUTO, "has no task_spec"),
    ],
)
def test_each_misfit_is_named(doc: dict[str, Any], pool: dict[str, Any], words: str) -> None:
    """Missing, required-but-not-sent, unlabelled and wrongly labelled fields, and the accepting setting."""
    problems = compare(CHECK, doc, pool)
    assert len(problems) == 1 and words in problems[0], problems


def test_a_reviewed_pool_must_not_accept_by_itself() -> None:
    """The daemon cannot reject work Toloka has already accepted."""
    reviewed = PoolExpectation("PedestrianProject", reads=("name",), reviewed=True)
    problems = compare(reviewed, project({"name": STRING}, {}), AUTO)
    assert problems == ["the pool accepts work by itself (auto_accept_solutions), but the pipeline reviews it "
                        "([PedestrianProject] event = submitted)"]


def test_a_superset_of_labels_is_enough_where_not_exact() -> None:
    """A bonus flag must allow 'yes'; it may allow 'no' too."""
    flag = PoolExpectation("PedestrianProject", reviewed=True,
                           outputs=(OutputField("can_take_menu", ("yes",), exact=False),))
    doc = project({}, {"can_take_menu": {"type": "string", "allowed_values": ["yes", "no"]}})
    assert compare(flag, doc, {"auto_accept_solutions": False}) == []


def test_swapped_pools_are_named_both_ways_and_raised_together() -> None:
    """Each of two swapped pools fails and its line asks whether the two ids are swapped."""
    relevance = PoolExpectation("ValidationRelevance", sends=("image", "name"), may_send=("photo_id",),
                                outputs=(OutputField("result", ("relevant", "not_relevant")),))
    expected = {"quality": CHECK, "relevance": relevance}
    relevant_project = project({"image": STRING, "name": STRING, "photo_id": OPTIONAL},
                               labels("relevant", "not_relevant"))
    found = reports(expected, {"quality": "4", "relevance": "3"},
                    {"quality": relevant_project, "relevance": GOOD}, {"quality": AUTO, "relevance": AUTO})
    assert [r.ok for r in found] == [False, False]
    assert found[0].line().startswith("[ValidationQuality] pool_id = 4: the project has output field 'result' "
                                      "with labels relevant/not_relevant, expected ok/bad")
    assert found[0].line().endswith("are the quality and relevance pool ids swapped?")
    assert "are the relevance and quality pool ids swapped?" in found[1].line()
    with pytest.raises(ConfigErrors) as info:
        raise_on_mismatch(found)
    assert [type(p) for p in info.value.problems] == [PoolSpecError, PoolSpecError]
    assert [(p.section, p.key, p.found) for p in info.value.problems] == [
        ("ValidationQuality", "pool_id", "4"), ("ValidationRelevance", "pool_id", "3")]


def test_one_misfit_alone_gives_no_swap_hint() -> None:
    """A project that fits no other pool's expectation is just wrong, not swapped."""
    found = reports({"quality": CHECK}, {"quality": "3"}, {"quality": project({"image": STRING}, {})},
                    {"quality": AUTO})
    assert not found[0].ok and found[0].hint == ""
    with pytest.raises(ConfigError) as info:
        raise_on_mismatch(found)
    assert isinstance(info.value, PoolSpecError)
    assert str(info.value).startswith("toloka.ini [ValidationQuality] pool_id = 3:")


def test_the_pedestrian_expectations_follow_the_configuration() -> None:
    """Names and labels come from toloka.ini; quality and relevance differ only in their labels."""
    expected = expected_pools(load_settings(EXAMPLE_INI).config)
    assert set(expected) == {"pedestrian", "visit", "quality", "relevance"}
    assert expected["pedestrian"].reviewed and not expected["quality"].reviewed
    assert {"name", "address", "coordinates", "segment"} <= set(expected["pedestrian"].reads)
    assert expected["quality"].sends == expected["relevance"].sends
    assert {"image", "photo_id", "pedestrian_assignment_id"} <= set(expected["quality"].sends)
    assert expected["quality"].outputs[0].labels == ("ok", "bad")
    assert expected["relevance"].outputs[0].labels == ("relevant", "not_relevant")
    assert expected["visit"].outputs[0].labels == ("yes", "no")
    assert "imgs_facade" in expected["visit"].may_send and "verdict" in expected["visit"].sends
