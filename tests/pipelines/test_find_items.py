"""The find-items pipeline's handlers, pure: state and API-shaped assignments in, actions out."""

from __future__ import annotations

import configparser
from datetime import datetime
from decimal import Decimal
from typing import Any

import pytest

from common.errors import ConfigError
from engine.actions import AppendRows, CreateTasks, SetStatus
from engine.spec import Batch, Context, Decision
from pipelines import find_items as fi
from tests.handlers.builders import answer, created_tasks, rows
from toloka_client.records import Assignment

NOW = datetime(2026, 11, 30, 12, 0, 0)
INI = """
[FindItemsProject]
pool_id = 10
links_per_image = 3
[FindItemsVerification]
pool_id = 11
overlap = 3
[FindItemsComparison]
pool_id = 12
overlap = 3
"""


def config(text: str = INI) -> fi.FindItemsConfig:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(text)
    return fi.parse(cfg)


CONFIG = config()
CTX = Context(CONFIG, CONFIG.pools(), NOW)


def found(aid: str, image: str, link: str, worker: str = "finder", status: str = "SUBMITTED") -> Assignment:
    return Assignment.from_json({
        "id": aid, "pool_id": "10", "user_id": worker, "status": status, "reward": "0.08",
        "submitted": "2026-11-30T11:00:00.000",
        "tasks": [{"id": f"t-{image}", "pool_id": "10", "input_values": {"image": image}}],
        "solutions": [{"output_values": {"found_link": link}}],
    })


def batch(pool: str, assignments: list[Assignment], event: str = "accepted") -> Batch:
    return Batch(pool, CONFIG.pools()[pool], event, tuple(assignments))


def verify(state: fi.FindItemsState, decision: Decision, labels: dict[str, list[str]]) -> Decision:
    """Checkers answer the verification tasks ``decision`` created: subject assignment -> labels."""
    tasks = {t["assignment_id"]: t for t in created_tasks(decision.actions, "11")}
    answers = [answer("11", f"checker{n}", [(tasks[aid], label)])
               for aid, labels_ in labels.items() for n, label in enumerate(labels_)]
    return fi.on_verified(state, batch("verification", answers), CTX)


def test_a_found_link_goes_to_verification_unavailable_to_its_finder() -> None:
    state = fi.FindItemsState()
    out = fi.on_found(state, batch("find_items", [found("f1", "img1", " http://shop/p1 ")], "submitted"), CTX)
    [create] = [a for a in out.actions if isinstance(a, CreateTasks)]
    [task] = create.tasks
    assert create.pool_id == "11" and task.overlap == 3 and task.unavailable_for == ("finder",)
    assert task.input_values == {"image": "img1", "found_link": "http://shop/p1", "assignment_id": "f1"}
    assert [r["event"] for r in rows(out.actions, "decisions")] == [fi.FOUND, fi.TO_VERIFICATION]
    [review] = out.reviewing
    assert (review.assignment_id, review.pool, review.reward) == ("f1", "find_items", Decimal("0.08"))
    again = fi.on_found(state, batch("find_items", [found("f1", "img1", "http://shop/p1")], "submitted"), CTX)
    assert again.chains == {} and again.reviewing == []  # a re-delivered event decides nothing twice


def test_verification_accepts_or_rejects_on_the_majority_and_writes_the_verified_link() -> None:
    state = fi.FindItemsState()
    first = fi.on_found(state, batch("find_items", [found("f1", "img1", "p1"), found("f2", "img1", "junk", "cheat")],
                                     "submitted"), CTX)
    out = verify(state, first, {"f1": ["Yes", "Yes", "No"], "f2": ["No", "No", "Yes"]})
    statuses = {a.assignment_id: a for a in out.actions if isinstance(a, SetStatus)}
    assert statuses["f1"].status == "ACCEPTED" and statuses["f1"].comment == "Well done!"
    assert statuses["f2"].status == "REJECTED" and statuses["f2"].comment == "Incorrect object."
    assert statuses["f2"].if_overtaken is not None  # what to log if Toloka accepted it first
    verified = {r["assignment_id"]: r for r in rows(out.actions, "verified_links")}
    assert verified["f1"]["verdict"] == "Yes" and verified["f2"]["verdict"] == "No"
    assert verified["f2"]["worker"] == "cheat" and 0.5 < float(str(verified["f1"]["confidence"])) <= 1.0
    assert out.decided == 2 and state.found == {} and state.verification == {}
    assert len(rows(out.actions, "answers")) == 6


