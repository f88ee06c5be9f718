"""The crowd honours user restrictions, and a raised overlap on a closed pool waits for the pool.

A worker restricted on a pool (scope POOL), on the pool's project (PROJECT) or on all
projects takes no new task there; its place in a task's ranking goes to the next worker, so
a task still gets its overlap, and an assignment it already holds is finished. A lifted or
expired restriction no longer counts. The crowd runs over a real store with the demo
scenario; its clock is the ``now`` each step is given.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from emulator.crowd.allocation import canonical, rank_checkers
from emulator.crowd.photos import PhotoMarker, render_photo
from emulator.crowd.scenario import Scenario
from emulator.crowd.simulator import Crowd
from emulator.ids import fmt_time
from emulator.store import Store

T0 = datetime(2026, 5, 1, 12, 0, 0)
SPEED = 3000.0
SEED = 11


class Setup:
    """A crowd on the demo scenario with a facade photo the quality checkers can open."""

    def __init__(self, crowd: Crowd, store: Store, scenario: Scenario, image: Path) -> None:
        assert crowd.setup_result is not None
        self.crowd = crowd
        self.store = store
        self.pool_id: str = crowd.setup_result["pools"]["quality"]
        self.project_id: str = crowd.setup_result["project_ids"]["quality"]
        self.now = T0
        org = scenario.organizations[0]
        photo_id = f"{org.id}/imgs_facade/1"
        image.write_bytes(render_photo(PhotoMarker(photo_id, org.id, org.name, org.address, "facade", "good", True)))
        self.inputs = {"image": image.as_uri(), "image_field": "imgs_facade", "group": "a/main",
                       "pedestrian_assignment_id": "a", "name": org.name, "address": org.address}
        checkers = [w.user_id for w in crowd.workers.values() if w.role == "quality"]
        # Every task made from self.inputs has this content key, so this ranking.
        self.ranking = rank_checkers(SEED, canonical(["quality", photo_id, "imgs_facade"]), checkers)

    def task(self, overlap: int = 3) -> str:
        (task,) = self.store.create_tasks(self.pool_id, [{"input_values": self.inputs, "overlap": overlap}],
                                          self.now)
        return str(task["id"])

    def restrict(self, user_id: str, scope: str = "POOL", **extra: Any) -> dict[str, Any]:
        target = {"POOL": {"pool_id": self.pool_id}, "PROJECT": {"project_id": self.project_id}}.get(scope, {})
        doc, _ = self.store.put_restriction({"scope": scope, "user_id": user_id, **target, **extra}, self.now)
        return doc

    async def steps(self, n: int) -> None:
        for _ in range(n):
            self.now += timedelta(seconds=0.2)
            await self.crowd.step(self.now)

    async def until_answered(self, *task_ids: str) -> None:
        for _ in range(200):
            await self.steps(1)
            if all(self.store.get_task(t)["remaining_overlap"] == 0 for t in task_ids) \
                    and not self.store.assignments(self.pool_id, "ACTIVE"):
                return
        raise AssertionError(f"tasks not answered: {task_ids}")

    def answerers(self, task_id: str) -> list[str]:
        """User ids of the submitted answers to a task (one entry per answer)."""
        return sorted(a["user_id"] for a in self.store.assignments(self.pool_id)
                      if a["status"] in ("SUBMITTED", "ACCEPTED") and any(t["id"] == task_id for t in a["tasks"]))

    def taken_by(self, user_id: str) -> list[dict[str, Any]]:
        return [a for a in self.store.assignments(self.pool_id) if a["user_id"] == user_id]


async def _setup(store: Store, demo: Scenario, http: aiohttp.ClientSession, tmp_path: Path) -> Setup:
    crowd = Crowd(store, seed=SEED, speed=SPEED, http=http)
    await crowd.setup(demo, T0)
    return Setup(crowd, store, demo, tmp_path / "facade.jpg")


async def test_a_worker_restricted_on_the_pool_gets_no_task_and_the_next_one_answers(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    s = await _setup(store, demo, http, tmp_path)
    banned = s.ranking[0]
    s.restrict(banned, private_comment="fake answers")
    one, two = s.task(), s.task()
    await s.until_answered(one, two)
    assert s.answerers(one) == s.answerers(two) == sorted(s.ranking[1:4])
    assert s.taken_by(banned) == []
    assert s.crowd.state()["errors"] == 0


async def test_a_project_restriction_covers_the_pool_and_one_elsewhere_does_not(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    s = await _setup(store, demo, http, tmp_path)
    assert s.crowd.setup_result is not None
    other_pool = s.crowd.setup_result["pools"]["relevance"]
    s.restrict(s.ranking[0], "PROJECT")
    store.put_restriction({"scope": "POOL", "user_id": s.ranking[1], "pool_id": other_pool}, s.now)
    store.put_restriction({"scope": "PROJECT", "user_id": s.ranking[2],
                           "project_id": s.crowd.setup_result["project_ids"]["relevance"]}, s.now)
    task = s.task()
    await s.until_answered(task)
    assert s.answerers(task) == sorted(s.ranking[1:4])   # ranking[1] and [2] are barred elsewhere only


async def test_work_taken_before_the_restriction_is_finished_and_nothing_new_is_taken(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    s = await _setup(store, demo, http, tmp_path)
    banned = s.ranking[0]
    first = s.task()
    for _ in range(50):   # until the first of the ranking holds the task
        await s.steps(1)
        if s.taken_by(banned):
            break
    (held,) = s.taken_by(banned)
    assert held["status"] == "ACTIVE"
    s.restrict(banned)
    second = s.task()
    await s.until_answered(first, second)
    assert store.get_assignment(held["id"])["status"] == "ACCEPTED"   # finished (auto-accepted)
    assert s.answerers(first) == sorted(s.ranking[:3])
    assert s.answerers(second) == sorted(s.ranking[1:4])
    assert [a["id"] for a in s.taken_by(banned)] == [held["id"]]


async def test_a_lifted_or_expired_restriction_no_longer_counts(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    s = await _setup(store, demo, http, tmp_path)
    lifted = s.restrict(s.ranking[0])
    s.restrict(s.ranking[1], "ALL_PROJECTS", will_expire=fmt_time(s.now + timedelta(minutes=5)))
    before = s.task()
    await s.until_answered(before)
    assert s.answerers(before) == sorted(s.ranking[2:5])
    assert store.delete_restriction(lifted["id"])
    s.now += timedelta(minutes=5)                          # the other one expires
    after = s.task()
    await s.until_answered(after)
    assert s.answerers(after) == sorted(s.ranking[:3])


async def test_a_restricted_pedestrian_does_not_walk(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    s = await _setup(store, demo, http, tmp_path)
    assert s.crowd.setup_result is not None
    pool = s.crowd.setup_result["pools"]["pedestrian"]
    walker = sorted(s.crowd.org_pedestrian.values())[0]
    own = [t for t, org in s.crowd.task_org.items() if s.crowd.org_pedestrian[org] == walker]
    store.put_restriction({"scope": "POOL", "user_id": walker, "pool_id": pool}, s.now)
    expected = len(s.crowd.task_org) - len(own)
    for _ in range(400):
        await s.steps(1)
        if len(store.assignments(pool, "SUBMITTED")) >= expected:
            break
    await s.steps(20)
    assert len(store.assignments(pool, "SUBMITTED")) == expected
    assert [a for a in store.assignments(pool) if a["user_id"] == walker] == []
    assert all(store.get_task(t)["remaining_overlap"] == 1 for t in own)   # reserved for it: nobody else


async def test_an_overlap_raised_on_a_closed_pool_is_answered_once_the_pool_opens(
        tmp_path: Path, store: Store, demo: Scenario, http: aiohttp.ClientSession) -> None:
    """3 -> 5 on a fully answered task of a closed pool (Toloka keeps such a change): nobody
    answers while the pool is closed; once it opens, exactly the next workers of the ranking
    answer, one answer each, the restricted one passed over."""
    s = await _setup(store, demo, http, tmp_path)
    task = s.task(overlap=3)
    await s.until_answered(task)
    assert s.answerers(task) == sorted(s.ranking[:3])
    store.close_pool(s.pool_id, s.now)
    raised = store.set_task_overlap(task, 5, False)
    assert (raised["overlap"], raised["remaining_overlap"], raised["infinite_overlap"]) == (5, 2, False)
    s.restrict(s.ranking[3])
    await s.steps(30)
    assert s.answerers(task) == sorted(s.ranking[:3]) and not store.assignments(s.pool_id, "ACTIVE")
    store.open_pool(s.pool_id, s.now)
    await s.until_answered(task)
    answers = s.answerers(task)
    assert len(answers) == 5 and len(set(answers)) == 5
    assert answers == sorted([*s.ranking[:3], *s.ranking[4:6]])
    assert s.crowd.state()["errors"] == 0
