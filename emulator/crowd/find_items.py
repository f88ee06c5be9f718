"""The simulated crowd of the find_items scenario: finders, verifiers and comparers.

:class:`FindItemsCrowd` has the interface of :class:`emulator.crowd.simulator.Crowd`
(``setup``, ``step``, ``state``, ``truth``, ``scenario``, ``setup_result``), so the app drives
either the same way. Set-up creates three projects and pools (``find_items``, reviewed by the
requester, with the "on REJECT raise the overlap by 1 and reopen" rule; ``verification`` and
``sbs``, auto-accepted), a skill per checking pool, and one find_items task per query image
(``{"image": <catalogue URL>}``, the scenario's overlap).

Each step every worker moves on by one state change:

- a free finder takes the next image task it was chosen for and "searches"; when the
  simulated time is over it writes the truth and submits ``{"found_link": <product URL>}``;
- a free verifier or comparer takes 1-3 of the tasks of its pool it was chosen for, decides
  its answers, and submits them once its simulated working time is over.

The outcome is a function of the seed and the scenario only (see
:mod:`emulator.crowd.allocation`): who works on a task is the first ``overlap`` workers of a
ranking seeded by (seed, content key), leaving out the task's ``unavailable_for`` (and those
outside ``reserved_for``) and workers who gave it back; the content key comes from what the
task shows (the image and product ids read from the links' URL paths, and for a verification
task the finder whose find it checks), never from time-based ids. When the requester rejects
a find and the pool's rule raises the task's overlap, the next finder of the ranking takes it;
a finder never takes the same image twice. What a finder links is drawn from (seed, image,
finder); whether a checker is right from (seed, content key, checker).

Worker states live in ``store.kv`` (``crowd/w/<user id>``) and the truth in the store's truth
table, so a restarted emulator resumes where it stopped.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from emulator.crowd.allocation import canonical, chosen_checkers, rank_checkers, unit_draw
from emulator.crowd.behaviour import known_label
from emulator.crowd.catalogue import (
    Catalogue,
    build_catalogue,
    image_of_url,
    image_url,
    product_of_url,
    product_url,
    renderer,
)
from emulator.crowd.documents import pool_doc, project_doc
from emulator.crowd.find_items_behaviour import comparison_truth, give_answer, plan_find, verification_truth
from emulator.crowd.find_items_scenario import (
    ANSWER_FIELD,
    ASSIGNMENT_FIELD,
    CHECK_POOLS,
    FIND_ITEMS_POOLS,
    IMAGE_FIELD,
    KIND,
    LEFT,
    LEFT_FIELD,
    LINK_FIELD,
    NO,
    RIGHT,
    RIGHT_FIELD,
    YES,
    FindItemsScenario,
)
from emulator.crowd.scenario import ScenarioError, parse_scenario
from emulator.crowd.simulator import user_id_for
from emulator.ids import fmt_time
from emulator.quality_control import reopen_on_reject_config
from emulator.store import Store

log = logging.getLogger("emulator.crowd")

_SETUP_KEY = "crowd/setup"  # shared with the pedestrian crowd: one scenario per store
_PROGRESS_KEY = "crowd/setup_progress"
#: Simulated seconds a finder rests after submitting, before the next image.
FINDER_REST_SECONDS = 10.0
#: At most this many rendered pictures are kept in memory.
RENDER_CACHE = 512


@dataclass(frozen=True)
class FindWorker:
    """A simulated Toloker of the scenario: a finder or a checker of one pool."""

    user_id: str
    name: str
    role: str  # find_items | verification | sbs
    kind: str  # good | sloppy | junk for finders, "checker" otherwise
    accuracy: float  # how often a checker is right (1.0 for finders: unused)
    skill: float  # the Toloka skill value the requester sees (checkers only)


def build_find_workers(scenario: FindItemsScenario, seed: int) -> list[FindWorker]:
    """Every worker of the scenario, with seeded accuracies and skills."""
    workers = [FindWorker(user_id_for(scenario.name, seed, f.name), f.name, "find_items", f.kind, 1.0, 0.0)
               for f in scenario.finders]
    for pool in CHECK_POOLS:
        crowd = scenario.checkers(pool)
        for i in range(crowd.workers):
            name = f"{pool}-checker-{i + 1}"
            rng = random.Random(f"{seed}:worker:{name}")
            accuracy = rng.uniform(*crowd.accuracy)
            skill = round(min(100.0, max(0.0, accuracy * 100 + rng.gauss(0, 3))), 2)
            workers.append(FindWorker(user_id_for(scenario.name, seed, name), name, pool, "checker", accuracy, skill))
    return workers


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _plain(value: Any) -> Any:
    """JSON read back from the store has Decimals for floats; the scenario parser wants floats."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Content:
    """What a checking task shows, independent of ids and time: its content key, the right
    label and the other one, and what the truth records about it."""

    key: str
    correct: str
    other: str
    facts: dict[str, Any]