def test_answers_wait_for_the_overlap_and_late_ones_change_nothing() -> None:
    state = fi.FindItemsState()
    first = fi.on_found(state, batch("find_items", [found("f1", "img1", "p1")], "submitted"), CTX)
    assert verify(state, first, {"f1": ["Yes", "Yes"]}).chains == {}
    assert sum(len(a) for a in state.verification.values()) == 2
    assert len(verify(state, first, {"f1": ["Yes", "Yes", "No"]}).actions) > 0  # the third answer decides
    assert verify(state, first, {"f1": ["No", "No", "No"]}).chains == {}  # decided: late answers are dropped


def comparisons_of(decision: Decision) -> list[dict[str, Any]]:
    return created_tasks(decision.actions, "12")


def test_an_image_with_enough_accepted_links_gets_every_pair_compared_then_ranked() -> None:
    state = fi.FindItemsState()
    accepted = [found(f"f{n}", "img1", link, status="ACCEPTED") for n, link in enumerate(["b", "a", "c"])]
    waiting = fi.on_accepted(state, batch("find_items", accepted[:2]), CTX)
    assert waiting.chains == {} and state.images["img1"].links == ["b", "a"]
    out = fi.on_accepted(state, batch("find_items", accepted[2:]), CTX)
    pairs = comparisons_of(out)
    assert {(p["left_link"], p["right_link"]) for p in pairs} == {("a", "b"), ("a", "c"), ("b", "c")}
    [create] = [a for a in out.actions if isinstance(a, CreateTasks)]
    assert all(t.overlap == 3 for t in create.tasks)
    # Comparers prefer a over b over c, with one dissenter.
    best = {("a", "b"): "left", ("a", "c"): "left", ("b", "c"): "left"}
    answers = [answer("12", f"cmp{w}", [(p, best[(p["left_link"], p["right_link"])] if w else "right")])
               for p in pairs for w in range(3)]
    ranked = fi.on_compared(state, batch("sbs", answers[:-1]), CTX)
    assert ranked.chains == {}  # one pair still lacks an answer
    ranked = fi.on_compared(state, batch("sbs", answers[-1:]), CTX)
    ranking = rows(ranked.actions, "rankings")
    assert [(r["link"], r["rank"]) for r in ranking] == [("a", 1), ("b", 2), ("c", 3)]
    assert "img1" not in state.images and "img1" in state.ranked
    late = fi.on_accepted(state, batch("find_items", [found("f9", "img1", "d", status="ACCEPTED")]), CTX)
    assert late.chains == {} and "img1" not in state.images  # a ranked image is not compared again


def test_a_single_distinct_link_is_ranked_without_comparisons() -> None:
    state = fi.FindItemsState()
    same = [found(f"f{n}", "img2", "only", status="ACCEPTED") for n in range(3)]
    out = fi.on_accepted(state, batch("find_items", same), CTX)
    assert comparisons_of(out) == []
    assert [(r["link"], r["rank"]) for r in rows(out.actions, "rankings")] == [("only", 1)]


def test_unreadable_work_is_held_for_a_person_not_rejected() -> None:
    state = fi.FindItemsState()
    out = fi.on_found(state, batch("find_items", [found("f1", "img1", "   ")], "submitted"), CTX)
    assert "f1" in state.held and not any(isinstance(a, SetStatus) for a in out.actions)
    assert any("held for a person" in n.message for n in out.notes)


@pytest.mark.parametrize(
    ("text", "section", "key"),
    [
        (INI.replace("links_per_image = 3", "links_per_image = 0"), "FindItemsProject", "links_per_image"),
        (INI + "left_label = same\nright_label = same\n", "FindItemsComparison", "right_label"),
        (INI.replace("overlap = 3\n[FindItemsComparison]", "overlap = 3\naggregation = Average\n[FindItemsComparison]"),
         "FindItemsVerification", "aggregation"),
        (INI.replace("pool_id = 12", "pool_id = 11"), "FindItemsComparison", "pool_id"),
    ],
)
def test_config_mistakes_name_section_and_key(text: str, section: str, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        config(text)
    assert (info.value.section, info.value.key) == (section, key)


def test_rows_are_appended_under_deterministic_keys() -> None:
    """The same decision replayed after a crash makes the same row keys (nothing is appended twice)."""
    def decide() -> list[str]:
        state = fi.FindItemsState()
        first = fi.on_found(state, batch("find_items", [found("f1", "img1", "p1")], "submitted"), CTX)
        out = verify(state, first, {"f1": ["Yes", "Yes", "Yes"]})
        return [a.key for a in [*first.actions, *out.actions] if isinstance(a, AppendRows)]
    assert decide() == decide()
