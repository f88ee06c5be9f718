"""bench/side_by_side.py's pure parts: routes grouped into the issue's rows, the lower bound, photos
counted, outcomes compared organization by organization. Nothing is run or timed."""

from __future__ import annotations

import pytest

from bench.side_by_side import (
    ROUTE_ROWS,
    RunFacts,
    compare_outcomes,
    counted_photos,
    group_routes,
    lower_bound,
    org_decisions,
    route_key,
    subtract,
    ticks_with,
)

BONUSES = ROUTE_ROWS["POST /user-bonuses"]


def test_routes_are_grouped_into_the_issues_rows_and_admin_routes_left_out() -> None:
    assert route_key("GET /api/v1/assignments/{assignment_id}") == "GET /assignments/{id}"
    assert route_key("GET /_emulator/requests") is None
    by_route = {
        "GET /api/v1/assignments": 10, "GET /api/v1/assignments/{id}": 2,
        "GET /api/v1/user-bonuses": 1, "GET /api/v1/user-bonuses/{bonus_id}": 2, "POST /api/v1/user-bonuses": 3,
        "GET /api/v1/pools/{pool_id}": 4, "GET /_emulator/requests": 7, "POST /api/v1/tasks": 0,
    }
    assert group_routes(by_route) == {
        "GET /assignments": 10, "GET /assignments/{id}": 2, BONUSES: 6, "GET /pools/{id}": 4}


def test_requests_between_two_snapshots() -> None:
    assert subtract({"GET /a": 5, "POST /b": 2, "GET /c": 1}, {"GET /a": 3, "POST /b": 2}) == {"GET /a": 2, "GET /c": 1}


def test_lower_bound_per_pedestrian_assignment() -> None:
    facts = RunFacts(pedestrian_assignments=200,
                     assignments_per_pool={"pedestrian": 200, "visit": 400, "quality": 1000, "relevance": 400},
                     photos=1312, creation_ticks={"visit": 30, "quality": 25, "relevance": 25}, bonus_ticks=38)
    bound = lower_bound(facts)
    assert bound["GET /assignments"] == pytest.approx(2.0 / 200)
    assert bound["GET /attachments/{id}/download"] == pytest.approx(6.56)
    assert bound["POST /tasks"] == pytest.approx(0.40)
    assert bound[BONUSES] == pytest.approx(0.19)
    assert bound["PATCH /assignments/{id}"] == 1.0
    assert bound["GET /assignments/{id}"] == bound["GET /operations/{id}/log"] == 0.0
    assert lower_bound(RunFacts(0, {}, 0, {}, 0)) == {}


def test_ticks_are_the_period_windows_with_something_created() -> None:
    created = ["2026-11-30T10:00:00.100", "2026-11-30T10:00:01.900", "2026-11-30T10:00:02.000",
               "2026-11-30T10:00:07.5", ""]
    assert ticks_with(created, 2) == 3
    assert ticks_with([], 2) == 0


def test_photos_counted_as_a_pipeline_downloads_them() -> None:
    output = {"facade": ["a1", "a2"], "name": "a3", "menu": ["a4"], "interior": ["a5"], "can_menu": "yes",
              "can_interior": "no", "hours": []}
    assert counted_photos(output, ["facade", "name", "hours"], ["menu", "interior"], ["can_menu", "can_interior"],
                          "yes") == 4


def test_outcomes_compared_organization_by_organization() -> None:
    tasks = [{"id": "t1", "pool_id": "p", "input_values": {"name": "Cafe", "address": "1 Main St"}},
             {"id": "t2", "pool_id": "p", "input_values": {"name": "Shop", "address": "2 Main St"}},
             {"id": "t9", "pool_id": "other", "input_values": {"name": "X", "address": "Y"}}]
    assignments = [
        {"pool_id": "p", "status": "REJECTED", "tasks": [{"id": "t1"}]},
        {"pool_id": "p", "status": "ACCEPTED", "tasks": [{"id": "t1"}]},  # reopened, then accepted
        {"pool_id": "p", "status": "REJECTED", "tasks": [{"id": "t2"}]},
        {"pool_id": "p", "status": "SUBMITTED", "tasks": [{"id": "t2"}]},  # not decided: ignored
        {"pool_id": "other", "status": "ACCEPTED", "tasks": [{"id": "t9"}]},
    ]
    daemon = org_decisions(tasks, assignments, "p", ["name", "address"])
    assert daemon == {"Cafe | 1 Main St": "accepted", "Shop | 2 Main St": "rejected"}
    reference = {"Cafe | 1 Main St": "accepted", "Shop | 2 Main St": "accepted", "Inn | 3 Main St": "rejected"}
    c = compare_outcomes(daemon, reference)
    assert (c.agree, c.both_accepted, c.both_rejected, c.compared) == (1, 1, 0, 3)
    assert c.disagree == [("Inn | 3 Main St", "undecided", "rejected"), ("Shop | 2 Main St", "rejected", "accepted")]
