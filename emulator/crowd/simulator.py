"""The simulated crowd: pedestrians and checkers working through the emulator's store.

:class:`Crowd` is driven by the app's background loop: ``await crowd.step(now)`` every few
hundred milliseconds. Each step, the crowd first looks at new verification tasks, then every
worker moves on by one state change (a checker who submits takes its next tasks in the same
step):

- a free pedestrian answers the visit checks it was chosen for (below), else takes the next
  pedestrian task of *its* organizations (an ACTIVE assignment) and "walks"; when the
  simulated walk is over it uploads marked JPEGs (``store.add_attachment``) and submits;
- a free checker takes 1-3 of the tasks of its verification pool it was chosen for (plus,
  in a pool with control tasks, maybe a control task next to each), decides its answers, and
  submits them once its simulated working time is over.

The outcome is a function of the seed and the scenario only, never of timing (tick period,
``speed``, restarts, the order in which tasks appear); see :mod:`emulator.crowd.allocation`:

- who walks where is fixed at setup (a seeded deal of organizations to pedestrians, also set
  as the tasks' ``reserved_for``); what is submitted for an organization is drawn from an RNG
  seeded by (seed, organization), and photos are named ``<org id>/<field>/<n>``;
- the first time the crowd sees a verification task it opens every photo link in it
  (http/https through the shared aiohttp session, ``file://`` from disk in a thread), reads
  the markers and derives a content key (a link that does not open is looked at twice more,
  a second apart, before the task input itself becomes the key). What it saw is kept in
  ``store.kv`` (``crowd/t/<task id>``), so a restarted emulator never looks again;
- exactly ``overlap`` checkers answer a task: the first ones of a ranking seeded by (seed,
  content key) among the pool's workers, leaving out the task's ``unavailable_for`` (and
  those outside ``reserved_for``), the pedestrian whose work it is, and workers the requester
  restricted on the pool, its project or all projects (``PUT /user-restrictions``; what such a
  worker has already taken it still finishes). Other checkers never take it. A chosen
  checker's answer is right when its draw for (seed, content key, worker) is below its
  accuracy.

Checkers come in three kinds (``verification.<pool>``): good ones and careless ones (accuracy
from their kind's range) and spammers (always the pool's positive or negative label). A pool
with ``control`` gets control tasks at set-up (:mod:`emulator.crowd.control`, infinite overlap,
``known_solutions``); they are never taken alone but mixed into a checker's assignment next to
a real task, at the pool's rate, drawn from (seed, the real task's content key, worker), so
which control tasks a worker answers and how is also a function of seed and scenario. A
raised overlap brings the next checkers of the same ranking.

Only durations and the emulator's ids and timestamps change from run to run. Durations are
simulated seconds divided by ``speed``. Every worker's state lives in ``store.kv``
(``crowd/w/<user id>``), so a restarted emulator resumes mid-walk or mid-check; an ACTIVE
assignment whose worker's state was lost (a kill right after taking it) is picked up again.

The ground truth (organizations, workers, pedestrian assignments, photos, answers) is written
with ``store.put_truth`` as it is made; :meth:`Crowd.truth` returns all of it.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from emulator.crowd import adopt
from emulator.crowd.allocation import (
    assign_organizations,
    chosen_checkers,
    describe_content,
    org_of_photo,
    rank_checkers,
    unit_draw,
)
from emulator.crowd.behaviour import (
    PedestrianWork,
    answer_task,
    expected_outcome,
    pedestrian_output_values,
    plan_pedestrian_work,
    shows_task_org,
    task_urls,
)
from emulator.crowd.control import build_control_tasks, token_of_url
from emulator.crowd.documents import pool_doc, project_doc
from emulator.crowd.photos import PhotoMarker, read_marker, render_photo
from emulator.crowd.scenario import (
    POOL_KINDS,
    VERIFICATION_POOLS,
    Organization,
    Scenario,
    ScenarioError,
    parse_scenario,
)
from emulator.ids import fmt_time
from emulator.store import Store

log = logging.getLogger("emulator.crowd")

#: A checker gives up on a photo URL after this long (real seconds) or this many bytes.
FETCH_TIMEOUT_SECONDS = 10.0
FETCH_MAX_BYTES = 8 * 1024 * 1024
#: At most this many photo links are being opened at once.
FETCH_CONCURRENCY = 16
#: A task with a link that does not open is looked at this many times, this far apart (real
#: time), before the crowd settles on "unreadable" (a link that is only briefly down is read).
UNREADABLE_LOOKS = 3
UNREADABLE_RETRY = timedelta(seconds=1)
#: New verification tasks looked at per pool and step (the rest wait for the next step).
SEE_PER_STEP = 64

_SETUP_KEY = "crowd/setup"
_PROGRESS_KEY = "crowd/setup_progress"
_SEEN_PREFIX = "crowd/t/"


@dataclass(frozen=True)
class Worker:
    """A simulated Toloker. Pedestrians also check visits (of other pedestrians' work)."""

    user_id: str
    name: str
    role: str  # "pedestrian" or the verification pool it works in
    kind: str  # honest | sloppy | cheat for pedestrians; checker (a good one) | careless | spammer otherwise
    accuracy: float  # how often its verification answers are right (a spammer's: what its skill suggests)
    skill: float  # the Toloka skill value the requester sees (accuracy * 100 with noise)
    spam: str | None = None  # a spammer's constant answer: "positive" or "negative" (its pool's label)

    @property
    def checks(self) -> tuple[str, ...]:
        return ("visit",) if self.role == "pedestrian" else (self.role,)


def user_id_for(scenario_name: str, seed: int, worker_name: str) -> str:
    """A Toloka-like 32-hex user id, stable for a scenario, seed and worker name."""
    return hashlib.md5(f"{scenario_name}:{seed}:{worker_name}".encode()).hexdigest()


def build_workers(scenario: Scenario, seed: int) -> list[Worker]:
    """Every worker of the scenario, with seeded accuracies and skills."""
    workers = []
    visit_range = scenario.verification["visit"].accuracy
    for p in scenario.pedestrians:
        rng = random.Random(f"{seed}:worker:{p.name}")
        accuracy = rng.uniform(*visit_range)
        workers.append(Worker(user_id_for(scenario.name, seed, p.name), p.name, "pedestrian", p.kind,
                              accuracy, _skill(accuracy, rng)))
    for pool in VERIFICATION_POOLS:
        crowd = scenario.verification[pool]
        groups = (("checker", crowd.workers, crowd.accuracy, None),
                  ("careless", crowd.careless, crowd.careless_accuracy, None),
                  ("spammer", crowd.spammers, crowd.accuracy, crowd.spam_answer))
        for kind, count, accuracy_range, spam in groups:
            for i in range(count):
                # Good checkers keep the names (so the ids, accuracies and skills) they always had.
                name = f"{pool}-{kind}-{i + 1}"
                rng = random.Random(f"{seed}:worker:{name}")
                accuracy = rng.uniform(*accuracy_range)
                workers.append(Worker(user_id_for(scenario.name, seed, name), name, pool, kind,
                                      accuracy, _skill(accuracy, rng), spam))
    return workers


def pedestrian_of_org(scenario: Scenario, seed: int) -> dict[str, str]:
    """Organization id -> user id of the pedestrian who walks there (fixed by the seed)."""
    deal = assign_organizations([o.id for o in scenario.organizations], [p.name for p in scenario.pedestrians], seed)
    return {org_id: user_id_for(scenario.name, seed, name) for org_id, name in deal.items()}


def _skill(accuracy: float, rng: random.Random) -> float:
    return round(min(100.0, max(0.0, accuracy * 100 + rng.gauss(0, 3))), 2)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Crowd:
    """The simulated crowd of one emulator (see the module docstring)."""

    def __init__(self, store: Store, *, seed: int, speed: float, http: aiohttp.ClientSession,
                 base_url: str = "") -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.store = store
        self.seed = seed
        self.speed = speed
        self.http = http
        self.base_url = base_url  # prefixes the control tasks' photo links made at set-up
        self.scenario: Scenario | None = None
        self.setup_result: dict[str, Any] | None = None
        self.workers: dict[str, Worker] = {}
        self.task_org: dict[str, str] = {}
        self.org_pedestrian: dict[str, str] = {}
        self.errors = 0
        self._org_by_place: dict[tuple[str, str], str] = {}
        self._checkers: dict[str, list[str]] = {}
        self._rankings: dict[str, list[str]] = {}  # task id -> checkers in claiming order
        self._short_warned: set[str] = set()  # tasks that can never get their overlap (logged once)
        self._fetch_slots = asyncio.Semaphore(FETCH_CONCURRENCY)
        self._adopt_pending = False
        self._control_photos: dict[str, PhotoMarker] = {}  # token -> marker of the control tasks' photos
        self._control_rate: dict[str, float] = {}  # pool -> control tasks mixed in per real task
        self._control_ids: dict[str, tuple[int, list[str]]] = {}  # pool -> (tasks seen, control task ids)
        self._step_index: dict[str, dict[str, list[str]]] = {}  # pool id -> worker -> chosen tasks (this step)
        self._step_restricted: dict[str, frozenset[str]] = {}  # pool id -> workers restricted there (this step)
        # Crowd-only mode (emulator/crowd/adopt.py): pools are adopted, pedestrian tasks matched by place.
        self.crowd_only = False
        self._places: dict[tuple[str, str], str] = {}
        self._org_tasks: dict[str, list[str]] = {}  # organization id -> its pedestrian tasks
        self._matched_count: dict[str, int] = {}  # pool id -> tasks it had when last matched
        self._unmatched: set[str] = set()  # tasks of no organization (logged once)
        self._passed_pools: set[str] = set()  # open pools the crowd does not work in (logged once)
        self._restore()

    # ------------------------------------------------------------------ setup

    def _restore(self) -> None:
        """Pick up a scenario a previous run of this store already set up."""
        saved = self.store.kv_get(_SETUP_KEY)
        if not saved or saved.get("kind", "pedestrian") != "pedestrian":
            return  # nothing yet, or another kind of scenario (setup() refuses to mix them)
        scenario = parse_scenario(_plain(saved["scenario"]))
        assert isinstance(scenario, Scenario)
        self.seed = int(saved["seed"])
        self._activate(scenario, _plain(saved["result"]), saved["task_org"], crowd_only=bool(saved.get("crowd_only")))

    def _activate(self, scenario: Scenario, result: dict[str, Any], task_org: dict[str, str], *,
                  crowd_only: bool = False) -> None:
        self.crowd_only = crowd_only
        self._places = adopt.places(scenario)
        self._org_tasks, self._matched_count, self._unmatched, self._passed_pools = {}, {}, set(), set()
        self.scenario = scenario
        self.setup_result = result
        self.task_org = dict(task_org)
        self.workers = {w.user_id: w for w in build_workers(scenario, self.seed)}
        self.org_pedestrian = pedestrian_of_org(scenario, self.seed)
        self._org_by_place = {(o.name, o.address): o.id for o in scenario.organizations}
        self._checkers = {pool: sorted(w.user_id for w in self.workers.values() if pool in w.checks)
                          for pool in VERIFICATION_POOLS}
        self._rankings = {}
        self._adopt_pending = True
        self._control_photos = {token: marker for task in build_control_tasks(scenario, self.seed)
                                for token, marker in task.photos.items()}
        self._control_rate = {pool: crowd.control.per_real_task for pool, crowd in scenario.verification.items()
                              if crowd.control is not None}
        self._control_ids = {}

    def _create_projects_skills_pools(self, scenario: Scenario, progress: dict[str, Any], now: datetime) -> None:
        """The projects, skills and pools ``progress`` does not hold yet; each is recorded as it is made."""

        def remember() -> None:
            self.store.kv_set(_PROGRESS_KEY, progress)

        for kind in POOL_KINDS:
            if kind not in progress["projects"]:
                project = self.store.create_project(_project_doc(scenario, kind), now)
                progress["projects"][kind] = project["id"]
                remember()
        for kind in VERIFICATION_POOLS:
            if kind not in progress["skills"]:
                skill = self.store.create_skill(kind, now, {"private_comment": f"{scenario.name}: {kind} accuracy"})
                progress["skills"][kind] = skill["id"]
                remember()
        for kind in POOL_KINDS:
            if kind not in progress["pools"]:
                doc = _pool_doc(scenario, kind, progress["projects"][kind], now)
                progress["pools"][kind] = self.store.create_pool(doc, now)["id"]
                remember()

    async def setup(self, scenario: Scenario, now: datetime, *, crowd_only: bool = False) -> dict[str, Any]:
        """Create projects, skills, the four pools (open), one pedestrian task per organization
        (reserved for the pedestrian dealt that organization), the checkers' skills and the
        ground truth; return the ids. With ``crowd_only``, only the workers and the truth: the
        crowd adopts pools made through the API (:meth:`_setup_crowd_only`).

        Idempotent: on a store that already holds this scenario it returns the same ids; each
        creation is recorded as it happens, so a setup interrupted halfway resumes without
        duplicates. A store that holds a *different* scenario, or the same one in the other
        mode, is refused.
        """
        saved = self.store.kv_get(_SETUP_KEY)
        if saved:
            if saved["digest"] != scenario.digest:
                raise ScenarioError("setup", f"the scenario this store already holds ({saved['name']})",
                                    scenario.name)
            if bool(saved.get("crowd_only")) != crowd_only:
                held = "crowd-only (--crowd-only)" if saved.get("crowd_only") else "with its own pools"
                raise ScenarioError("setup", f"the mode this store was set up in: {held}",
                                    "crowd-only" if crowd_only else "with its own pools")
            self._restore()
            assert self.setup_result is not None
            return self.setup_result
        if crowd_only:
            return self._setup_crowd_only(scenario, now)

        progress: dict[str, Any] = self.store.kv_get(_PROGRESS_KEY) or {}
        if progress and progress.get("digest") != scenario.digest:
            raise ScenarioError("setup", "the scenario whose setup was interrupted", scenario.name)
        progress.setdefault("digest", scenario.digest)
        progress.setdefault("projects", {})
        progress.setdefault("skills", {})
        progress.setdefault("pools", {})

        self._create_projects_skills_pools(scenario, progress, now)

        ped_pool = progress["pools"]["pedestrian"]
        walker = pedestrian_of_org(scenario, self.seed)
        if "task_org" not in progress:
            f = scenario.fields
            items = [{"input_values": org.input_values(f.org_fields, f.extra_fields),
                      "overlap": scenario.pools["pedestrian"].overlap,
                      "reserved_for": [walker[org.id]]} for org in scenario.organizations]
            tasks = self.store.create_tasks(ped_pool, items, now)
            progress["task_org"] = {t["id"]: org.id for t, org in zip(tasks, scenario.organizations, strict=True)}
            self.store.kv_set(_PROGRESS_KEY, progress)

        self._create_control_tasks(scenario, progress, now)

        workers = build_workers(scenario, self.seed)
        names = {w.user_id: w.name for w in workers}
        for w in workers:
            for pool in w.checks:
                self.store.set_user_skill(progress["skills"][pool], w.user_id, w.skill, now)
        self._introduce(scenario, workers, walker, now)
        task_of = {org_id: task_id for task_id, org_id in progress["task_org"].items()}
        for org in scenario.organizations:
            self.store.put_truth("org", org.id, {
                "org_id": org.id, "exists": org.exists, "name": org.name, "address": org.address,
                "coordinates": org.coordinates, "extras": dict(org.extras), "task_id": task_of[org.id],
                "pedestrian_id": walker[org.id], "pedestrian_name": names[walker[org.id]]})

        for kind in POOL_KINDS:
            pool_doc = self.store.get_pool(progress["pools"][kind])
            if pool_doc is not None and pool_doc["status"] != "OPEN":
                self.store.open_pool(pool_doc["id"], now)

        result = {
            "scenario": scenario.name,
            "pools": dict(progress["pools"]),
            "skills": dict(progress["skills"]),
            "project_ids": dict(progress["projects"]),
        }
        self.store.kv_set(_SETUP_KEY, {
            "name": scenario.name, "digest": scenario.digest, "seed": self.seed, "scenario": scenario.source,
            "result": result, "task_org": progress["task_org"], "created": fmt_time(now)})
        self._activate(scenario, result, progress["task_org"])
        log.info("crowd set up: scenario %s, pools %s", scenario.name, result["pools"])
        return result

    def _introduce(self, scenario: Scenario, workers: list[Worker], walker: Mapping[str, str], now: datetime) -> None:
        """Each worker's truth (who they are, whom they visit) and first state: idle, a pedestrian
        starting after its drawn delay."""
        for w in workers:
            doc = {"user_id": w.user_id, "name": w.name, "role": w.role, "kind": w.kind,
                   "accuracy": None if w.spam else round(w.accuracy, 4), "skill": w.skill, "checks": list(w.checks),
                   "organizations": sorted(o for o, u in walker.items() if u == w.user_id)}
            if w.spam:
                doc["always_answers"] = w.spam
            self.store.put_truth("worker", w.user_id, doc)
            start = random.Random(f"{self.seed}:start:{w.name}").uniform(*scenario.pace.pedestrian_start_seconds)
            delay = start if w.role == "pedestrian" else 0.0
            self._save_state(w.user_id, {"phase": "idle", "free_at": _iso(now + self._real(delay))})

    def _setup_crowd_only(self, scenario: Scenario, now: datetime) -> dict[str, Any]:
        """The workers (states, truth) and the organizations' truth; no project, pool, skill or
        task. Skills are set when a checking pool is adopted (:meth:`_adopt_pools`)."""
        workers = build_workers(scenario, self.seed)
        walker = pedestrian_of_org(scenario, self.seed)
        names = {w.user_id: w.name for w in workers}
        self._introduce(scenario, workers, walker, now)
        for org in scenario.organizations:
            self.store.put_truth("org", org.id, {
                "org_id": org.id, "exists": org.exists, "name": org.name, "address": org.address,
                "coordinates": org.coordinates, "extras": dict(org.extras), "task_id": None,
                "pedestrian_id": walker[org.id], "pedestrian_name": names[walker[org.id]]})
        result: dict[str, Any] = {"scenario": scenario.name, "pools": {}, "skills": {}, "project_ids": {}}
        self.store.kv_set(_SETUP_KEY, {
            "name": scenario.name, "digest": scenario.digest, "seed": self.seed, "scenario": scenario.source,
            "result": result, "task_org": {}, "crowd_only": True, "created": fmt_time(now)})
        self._activate(scenario, _plain(result), {}, crowd_only=True)
        log.info("crowd set up without pools (crowd-only): scenario %s, %d workers, %d organizations",
                 scenario.name, len(workers), len(scenario.organizations))
        return result

    def _adopt_pools(self, now: datetime) -> None:
        """Crowd-only: take each newly OPEN pool whose project is of a kind the crowd has no pool
        of yet as its pool of that kind; a checking pool's skills are set for its checkers."""
        assert self.scenario is not None and self.setup_result is not None
        mine = self.setup_result["pools"]
        fresh = [p for p in adopt.first_open(self.store.pools.values())
                 if p["id"] not in self._passed_pools and p["id"] not in mine.values()]
        for pool in fresh:
            kind = adopt.pool_kind(self.store.get_project(str(pool.get("project_id"))), self.scenario.fields)
            if kind is None or kind in mine:
                self._passed_pools.add(pool["id"])
                log.info("crowd: pool %s is %s; the crowd does not work there", pool["id"],
                         f"another {kind} pool (the crowd's is {mine[kind]})" if kind else
                         "of no project the crowd recognises (docs/emulator.md, crowd-only mode)")
                continue
            skills = adopt.skill_ids(pool) if kind in VERIFICATION_POOLS else []
            for skill_id in skills:
                for w in self.workers.values():
                    if kind in w.checks:
                        self.store.set_user_skill(skill_id, w.user_id, w.skill, now)
            mine[kind] = pool["id"]
            self.setup_result["project_ids"][kind] = str(pool.get("project_id"))
            if skills:
                self.setup_result["skills"][kind] = skills[0]
            self.store.kv_set(_SETUP_KEY, {**self.store.kv_get(_SETUP_KEY), "result": _plain(self.setup_result)})
            log.info("crowd: works in pool %s as its %s pool%s", pool["id"], kind,
                     f" (skill {', '.join(skills)} set for its checkers)" if skills else "")

    def _match_tasks(self) -> None:
        """Crowd-only: each pedestrian task not seen yet is the scenario's organization of its
        (name, address), or nobody's (logged once). Derived from the tasks alone, so a restart
        finds the same matches without saving them."""
        assert self.scenario is not None and self.setup_result is not None
        pool_id = self.setup_result["pools"].get("pedestrian")
        ids = self.store.pool_tasks.get(pool_id, []) if pool_id else []
        if pool_id is None or self._matched_count.get(pool_id) == len(ids):
            return
        for task_id in ids:
            if task_id in self.task_org or task_id in self._unmatched:
                continue
            inputs = self.store.tasks[task_id].get("input_values") or {}
            org_id = self._places.get(adopt.place_key(inputs.get("name"), inputs.get("address")))
            if org_id is None:
                self._unmatched.add(task_id)
                log.info("crowd: pedestrian task %s (%s, %s) is no organization of scenario %s; nobody walks "
                         "there", task_id, inputs.get("name"), inputs.get("address"), self.scenario.name)
                continue
            self.task_org[task_id] = org_id
            self._org_tasks.setdefault(org_id, []).append(task_id)
            truth = self.store.get_truth("org", org_id)
            if truth is not None and not truth.get("task_id"):
                self.store.put_truth("org", org_id, {**truth, "task_id": task_id})
        self._matched_count[pool_id] = len(ids)

    def _own_tasks(self, worker: Worker, pool_id: str, now: datetime) -> list[dict[str, Any]]:
        """Crowd-only: the open pedestrian tasks of ``worker``'s organizations it may take, in
        creation order (tasks are not reserved for it, so the pool's first tasks may be others')."""
        if self.store.is_restricted(worker.user_id, pool_id, now):
            return []
        found = []
        for org_id, task_ids in self._org_tasks.items():
            if self.org_pedestrian.get(org_id) != worker.user_id:
                continue
            for task_id in task_ids:
                task = self.store.tasks[task_id]
                reserved = task.get("reserved_for")
                if (self.store.is_open(task_id) and not self.store.has_worked_on(task_id, worker.user_id)
                        and worker.user_id not in (task.get("unavailable_for") or ())
                        and (not reserved or worker.user_id in reserved)):
                    found.append(task)
        return sorted(found, key=lambda t: str(t["id"]))

    def _create_control_tasks(self, scenario: Scenario, progress: dict[str, Any], now: datetime) -> None:
        """The scenario's control tasks (known_solutions, infinite overlap), once; their truth."""
        if "control" in progress:
            return
        made: dict[str, str] = {}
        tasks = build_control_tasks(scenario, self.seed, self.base_url)
        for pool in VERIFICATION_POOLS:
            mine = [t for t in tasks if t.pool == pool]
            if not mine:
                continue
            answer_field = scenario.fields.labels(pool).answer_field
            items = [{"input_values": t.input_values, "infinite_overlap": True,
                      "known_solutions": t.known_solutions(answer_field)} for t in mine]
            for doc, task in zip(self.store.create_tasks(progress["pools"][pool], items, now), mine, strict=True):
                made[doc["id"]] = task.name
                self.store.put_truth("control", doc["id"], {
                    "task_id": doc["id"], "name": task.name, "pool": pool, "known": task.known_label,
                    "photo_ids": sorted(m.photo_id for m in task.photos.values())})
        progress["control"] = made
        self.store.kv_set(_PROGRESS_KEY, progress)

    # ------------------------------------------------------------------ worker state

    def _state(self, user_id: str) -> dict[str, Any]:
        return dict(self.store.kv_get(f"crowd/w/{user_id}") or {"phase": "idle"})

    def _save_state(self, user_id: str, state: dict[str, Any]) -> None:
        self.store.kv_set(f"crowd/w/{user_id}", state)

    def _real(self, simulated_seconds: float) -> timedelta:
        return timedelta(seconds=simulated_seconds / self.speed)

    def _pool_open(self, kind: str) -> str | None:
        assert self.setup_result is not None
        pool_id = self.setup_result["pools"].get(kind)  # crowd-only: none until a pool is adopted
        pool = self.store.get_pool(pool_id) if pool_id else None
        return pool_id if pool is not None and pool.get("status") == "OPEN" else None

    # ------------------------------------------------------------------ step

    async def step(self, now: datetime) -> None:
        """Look at new verification tasks, then advance every worker by one state change (a
        checker who submits may take its next tasks at once). Never raises for one bad task."""
        if self.scenario is None:
            return
        if self.crowd_only:
            self._adopt_pools(now)
            self._match_tasks()
        if self._adopt_pending:
            self._adopt_pending = False
            self._adopt_orphans(now)
        await self._see_new_tasks(now)
        self._step_index = {}
        self._step_restricted = {}
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
        """After a (re)start: an ACTIVE assignment of a crowd worker whose saved state does not
        know it (the emulator died between taking the task and saving the state) is resumed,
        so its task is neither stuck nor taken by someone else."""
        assert self.setup_result is not None
        for kind, pool_id in self.setup_result["pools"].items():
            for doc in self.store.assignments(pool_id, "ACTIVE"):
                worker = self.workers.get(doc["user_id"])
                if worker is None:
                    continue
                state = self._state(worker.user_id)
                if state.get("assignment_id") == doc["id"] or state.get("phase", "idle") != "idle":
                    continue
                if kind == "pedestrian":
                    state = {"phase": "walking", "assignment_id": doc["id"], "task_id": doc["tasks"][0]["id"],
                             "due": _iso(now)}
                else:
                    state = {"phase": "checking", "pool": kind, "assignment_id": doc["id"], "taken": _iso(now),
                             "solutions": None}
                self._save_state(worker.user_id, state)
                log.info("crowd: %s resumes assignment %s", worker.name, doc["id"])

    def _drop(self, worker: Worker, now: datetime) -> None:
        state = self._state(worker.user_id)
        assignment_id = state.get("assignment_id")
        try:
            doc = self.store.get_assignment(assignment_id) if assignment_id else None
            if doc is not None and doc["status"] == "ACTIVE":
                self.store.skip_assignment(doc["id"], now)
        except Exception:
            log.exception("could not skip assignment %s", assignment_id)
        self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now + self._real(60))})

    async def _advance(self, worker: Worker, now: datetime) -> None:
        state = self._state(worker.user_id)
        phase = state.get("phase", "idle")
        if phase == "walking":
            if now >= _dt(state["due"]):
                await self._finish_walk(worker, state, now)
            return
        if phase == "checking":
            if state.get("solutions") is None:
                await self._look_and_decide(worker, state, now)
                return
            if now < _dt(state["due"]):
                return
            self._finish_check(worker, state, now)
            state = self._state(worker.user_id)  # idle: a checker goes on to its next task at once
        if now < _dt(state.get("free_at", _iso(now))):
            return
        # A pedestrian answers the visit checks it was chosen for between walks (they are short).
        for pool in worker.checks:
            if await self._start_check(worker, pool, now):
                return
        if worker.role == "pedestrian":
            self._start_walk(worker, now)

    # ------------------------------------------------------------------ pedestrians

    def _start_walk(self, worker: Worker, now: datetime) -> bool:
        assert self.scenario is not None
        pool_id = self._pool_open("pedestrian")
        if pool_id is None:
            return False
        # Only tasks of the scenario's organizations dealt to this pedestrian: a task someone
        # else added to the pool has no place behind it for the crowd to walk to.
        offered = (self._own_tasks(worker, pool_id, now) if self.crowd_only
                   else self.store.available_tasks(pool_id, worker.user_id, 100, now=now))
        tasks = [t for t in offered if self.org_pedestrian.get(self.task_org.get(t["id"], "")) == worker.user_id]
        if not tasks:
            return False
        assignment = self.store.create_assignment(pool_id, worker.user_id, [tasks[0]["id"]], now)
        rng = random.Random(f"{self.seed}:walk:{worker.user_id}:{tasks[0]['id']}")
        seconds = rng.uniform(*self.scenario.pace.pedestrian_seconds)
        self._save_state(worker.user_id, {"phase": "walking", "assignment_id": assignment["id"],
                                          "task_id": tasks[0]["id"], "due": _iso(now + self._real(seconds))})
        return True

    def _plan(self, worker: Worker, task_id: str) -> tuple[PedestrianWork, Organization]:
        """What ``worker`` submits for the task's organization: drawn from (seed, organization)."""
        assert self.scenario is not None
        org = self.scenario.organization(self.task_org[task_id])
        rng = random.Random(f"{self.seed}:work:{org.id}")
        return plan_pedestrian_work(worker.kind, org, self.scenario, rng, photo_prefix=org.id), org

    async def _finish_walk(self, worker: Worker, state: dict[str, Any], now: datetime) -> None:
        assert self.scenario is not None
        assignment_id = state["assignment_id"]
        doc = self.store.get_assignment(assignment_id)
        if doc is None or doc["status"] != "ACTIVE":
            self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})
            return
        truth = self.store.get_truth("assignment", assignment_id)
        if truth is None:  # not uploaded yet (or a restart before the truth was written)
            truth = await self._upload(worker, state["task_id"], assignment_id, now)
        self.store.submit_assignment(assignment_id, [{"output_values": truth["output_values"]}], now)
        self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now + self._real(30))})
        log.info("pedestrian %s submitted %s (%s)", worker.name, assignment_id, truth["expected"])

    async def _upload(self, worker: Worker, task_id: str, assignment_id: str, now: datetime) -> dict[str, Any]:
        """Render and upload the photos, then write the truth (before submitting, so a restart
        between the two submits exactly what the truth describes). Photos an interrupted
        earlier attempt already uploaded to this assignment are reused, not uploaded again."""
        assert self.scenario is not None
        fields = self.scenario.fields
        work, org = self._plan(worker, task_id)
        markers = [(name, m) for name, shots in work.photos.items() for m in shots]
        images = await asyncio.gather(*(asyncio.to_thread(render_photo, m, seed=self.seed) for _, m in markers))
        uploaded = {doc["name"]: doc for doc in self.store.attachments.values()
                    if (doc.get("details") or {}).get("assignment_id") == assignment_id}
        ids: dict[str, list[str]] = {}
        photo_docs: dict[str, list[dict[str, Any]]] = {}
        for (name, marker), data in zip(markers, images, strict=True):
            index = len(ids.setdefault(name, [])) + 1
            file_name = f"{name}_{index}.jpg"
            meta = uploaded.get(file_name) or self.store.add_attachment(
                assignment_id, file_name, "image/jpeg", data, now)
            ids[name].append(meta["id"])
            relevant = marker.kind == fields.photo_fields[name] and shows_task_org(
                marker, {"name": org.name, "address": org.address})
            photo = {**marker.to_dict(), "attachment_id": meta["id"], "assignment_id": assignment_id,
                     "field": name, "task_org_id": org.id, "relevant": relevant,
                     "good": relevant and marker.quality == "good", "size": len(data)}
            self.store.put_truth("photo", meta["id"], photo)
            photo_docs.setdefault(name, []).append(
                {k: photo[k] for k in ("attachment_id", "photo_id", "kind", "quality", "org_id", "visited",
                                       "relevant", "good")})
        output = pedestrian_output_values(work, ids, fields)
        expected = expected_outcome(work, org, fields)
        truth = {
            "assignment_id": assignment_id, "task_id": task_id, "pool_id": self.setup_result["pools"]["pedestrian"]
            if self.setup_result else None,
            "worker_id": worker.user_id, "worker_name": worker.name, "kind": worker.kind,
            "org_id": org.id, "org_exists": org.exists, "visited": work.visited, "verdict": work.verdict,
            "worker_coordinates": work.worker_coordinates, "comment": work.comment, "flags": work.flags,
            "photos": photo_docs, "expected": expected["outcome"], "visit_ok": expected["visited"],
            "good_fields": expected["good_fields"], "bonus_fields": expected["bonus_fields"],
            "output_values": output, "submitted": fmt_time(now),
        }
        self.store.put_truth("assignment", assignment_id, truth)
        return truth

    # ------------------------------------------------------------------ what a task shows

    def _seen(self, task_id: str) -> dict[str, Any] | None:
        seen: dict[str, Any] | None = self.store.kv_get(_SEEN_PREFIX + task_id)
        return seen

    async def _see_new_tasks(self, now: datetime) -> None:
        """Look at verification tasks with overlap left that the crowd has not settled yet."""
        for pool in VERIFICATION_POOLS:
            pool_id = self._pool_open(pool)
            if pool_id is None:
                continue
            waiting: list[str] = []
            for task_id in self.store.pool_open_tasks.get(pool_id, ()):
                seen = self._seen(task_id)
                if seen is None or (not seen.get("settled") and now >= _dt(seen["retry_at"])):
                    waiting.append(task_id)
                    if len(waiting) >= SEE_PER_STEP:
                        break
            if waiting:
                await asyncio.gather(*(self._see(pool, task_id, now) for task_id in waiting))

    async def _see(self, pool: str, task_id: str, now: datetime, *, last_look: bool = False) -> None:
        """Open the task's links, read the markers, and keep the content key (or, for a link
        that did not open, wait for another look). A task that cannot be worked on at all (no
        input object) is counted as an error and marked so that nobody takes it."""
        assert self.scenario is not None
        fields = self.scenario.fields
        try:
            task = self.store.get_task(task_id)
            if task is None:
                raise ValueError("no such task")
            inputs = task.get("input_values")
            if not isinstance(inputs, Mapping):
                raise ValueError(f"input_values is a {type(inputs).__name__}, not an object")
            urls = task_urls(pool, inputs, fields)
            looked = await asyncio.gather(*(self._look(u) for u in urls))
            content = describe_content(pool, inputs, dict(zip(urls, looked, strict=True)), fields)
            looks = int((self._seen(task_id) or {}).get("looks", 0)) + 1
            if not content.readable and looks < UNREADABLE_LOOKS and not last_look:
                self.store.kv_set(_SEEN_PREFIX + task_id, {"settled": False, "looks": looks,
                                                           "retry_at": _iso(now + UNREADABLE_RETRY)})
                return
            org_id, pedestrian = self._whose(pool, inputs, content.photo_ids)
            self.store.kv_set(_SEEN_PREFIX + task_id, {
                "settled": True, "looks": looks, "pool": pool, "key": content.key, "readable": content.readable,
                "photo_ids": list(content.photo_ids), "org_id": org_id, "pedestrian": pedestrian,
                "markers": {u: (m.to_dict() if m is not None else None) for u, m in content.markers.items()}})
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.errors += 1
            log.exception("crowd: task %s of the %s pool cannot be worked on; nobody will take it", task_id, pool)
            self.store.kv_set(_SEEN_PREFIX + task_id, {"settled": True, "error": str(exc)[:300]})

    def _whose(self, pool: str, inputs: Mapping[str, Any], photo_ids: tuple[str, ...]) -> tuple[str | None, str | None]:
        """(organization, pedestrian user id) whose work a task checks, from its content."""
        org_id: str | None = None
        if pool == "visit":
            org_id = self._org_by_place.get((str(inputs.get("name")), str(inputs.get("address"))))
        for photo_id in photo_ids:
            if org_id is None:
                org_id = org_of_photo(photo_id, self.org_pedestrian)
        pedestrian = self.org_pedestrian.get(org_id) if org_id else None
        made = inputs.get("pedestrian_assignment_id")
        truth = self.store.get_truth("assignment", made) if isinstance(made, str) and made else None
        if truth is not None:  # the work is the crowd's: its truth names the worker for sure
            org_id = org_id or truth.get("org_id")
            pedestrian = truth.get("worker_id") or pedestrian
        return org_id, pedestrian

    def _restricted(self, pool_id: str, now: datetime) -> frozenset[str]:
        """Workers the requester restricted on the pool (its project, all projects) at ``now``;
        read once per step and pool (a restriction set while a step runs counts from the next)."""
        restricted = self._step_restricted.get(pool_id)
        if restricted is None:
            restricted = self._step_restricted[pool_id] = self.store.restricted_users(pool_id, now)
        return restricted

    def _chosen(self, task: Mapping[str, Any], now: datetime | None = None) -> list[str]:
        """The workers who answer this task (empty while it has not been looked at). Given
        ``now``, workers restricted on its pool at that time are passed over (their place goes
        to the next of the ranking)."""
        seen = self._seen(task["id"])
        if not seen or not seen.get("settled") or seen.get("error"):
            return []
        ranking = self._rankings.get(task["id"])
        if ranking is None:
            candidates = [u for u in self._checkers.get(seen["pool"], ()) if u != seen.get("pedestrian")]
            ranking = self._rankings[task["id"]] = rank_checkers(self.seed, seen["key"], candidates)
        gone = []
        for assignment_id in self.store.task_assignments.get(task["id"], ()):
            doc = self.store.get_assignment(assignment_id)
            if doc is not None and doc["status"] in ("SKIPPED", "EXPIRED"):
                gone.append(doc["user_id"])
        overlap = None if task.get("infinite_overlap") else int(task.get("overlap") or 0)
        restricted = self._restricted(task["pool_id"], now) if now is not None else frozenset()
        chosen = chosen_checkers(ranking, overlap=overlap, unavailable=task.get("unavailable_for") or (),
                                 reserved=task.get("reserved_for") or (), gone=gone, restricted=restricted)
        if overlap is not None and len(chosen) < overlap and task["id"] not in self._short_warned:
            self._short_warned.add(task["id"])
            log.warning("crowd: task %s wants %d answers but only %d workers of the %s pool may give one",
                        task["id"], overlap, len(chosen), seen["pool"])
        return chosen

    # ------------------------------------------------------------------ checkers

    async def _start_check(self, worker: Worker, pool: str, now: datetime) -> bool:
        """Take the next 1-3 tasks of ``pool`` this worker was chosen for (creation order)."""
        assert self.scenario is not None
        pool_id = self._pool_open(pool)
        if pool_id is None:
            return False
        open_count = len(self.store.pool_open_tasks.get(pool_id, ()))
        if not open_count or worker.user_id in self._restricted(pool_id, now):
            return False
        mixing = pool in self._control_rate
        mine = []
        for task_id in self._chosen_index(pool, pool_id, now).get(worker.user_id, ()):
            # Still open, not taken by this worker already, and still chosen (a requester may have
            # lowered the overlap while this step awaited something).
            if not self.store.is_open(task_id) or self.store.has_worked_on(task_id, worker.user_id):
                continue
            task = self.store.tasks[task_id]
            if worker.user_id in self._chosen(task, now):
                mine.append(task)
        if not mine:
            return False
        rng = random.Random(f"{self.seed}:take:{worker.user_id}:{now.isoformat()}")
        limit = rng.randint(*self.scenario.pace.tasks_per_assignment)
        task_ids: list[str] = []
        for task in mine[:limit]:
            task_ids.append(task["id"])
            if mixing:
                control = self._control_for(worker, pool, pool_id, task, task_ids)
                if control is not None:
                    task_ids.append(control)
        assignment = self.store.create_assignment(pool_id, worker.user_id, task_ids, now,
                                                  mixed=len(task_ids) > len(mine[:limit]))
        state = {"phase": "checking", "pool": pool, "assignment_id": assignment["id"], "taken": _iso(now),
                 "solutions": None}
        self._save_state(worker.user_id, state)  # a restart decides the answers of this assignment again
        await self._look_and_decide(worker, state, now)
        return True

    def _chosen_index(self, pool: str, pool_id: str, now: datetime) -> dict[str, list[str]]:
        """Worker -> the open tasks of the pool it was chosen for, in creation order; made once
        per step and pool (tasks created during the step wait for the next one). In a pool that
        mixes control tasks in, those are left out: they come only next to a real task."""
        index = self._step_index.get(pool_id)
        if index is None:
            mixing = pool in self._control_rate
            index = self._step_index[pool_id] = {}
            for task_id in self.store.pool_open_tasks.get(pool_id, ()):
                task = self.store.tasks[task_id]
                if mixing and task.get("known_solutions"):
                    continue
                for user_id in self._chosen(task, now):
                    index.setdefault(user_id, []).append(task_id)
        return index

    def _control_ids_of(self, pool_id: str) -> list[str]:
        """The pool's tasks with ``known_solutions`` (the emulator's control tasks and any a
        requester made), in creation order; recomputed when the pool gets new tasks."""
        count = len(self.store.pool_tasks.get(pool_id, ()))
        cached = self._control_ids.get(pool_id)
        if cached is None or cached[0] != count:
            ids = [t for t in self.store.pool_tasks.get(pool_id, ()) if self.store.tasks[t].get("known_solutions")]
            cached = self._control_ids[pool_id] = (count, ids)
        return cached[1]

    def _control_for(self, worker: Worker, pool: str, pool_id: str, real: Mapping[str, Any],
                     taken: list[str]) -> str | None:
        """The control task mixed into ``worker``'s assignment next to the real task ``real``, if any.

        Whether one comes is a draw seeded by (seed, the real task's content key, worker), at the
        pool's rate; which one is the first of a ranking seeded by the same and the control
        tasks' content keys, among the open control tasks the worker may take. If the worker
        already had that one, none comes (Toloka never shows a task twice to a worker). So the
        set of control tasks a worker answers, and its answers, do not depend on the order in
        which it meets its real tasks, only on which real tasks it answers.
        """
        seen = self._seen(real["id"]) or {}
        key = seen.get("key")
        if key is None or unit_draw(self.seed, "control", key, worker.user_id) >= self._control_rate[pool]:
            return None
        best: tuple[float, str, str] | None = None
        for task_id in self._control_ids_of(pool_id):
            control = self.store.tasks[task_id]
            control_seen = self._seen(task_id)
            if not control_seen or not control_seen.get("settled") or control_seen.get("error"):
                continue
            if worker.user_id in (control.get("unavailable_for") or ()):
                continue
            reserved = control.get("reserved_for")
            if reserved and worker.user_id not in reserved:
                continue
            if not self.store.is_open(task_id):
                continue
            rank = (unit_draw(self.seed, "control-pick", key, worker.user_id, control_seen["key"]),
                    control_seen["key"], task_id)
            if best is None or rank < best:
                best = rank
        if best is None:
            return None
        choice = best[2]
        if choice in taken or self.store.has_worked_on(choice, worker.user_id):
            return None
        return choice

    async def _look_and_decide(self, worker: Worker, state: dict[str, Any], now: datetime) -> None:
        """Decide the answers to the assignment's tasks from what the crowd saw in them."""
        assert self.scenario is not None
        fields = self.scenario.fields
        pool = state["pool"]
        assignment = self.store.get_assignment(state["assignment_id"])
        if assignment is None or assignment["status"] != "ACTIVE":
            self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})
            return
        tasks = [self.store.get_task(t["id"]) or t for t in assignment["tasks"]]
        solutions, records = [], []
        seconds = 0.0
        answer_field = fields.labels(pool).answer_field
        for task in tasks:
            seen = self._seen(task["id"])
            if not seen or not seen.get("settled"):  # taken before the crowd settled it (a resumed orphan)
                await self._see(pool, task["id"], now, last_look=True)
                seen = self._seen(task["id"]) or {}
            if seen.get("error"):
                raise ValueError(f"task {task['id']} cannot be worked on: {seen['error']}")
            markers = self._as_seen_by(worker, await self._look_again(seen["markers"]))
            draw = unit_draw(self.seed, "answer", seen["key"], worker.user_id)
            given, correct = answer_task(pool, task, markers, fields, worker.accuracy, draw)
            if worker.spam is not None:
                labels = fields.labels(pool)
                given = labels.accept_label if worker.spam == "positive" else labels.reject_label
            pace = random.Random(f"{self.seed}:pace:{worker.user_id}:{task['id']}")
            seconds += pace.uniform(*self.scenario.pace.verification_seconds_per_task)
            inputs = task.get("input_values") or {}
            solutions.append({"output_values": {answer_field: given}})
            records.append({
                "task_id": task["id"], "given": given, "correct": correct,
                "golden": bool(task.get("known_solutions")), "key": seen["key"], "org_id": seen.get("org_id"),
                "photo_ids": list(seen.get("photo_ids") or ()),
                "pedestrian_assignment_id": inputs.get("pedestrian_assignment_id"),
                "image": inputs.get("image"), "image_field": inputs.get("image_field"),
                "unreadable": [u for u in task_urls(pool, inputs, fields) if markers.get(u) is None]})
        state.update(solutions=solutions, records=records, due=_iso(now + self._real(seconds)))
        self._save_state(worker.user_id, state)

    async def _look_again(self, saved: Mapping[str, Any]) -> dict[str, Any]:
        """The task's links as this checker finds them: a link that did not open at the crowd's
        first look (a stalled store) is opened again now, as each checker's browser would."""
        found = dict(saved)
        missing = [url for url, doc in saved.items() if not doc]
        if missing:
            for url, marker in zip(missing, await asyncio.gather(*(self._look(u) for u in missing)), strict=True):
                if marker is not None:
                    found[url] = marker.to_dict()
        return found

    def _as_seen_by(self, worker: Worker, saved: Mapping[str, Any]) -> dict[str, PhotoMarker | None]:
        """The markers a task showed, minus the links that happen not to open for this worker
        (``behaviour.broken_link_rate``, drawn per photo and worker)."""
        assert self.scenario is not None
        broken = self.scenario.behaviour.broken_link_rate
        out: dict[str, PhotoMarker | None] = {}
        for url, doc in saved.items():
            marker = PhotoMarker.from_dict(_plain(doc)) if doc else None
            if marker is not None and broken and unit_draw(self.seed, "link", marker.photo_id, worker.user_id) < broken:
                marker = None
            out[url] = marker
        return out

    def _finish_check(self, worker: Worker, state: dict[str, Any], now: datetime) -> None:
        assignment_id = state["assignment_id"]
        doc = self.store.get_assignment(assignment_id)
        if doc is not None and doc["status"] == "ACTIVE":
            self.store.submit_assignment(assignment_id, state["solutions"], now)
            self.store.put_truth("answer", assignment_id, {
                "assignment_id": assignment_id, "pool": state["pool"], "worker_id": worker.user_id,
                "worker_name": worker.name, "accuracy": round(worker.accuracy, 4), "tasks": state["records"],
                "submitted": fmt_time(now)})
        self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})

    async def _look(self, url: str) -> PhotoMarker | None:
        """Open a photo URL like a worker's browser would; None if it does not open or has no marker.

        A control task's photo (``/_emulator/control/<token>.jpg`` of any host) is known by its
        token: no fetch, so it reads the same after a restart on another port."""
        token = token_of_url(url)
        if token is not None and token in self._control_photos:
            return self._control_photos[token]
        try:
            async with self._fetch_slots:
                data = await self._fetch(url)
        except Exception as exc:  # a dead link is an answer ("bad"), not a crowd failure
            log.info("the crowd could not open %s: %s", _short(url), exc)
            return None
        return read_marker(data) if data is not None else None

    async def _fetch(self, url: str) -> bytes | None:
        parts = urllib.parse.urlsplit(url)
        if parts.scheme in ("http", "https"):
            timeout = aiohttp.ClientTimeout(total=FETCH_TIMEOUT_SECONDS)
            async with self.http.get(url, timeout=timeout) as resp:
                if resp.status != 200 or (resp.content_length or 0) > FETCH_MAX_BYTES:
                    return None
                data = bytearray()
                async for chunk in resp.content.iter_chunked(64 * 1024):
                    data += chunk
                    if len(data) > FETCH_MAX_BYTES:
                        return None
                return bytes(data)
        if parts.scheme == "file":
            path = urllib.request.url2pathname(parts.path)
            return await asyncio.wait_for(asyncio.to_thread(_read_bounded, path), FETCH_TIMEOUT_SECONDS)
        return None

    async def control_picture(self, token: str) -> bytes | None:
        """The JPEG of a control task's photo (served at ``/_emulator/control/<token>.jpg``)."""
        marker = self._control_photos.get(token)
        if marker is None:
            return None
        return await asyncio.to_thread(render_photo, marker, seed=self.seed)

    # ------------------------------------------------------------------ reporting

    def state(self) -> dict[str, Any]:
        """Counters for ``/_emulator/state``."""
        phases: dict[str, int] = {}
        for user_id in self.workers:
            phase = self._state(user_id).get("phase", "idle")
            phases[phase] = phases.get(phase, 0) + 1
        return {
            "scenario": self.scenario.name if self.scenario else None,
            "seed": self.seed,
            "speed": self.speed,
            "workers": len(self.workers),
            "phases": phases,
            "pedestrian_submitted": len(self.store.all_truth("assignment")) if self.scenario else 0,
            "checks_submitted": len(self.store.all_truth("answer")) if self.scenario else 0,
            "errors": self.errors,
        }

    def truth(self) -> dict[str, Any]:
        """The whole ground truth, for ``/_emulator/truth`` and for scoring a run."""
        saved = self.store.kv_get(_SETUP_KEY) or {}
        return {
            "kind": "pedestrian",
            "scenario": saved.get("name"),
            "seed": saved.get("seed"),
            "setup": saved.get("result"),
            "organizations": self.store.all_truth("org"),
            "workers": self.store.all_truth("worker"),
            "assignments": self.store.all_truth("assignment"),
            "photos": self.store.all_truth("photo"),
            "answers": self.store.all_truth("answer"),
            "control": self.store.all_truth("control"),
        }