class FindItemsCrowd:
    """The simulated crowd of a find_items scenario (see the module docstring)."""

    def __init__(self, store: Store, *, seed: int, speed: float, base_url: str) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.store = store
        self.seed = seed
        self.speed = speed
        self.base_url = base_url
        self.scenario: FindItemsScenario | None = None
        self.setup_result: dict[str, Any] | None = None
        self.catalogue: Catalogue | None = None
        self.workers: dict[str, FindWorker] = {}
        self.errors = 0
        self._pool_workers: dict[str, list[str]] = {}
        self._rankings: dict[str, list[str]] = {}  # task id -> workers in claiming order
        self._contents: dict[str, Content] = {}  # checking task id -> what it shows
        self._submission_cache: dict[str, dict[str, Any]] = {}
        self._short_warned: set[str] = set()
        self._renders: dict[tuple[str, str], bytes] = {}
        self._adopt_pending = False
        self._restore()

    # ------------------------------------------------------------------ setup

    def _restore(self) -> None:
        """Pick up a find_items scenario a previous run of this store already set up."""
        saved = self.store.kv_get(_SETUP_KEY)
        if not saved or saved.get("kind") != KIND:
            return
        scenario = parse_scenario(_plain(saved["scenario"]))
        assert isinstance(scenario, FindItemsScenario)
        self.seed = int(saved["seed"])
        self.base_url = str(saved["base_url"])
        self._activate(scenario, saved["result"])

    def _activate(self, scenario: FindItemsScenario, result: dict[str, Any]) -> None:
        self.scenario = scenario
        self.setup_result = result
        self.catalogue = build_catalogue(scenario.name, self.seed, scenario.catalogue)
        self.workers = {w.user_id: w for w in build_find_workers(scenario, self.seed)}
        self._pool_workers = {pool: sorted(w.user_id for w in self.workers.values() if w.role == pool)
                              for pool in FIND_ITEMS_POOLS}
        self._rankings = {}
        self._contents = {}
        self._adopt_pending = True

    async def setup(self, scenario: FindItemsScenario, now: datetime) -> dict[str, Any]:
        """Create the projects, skills, the three pools (open), one find_items task per query
        image, the checkers' skills and the workers' truth; return the ids.

        Idempotent like the pedestrian crowd's: the same ids on a store that already holds this
        scenario, a resumed set-up after an interruption, and a refusal for a store that holds
        a different scenario. Links keep the emulator URL of the set-up (``base_url``).
        """
        saved = self.store.kv_get(_SETUP_KEY)
        if saved:
            if saved["digest"] != scenario.digest:
                raise ScenarioError("setup", f"the scenario this store already holds ({saved['name']})",
                                    scenario.name)
            self._restore()
            assert self.setup_result is not None
            return self.setup_result

        progress: dict[str, Any] = self.store.kv_get(_PROGRESS_KEY) or {}
        if progress and progress.get("digest") != scenario.digest:
            raise ScenarioError("setup", "the scenario whose setup was interrupted", scenario.name)
        progress.setdefault("digest", scenario.digest)
        progress.setdefault("base_url", self.base_url)
        progress.setdefault("projects", {})
        progress.setdefault("skills", {})
        progress.setdefault("pools", {})
        base_url = str(progress["base_url"])
        catalogue = build_catalogue(scenario.name, self.seed, scenario.catalogue)
        self._create_objects(scenario, catalogue, progress, now)
        self._introduce_workers(scenario, progress["skills"], now)
        for kind in FIND_ITEMS_POOLS:
            pool = self.store.get_pool(progress["pools"][kind])
            if pool is not None and pool["status"] != "OPEN":
                self.store.open_pool(pool["id"], now)

        result = {
            "scenario": scenario.name,
            "kind": KIND,
            "pools": dict(progress["pools"]),
            "skills": dict(progress["skills"]),
            "project_ids": dict(progress["projects"]),
            "images": {image_id: image_url(base_url, image_id) for image_id in catalogue.images},
            "image_tasks": {image_id: task_id for task_id, image_id in progress["task_image"].items()},
            "catalogue_url": base_url,
        }
        self.store.kv_set(_SETUP_KEY, {
            "kind": KIND, "name": scenario.name, "digest": scenario.digest, "seed": self.seed,
            "scenario": scenario.source, "result": result, "base_url": base_url, "created": fmt_time(now)})
        self.base_url = base_url
        self._activate(scenario, result)
        log.info("crowd set up: scenario %s (find_items), pools %s", scenario.name, result["pools"])
        return result

    def _create_objects(self, scenario: FindItemsScenario, catalogue: Catalogue, progress: dict[str, Any],
                        now: datetime) -> None:
        """Projects, skills, pools and the image tasks that ``progress`` does not list yet;
        each creation is recorded at once, so an interrupted set-up resumes without duplicates."""

        def remember() -> None:
            self.store.kv_set(_PROGRESS_KEY, progress)

        for kind in FIND_ITEMS_POOLS:
            if kind not in progress["projects"]:
                progress["projects"][kind] = self.store.create_project(_project_doc(scenario, kind), now)["id"]
                remember()
        for kind in CHECK_POOLS:
            if kind not in progress["skills"]:
                skill = self.store.create_skill(f"{scenario.name} {kind}", now,
                                                {"private_comment": f"{scenario.name}: {kind} accuracy"})
                progress["skills"][kind] = skill["id"]
                remember()
        for kind in FIND_ITEMS_POOLS:
            if kind not in progress["pools"]:
                doc = _pool_doc(scenario, kind, progress["projects"][kind], now)
                progress["pools"][kind] = self.store.create_pool(doc, now)["id"]
                remember()
        if "task_image" not in progress:
            base_url = str(progress["base_url"])
            items = [{"input_values": {IMAGE_FIELD: image_url(base_url, image_id)},
                      "overlap": scenario.pools["find_items"].overlap} for image_id in catalogue.images]
            tasks = self.store.create_tasks(progress["pools"]["find_items"], items, now)
            progress["task_image"] = {t["id"]: image_id for t, image_id in zip(tasks, catalogue.images, strict=True)}
            remember()

    def _introduce_workers(self, scenario: FindItemsScenario, skills: Mapping[str, str], now: datetime) -> None:
        """The checkers' skills, every worker's truth and first state (finders start later)."""
        for w in build_find_workers(scenario, self.seed):
            if w.role in CHECK_POOLS:
                self.store.set_user_skill(skills[w.role], w.user_id, w.skill, now)
            finder = w.role == "find_items"
            self.store.put_truth("worker", w.user_id, {
                "user_id": w.user_id, "name": w.name, "role": w.role, "kind": w.kind,
                "accuracy": None if finder else round(w.accuracy, 4), "skill": None if finder else w.skill})
            delay = 0.0
            if finder:
                delay = random.Random(f"{self.seed}:start:{w.name}").uniform(*scenario.pace.find_start_seconds)
            self._save_state(w.user_id, {"phase": "idle", "free_at": _iso(now + self._real(delay))})

    # ------------------------------------------------------------------ state

    def _state(self, user_id: str) -> dict[str, Any]:
        return dict(self.store.kv_get(f"crowd/w/{user_id}") or {"phase": "idle"})

    def _save_state(self, user_id: str, state: dict[str, Any]) -> None:
        self.store.kv_set(f"crowd/w/{user_id}", state)

    def _real(self, simulated_seconds: float) -> timedelta:
        return timedelta(seconds=simulated_seconds / self.speed)

    def _pool_open(self, kind: str) -> str | None:
        assert self.setup_result is not None
        pool_id = self.setup_result["pools"][kind]
        pool = self.store.get_pool(pool_id)
        return pool_id if pool is not None and pool.get("status") == "OPEN" else None

    # ------------------------------------------------------------------ pictures

    async def picture(self, kind: str, object_id: str) -> bytes | None:
        """JPEG bytes of a catalogue image (``kind="images"``) or product (``"products"``);
        None if there is no such thing. Drawn in a thread, then kept."""
        if self.catalogue is None:
            return None
        cached = self._renders.get((kind, object_id))
        if cached is not None:
            return cached
        data = await asyncio.to_thread(renderer(self.catalogue, self.seed), kind, object_id)
        if data is not None and len(self._renders) < RENDER_CACHE:
            self._renders[(kind, object_id)] = data
        return data

    # ------------------------------------------------------------------ step

    async def step(self, now: datetime) -> None:
        """Advance every worker by one state change (a checker who submits may take its next
        tasks at once). Never raises for one bad task."""
        if self.scenario is None:
            return
        if self._adopt_pending:
            self._adopt_pending = False
            self._adopt_orphans(now)
        order = list(self.workers.values())
        random.Random(f"{self.seed}:order:{now.isoformat()}").shuffle(order)  # who moves first: timing only
        for worker in order:
            try:
                await self._advance(worker, now)
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken task must not stop the crowd
                self.errors += 1
                log.exception("crowd worker %s failed; dropping its current work", worker.name)
                self._drop(worker, now)

    def _adopt_orphans(self, now: datetime) -> None:
        """After a (re)start: resume an ACTIVE assignment of a worker whose saved state does not
        know it (the emulator died between taking the task and saving the state)."""
        assert self.setup_result is not None
        for kind, pool_id in self.setup_result["pools"].items():
            for doc in self.store.assignments(pool_id, "ACTIVE"):
                worker = self.workers.get(doc["user_id"])
                if worker is None:
                    continue
                state = self._state(worker.user_id)
                if state.get("assignment_id") == doc["id"] or state.get("phase", "idle") != "idle":
                    continue
                if kind == "find_items":
                    state = {"phase": "finding", "assignment_id": doc["id"], "task_id": doc["tasks"][0]["id"],
                             "due": _iso(now)}
                else:
                    state = {"phase": "checking", "pool": kind, "assignment_id": doc["id"], "solutions": None}
                self._save_state(worker.user_id, state)
                log.info("crowd: %s resumes assignment %s", worker.name, doc["id"])

    def _drop(self, worker: FindWorker, now: datetime) -> None:
        state = self._state(worker.user_id)
        assignment_id = str(state.get("assignment_id") or "")
        try:
            doc = self.store.get_assignment(assignment_id) if assignment_id else None
            if doc is not None and doc["status"] == "ACTIVE":
                self.store.skip_assignment(assignment_id, now)
        except Exception:
            log.exception("could not skip assignment %s", assignment_id)
        self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now + self._real(60))})

    async def _advance(self, worker: FindWorker, now: datetime) -> None:
        state = self._state(worker.user_id)
        phase = state.get("phase", "idle")
        if phase == "finding":
            if now >= _dt(state["due"]):
                self._finish_find(worker, state, now)
            return
        if phase == "checking":
            if state.get("solutions") is None:
                self._decide(worker, state, now)
                return
            if now < _dt(state["due"]):
                return
            self._finish_check(worker, state, now)
            state = self._state(worker.user_id)  # idle: a checker goes on to its next tasks at once
        if now < _dt(state.get("free_at", _iso(now))):
            return
        if worker.role == "find_items":
            self._start_find(worker, now)
        else:
            self._start_check(worker, now)

    # ------------------------------------------------------------------ who takes a task

    def _key(self, pool: str, task: Mapping[str, Any]) -> str:
        """The content key a task's workers are ranked by (see the module docstring)."""
        if pool == "find_items":
            image_id = image_of_url((task.get("input_values") or {}).get(IMAGE_FIELD))
            return canonical(["find", image_id]) if image_id else canonical(["input", pool, task.get("input_values")])
        return self._content(pool, task).key

    def _chosen(self, pool: str, task: Mapping[str, Any]) -> list[str]:
        """The workers who take this task: the first ``overlap`` allowed ones of its ranking.
        The overlap is read again each time: the quality-control rule may have raised it."""
        ranking = self._rankings.get(task["id"])
        if ranking is None:
            try:
                key = self._key(pool, task)
            except (ValueError, TypeError, KeyError, AttributeError) as exc:  # input_values not an object
                self.errors += 1
                log.error("crowd: task %s of the %s pool cannot be worked on (%s); nobody will take it",
                          task["id"], pool, exc)
                key = None
            ranking = self._rankings[task["id"]] = (
                [] if key is None else rank_checkers(self.seed, key, self._pool_workers.get(pool, ())))
        gone = []
        for assignment_id in self.store.task_assignments.get(task["id"], ()):
            doc = self.store.get_assignment(assignment_id)
            if doc is not None and doc["status"] in ("SKIPPED", "EXPIRED"):
                gone.append(doc["user_id"])
        overlap = None if task.get("infinite_overlap") else int(task.get("overlap") or 0)
        chosen = chosen_checkers(ranking, overlap=overlap, unavailable=task.get("unavailable_for") or (),
                                 reserved=task.get("reserved_for") or (), gone=gone)
        if overlap is not None and len(chosen) < overlap and task["id"] not in self._short_warned:
            self._short_warned.add(task["id"])
            log.warning("crowd: task %s wants %d answers but only %d workers of the %s pool may give one",
                        task["id"], overlap, len(chosen), pool)
        return chosen

    def _mine(self, pool: str, worker: FindWorker) -> tuple[str | None, list[dict[str, Any]]]:
        """(pool id, the open tasks of ``pool`` this worker was chosen for, in creation order)."""
        pool_id = self._pool_open(pool)
        if pool_id is None:
            return None, []
        open_count = len(self.store.pool_open_tasks.get(pool_id, ()))
        if not open_count:
            return pool_id, []
        tasks = self.store.available_tasks(pool_id, worker.user_id, open_count)
        if pool == "find_items":  # only the catalogue's images: there is nothing else to look for
            tasks = [t for t in tasks if image_of_url((t.get("input_values") or {}).get(IMAGE_FIELD)) in
                     (self.catalogue.images if self.catalogue else {})]
        return pool_id, [t for t in tasks if worker.user_id in self._chosen(pool, t)]

    # ------------------------------------------------------------------ finders

    def _start_find(self, worker: FindWorker, now: datetime) -> bool:
        assert self.scenario is not None
        pool_id, mine = self._mine("find_items", worker)
        if pool_id is None or not mine:
            return False
        task = mine[0]
        assignment = self.store.create_assignment(pool_id, worker.user_id, [task["id"]], now)
        rng = random.Random(f"{self.seed}:search:{worker.user_id}:{task['id']}")
        seconds = rng.uniform(*self.scenario.pace.find_seconds)
        self._save_state(worker.user_id, {"phase": "finding", "assignment_id": assignment["id"],
                                          "task_id": task["id"], "due": _iso(now + self._real(seconds))})
        return True

    def _find(self, worker: FindWorker, image_id: str) -> str:
        """The product ``worker`` links for the image: drawn from (seed, image, finder)."""
        assert self.scenario is not None and self.catalogue is not None
        rng = random.Random(f"{self.seed}:find:{image_id}:{worker.name}")
        return plan_find(worker.kind, self.catalogue.images[image_id], self.catalogue, self.scenario.behaviour, rng)

    def _finish_find(self, worker: FindWorker, state: dict[str, Any], now: datetime) -> None:
        assert self.catalogue is not None
        assignment_id = state["assignment_id"]
        doc = self.store.get_assignment(assignment_id)
        if doc is None or doc["status"] != "ACTIVE":
            self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})
            return
        truth = self.store.get_truth("submission", assignment_id)
        if truth is None:  # written before submitting, so a restart submits what the truth says
            task = doc["tasks"][0]
            image_id = image_of_url((task.get("input_values") or {}).get(IMAGE_FIELD))
            if image_id is None or image_id not in self.catalogue.images:
                raise ValueError(f"task {task['id']} shows no catalogue image")
            product_id = self._find(worker, image_id)
            product = self.catalogue.products[product_id]
            relevance = self.catalogue.relevance(image_id, product_id)
            truth = {
                "assignment_id": assignment_id, "task_id": task["id"], "image_id": image_id,
                "image": (task.get("input_values") or {}).get(IMAGE_FIELD),
                "worker_id": worker.user_id, "worker_name": worker.name, "kind": worker.kind,
                "product_id": product_id, "link": product_url(self.base_url, product_id),
                "position": relevance if relevance < self.catalogue.candidates else None,
                "matches": self.catalogue.matches(image_id, product_id),
                "junk": product.junk or product.image_id != image_id,
                "submitted": fmt_time(now),
            }
            self.store.put_truth("submission", assignment_id, truth)
        self.store.submit_assignment(assignment_id, [{"output_values": {LINK_FIELD: truth["link"]}}], now)
        self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now + self._real(FINDER_REST_SECONDS))})
        log.info("finder %s submitted %s (%s)", worker.name, assignment_id,
                 "match" if truth["matches"] else "junk" if truth["junk"] else "wrong")

    # ------------------------------------------------------------------ checkers

    def _submission(self, assignment_id: object) -> dict[str, Any] | None:
        """The truth of a finder's submission (cached: it never changes once written)."""
        if not isinstance(assignment_id, str) or not assignment_id:
            return None
        found = self._submission_cache.get(assignment_id)
        if found is None:
            found = self.store.get_truth("submission", assignment_id)
            if found is not None:
                self._submission_cache[assignment_id] = found
        return found

    def _content(self, pool: str, task: Mapping[str, Any]) -> Content:
        """What a verification or comparison task shows, from its input alone (cached)."""
        cached = self._contents.get(task["id"])
        if cached is not None:
            return cached
        assert self.catalogue is not None
        inputs = task.get("input_values") or {}
        if not isinstance(inputs, Mapping):
            raise ValueError(f"input_values is a {type(inputs).__name__}, not an object")
        image_id = image_of_url(inputs.get(IMAGE_FIELD))
        if image_id not in self.catalogue.images:
            image_id = None
        if pool == "verification":
            product_id = product_of_url(inputs.get(LINK_FIELD))
            made = self._submission(inputs.get(ASSIGNMENT_FIELD))
            finder = made["worker_id"] if made else None
            readable = image_id is not None and product_id is not None
            key = canonical(["verification", image_id, product_id, finder]) if readable else \
                canonical(["input", pool, dict(inputs)])
            correct = verification_truth(self.catalogue, image_id, product_id)
            content = Content(key, correct, NO if correct == YES else YES,
                              {"image_id": image_id, "product_id": product_id, "finder_id": finder,
                               "finder_assignment_id": inputs.get(ASSIGNMENT_FIELD),
                               "matches": correct == YES})
        elif pool == "sbs":
            left, right = product_of_url(inputs.get(LEFT_FIELD)), product_of_url(inputs.get(RIGHT_FIELD))
            readable = image_id is not None and left is not None and right is not None
            key = canonical(["sbs", image_id, left, right]) if readable else canonical(["input", pool, dict(inputs)])
            correct, tie = comparison_truth(self.catalogue, image_id, left, right, unit_draw(self.seed, "tie", key))
            content = Content(key, correct, RIGHT if correct == LEFT else LEFT,
                              {"image_id": image_id, "left": left, "right": right, "tie": tie,
                               "left_relevance": self.catalogue.relevance(image_id, left),
                               "right_relevance": self.catalogue.relevance(image_id, right)})
        else:
            raise ValueError(f"{pool!r} is not a checking pool")
        self._contents[task["id"]] = content
        return content

    def _start_check(self, worker: FindWorker, now: datetime) -> bool:
        """Take the next 1-3 tasks of the worker's pool it was chosen for (creation order)."""
        assert self.scenario is not None
        pool_id, mine = self._mine(worker.role, worker)
        if pool_id is None or not mine:
            return False
        rng = random.Random(f"{self.seed}:take:{worker.user_id}:{now.isoformat()}")
        limit = rng.randint(*self.scenario.pace.tasks_per_assignment)
        assignment = self.store.create_assignment(pool_id, worker.user_id, [t["id"] for t in mine[:limit]], now)
        state = {"phase": "checking", "pool": worker.role, "assignment_id": assignment["id"], "solutions": None}
        self._save_state(worker.user_id, state)  # a restart decides the answers of this assignment again
        self._decide(worker, state, now)
        return True

    def _decide(self, worker: FindWorker, state: dict[str, Any], now: datetime) -> None:
        """Decide the answers to the assignment's tasks (the same after a restart)."""
        assert self.scenario is not None
        pool = state["pool"]
        assignment = self.store.get_assignment(state["assignment_id"])
        if assignment is None or assignment["status"] != "ACTIVE":
            self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})
            return
        solutions, records = [], []
        seconds = 0.0
        for embedded in assignment["tasks"]:
            task = self.store.get_task(embedded["id"]) or embedded
            content = self._content(pool, task)
            golden = known_label(task, ANSWER_FIELD)
            correct, other = content.correct, content.other
            if golden is not None:
                correct, other = golden, (content.correct if golden != content.correct else content.other)
            given = give_answer(correct, other, worker.accuracy, unit_draw(self.seed, "answer", content.key,
                                                                           worker.user_id))
            pace = random.Random(f"{self.seed}:pace:{worker.user_id}:{task['id']}")
            seconds += pace.uniform(*self.scenario.pace.verification_seconds_per_task)
            solutions.append({"output_values": {ANSWER_FIELD: given}})
            records.append({"task_id": task["id"], "given": given, "correct": correct, "golden": golden is not None,
                            "key": content.key, **content.facts})
        state.update(solutions=solutions, records=records, due=_iso(now + self._real(seconds)))
        self._save_state(worker.user_id, state)

    def _finish_check(self, worker: FindWorker, state: dict[str, Any], now: datetime) -> None:
        assignment_id = state["assignment_id"]
        doc = self.store.get_assignment(assignment_id)
        if doc is not None and doc["status"] == "ACTIVE":
            self.store.submit_assignment(assignment_id, state["solutions"], now)
            self.store.put_truth("answer", assignment_id, {
                "assignment_id": assignment_id, "pool": state["pool"], "worker_id": worker.user_id,
                "worker_name": worker.name, "accuracy": round(worker.accuracy, 4), "tasks": state["records"],
                "submitted": fmt_time(now)})
        self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})

    # ------------------------------------------------------------------ reporting

    def state(self) -> dict[str, Any]:
        """Counters for ``/_emulator/state``."""
        phases: dict[str, int] = {}
        for user_id in self.workers:
            phase = self._state(user_id).get("phase", "idle")
            phases[phase] = phases.get(phase, 0) + 1
        return {
            "scenario": self.scenario.name if self.scenario else None,
            "kind": KIND,
            "seed": self.seed,
            "speed": self.speed,
            "workers": len(self.workers),
            "phases": phases,
            "finds_submitted": len(self.store.all_truth("submission")) if self.scenario else 0,
            "checks_submitted": len(self.store.all_truth("answer")) if self.scenario else 0,
            "errors": self.errors,
        }

    def truth(self) -> dict[str, Any]:
        """The whole ground truth, for ``/_emulator/truth`` and for scoring a run
        (:func:`emulator.crowd.find_items_truth.score_find_items`)."""
        saved = self.store.kv_get(_SETUP_KEY) or {}
        return {
            "kind": KIND,
            "scenario": saved.get("name"),
            "seed": saved.get("seed"),
            "setup": saved.get("result"),
            "matching_per_image": self.scenario.catalogue.matching if self.scenario else None,
            "links_per_image": self.scenario.links_per_image if self.scenario else None,
            "catalogue": self.catalogue.to_truth(self.base_url) if self.catalogue else None,
            "workers": self.store.all_truth("worker"),
            "submissions": self.store.all_truth("submission"),
            "answers": self.store.all_truth("answer"),
        }