def _plain(value: Any) -> Any:
    """JSON read back from the store has Decimals for floats; the scenario parser wants floats."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _read_bounded(path: str) -> bytes | None:
    with open(path, "rb") as fh:
        data = fh.read(FETCH_MAX_BYTES + 1)
    return data if len(data) <= FETCH_MAX_BYTES else None


def _short(url: str) -> str:
    """A URL without its query (presigned links carry signatures that do not belong in logs)."""
    return url.split("?", 1)[0]


# ---------------------------------------------------------------- documents


def _project_doc(scenario: Scenario, kind: str) -> dict[str, Any]:
    f = scenario.fields
    string = {"type": "string", "required": True}
    optional = {"type": "string", "required": False}
    if kind == "pedestrian":
        inputs: dict[str, Any] = {name: dict(string) for name in f.org_fields}
        inputs.update({name: dict(optional) for name in f.extra_fields})
        outputs: dict[str, Any] = {
            f.verdict_field: {"type": "string", "required": True, "allowed_values": [f.verdict_ok, f.verdict_no_org]},
            f.worker_coordinates_field: {"type": "coordinates", "required": True, "current_location": True},
            f.comment_field: dict(optional),
        }
        for name in f.main_fields:
            outputs[name] = {"type": "array_file", "required": name in f.required_fields}
        for name in f.bonus_fields:
            outputs[name] = {"type": "array_file", "required": False}
        for flag in f.bonus_flags:
            outputs[flag] = {"type": "string", "required": False,
                             "allowed_values": [f.bonus_flag_yes, f.bonus_flag_no]}
        title = "Visit an organization and photograph it"
    else:
        labels = f.labels(kind)
        if kind == "visit":
            inputs = {"pedestrian_assignment_id": dict(string),
                      **{n: dict(optional) for n in (*f.org_fields, *f.extra_fields)},
                      f.verdict_field: dict(string), f.worker_coordinates_field: dict(optional),
                      **{n: {"type": "array_url", "required": False} for n in f.photo_fields}}
        else:
            inputs = {"image": {"type": "url", "required": True}, "image_field": dict(string),
                      "photo_id": dict(optional), "group": dict(optional), "pedestrian_assignment_id": dict(string),
                      "name": dict(optional), "address": dict(optional)}
        outputs = {labels.answer_field: {"type": "string", "required": True,
                                         "allowed_values": [labels.accept_label, labels.reject_label]}}
        title = {"visit": "Did the pedestrian really go there?", "quality": "Is the photo sharp and usable?",
                 "relevance": "Does the photo show what it should?"}[kind]
    return project_doc(scenario.name, kind, title, inputs, outputs)


def _pool_doc(scenario: Scenario, kind: str, project_id: str, now: datetime) -> dict[str, Any]:
    doc = pool_doc(scenario.name, kind, scenario.pools[kind], project_id, now, in_creation_order=kind == "pedestrian")
    if kind != "pedestrian":
        _, hi = scenario.pace.tasks_per_assignment
        doc["mixer_config"] = {"real_tasks_count": hi, "golden_tasks_count": 0, "training_tasks_count": 0}
    return doc