# ---------------------------------------------------------------- documents


def _project_doc(scenario: FindItemsScenario, kind: str) -> dict[str, Any]:
    url = {"type": "url", "required": True}
    if kind == "find_items":
        inputs: dict[str, Any] = {IMAGE_FIELD: dict(url)}
        outputs: dict[str, Any] = {LINK_FIELD: {"type": "url", "required": True}}
        title = "Find this item in the online shop"
    elif kind == "verification":
        inputs = {IMAGE_FIELD: dict(url), LINK_FIELD: dict(url), ASSIGNMENT_FIELD: {"type": "string", "required": True}}
        outputs = {ANSWER_FIELD: {"type": "string", "required": True, "allowed_values": [YES, NO]}}
        title = "Is this the item from the picture?"
    else:
        inputs = {IMAGE_FIELD: dict(url), LEFT_FIELD: dict(url), RIGHT_FIELD: dict(url)}
        outputs = {ANSWER_FIELD: {"type": "string", "required": True, "allowed_values": [LEFT, RIGHT]}}
        title = "Which item is more like the one in the picture?"
    return project_doc(scenario.name, kind, title, inputs, outputs)


def _pool_doc(scenario: FindItemsScenario, kind: str, project_id: str, now: datetime) -> dict[str, Any]:
    doc = pool_doc(scenario.name, kind, scenario.pools[kind], project_id, now, in_creation_order=False)
    if kind == "find_items":
        doc["mixer_config"] = {"real_tasks_count": 1, "golden_tasks_count": 0, "training_tasks_count": 0}
        doc["quality_control"] = {"configs": [reopen_on_reject_config(delta=1, open_pool=True)]}
    else:
        doc["mixer_config"] = {"real_tasks_count": scenario.pace.tasks_per_assignment[1], "golden_tasks_count": 0,
                               "training_tasks_count": 0}
    return doc
