"""The simulated crowd: pedestrians and checkers working through the emulator's store.

:class:`Crowd` is driven by the app's background loop: ``await crowd.step(now)`` every few
hundred milliseconds. Each step, every worker moves on by at most one state change:

- a free pedestrian takes an available pedestrian task (an ACTIVE assignment) and "walks";
  when the simulated walk is over it uploads marked JPEGs (``store.add_attachment``) and
  submits; with nothing left to walk to, a pedestrian helps in the visit pool;
- a free checker takes 1-3 available tasks of its verification pool, opens every photo URL
  in them (http/https through the shared aiohttp session, ``file://`` from disk in a
  thread), reads the markers, decides its answers, and submits them once its simulated
  working time is over.

Durations are simulated seconds divided by ``speed``. Every worker's state lives in
``store.kv`` (``crowd/w/<user id>``), so a restarted emulator resumes mid-walk or
mid-check. All randomness comes from ``random.Random`` seeded with the crowd's seed and the
ids involved, so a run is reproducible up to the order in which workers meet tasks.

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
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import aiohttp

from emulator.crowd.behaviour import (
    PedestrianWork,
    answer_task,
    expected_outcome,
    pedestrian_output_values,
    plan_pedestrian_work,
    shows_task_org,
    task_urls,
)
from emulator.crowd.photos import PhotoMarker, read_marker, render_photo
from emulator.crowd.scenario import (
    POOL_KINDS,
    VERIFICATION_POOLS,
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

_SETUP_KEY = "crowd/setup"
_PROGRESS_KEY = "crowd/setup_progress"


@dataclass(frozen=True)
class Worker:
    """A simulated Toloker. Pedestrians also check visits when they have nothing to walk to."""

    user_id: str
    name: str
    role: str  # "pedestrian" or the verification pool it works in
    kind: str  # honest | sloppy | cheat for pedestrians, "checker" otherwise
    accuracy: float  # how often its verification answers are right
    skill: float  # the Toloka skill value the requester sees (accuracy * 100 with noise)

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
        for i in range(crowd.workers):
            name = f"{pool}-checker-{i + 1}"
            rng = random.Random(f"{seed}:worker:{name}")
            accuracy = rng.uniform(*crowd.accuracy)
            workers.append(Worker(user_id_for(scenario.name, seed, name), name, pool, "checker",
                                  accuracy, _skill(accuracy, rng)))
    return workers


def _skill(accuracy: float, rng: random.Random) -> float:
    return round(min(100.0, max(0.0, accuracy * 100 + rng.gauss(0, 3))), 2)


def _iso(dt: datetime) -> str:
    return dt.isoformat()


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


class Crowd:
    """The simulated crowd of one emulator (see the module docstring)."""

    def __init__(self, store: Store, *, seed: int, speed: float, http: aiohttp.ClientSession) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.store = store
        self.seed = seed
        self.speed = speed
        self.http = http
        self.scenario: Scenario | None = None
        self.setup_result: dict[str, Any] | None = None
        self.workers: dict[str, Worker] = {}
        self.task_org: dict[str, str] = {}
        self.errors = 0
        self._restore()

    # ------------------------------------------------------------------ setup

    def _restore(self) -> None:
        """Pick up a scenario a previous run of this store already set up."""
        saved = self.store.kv_get(_SETUP_KEY)
        if not saved:
            return
        self.seed = int(saved["seed"])
        self._activate(parse_scenario(_plain(saved["scenario"])), saved["result"], saved["task_org"])

    def _activate(self, scenario: Scenario, result: dict[str, Any], task_org: dict[str, str]) -> None:
        self.scenario = scenario
        self.setup_result = result
        self.task_org = dict(task_org)
        self.workers = {w.user_id: w for w in build_workers(scenario, self.seed)}

    async def setup(self, scenario: Scenario, now: datetime) -> dict[str, Any]:
        """Create projects, skills, the four pools (open), one pedestrian task per organization,
        the checkers' skills and the ground truth; return the ids.

        Idempotent: on a store that already holds this scenario it returns the same ids; each
        creation is recorded as it happens, so a setup interrupted halfway resumes without
        duplicates. A store that holds a *different* scenario is refused.
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
        progress.setdefault("projects", {})
        progress.setdefault("skills", {})
        progress.setdefault("pools", {})

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

        ped_pool = progress["pools"]["pedestrian"]
        if "task_org" not in progress:
            f = scenario.fields
            items = [{"input_values": org.input_values(f.org_fields, f.extra_fields),
                      "overlap": scenario.pools["pedestrian"].overlap} for org in scenario.organizations]
            tasks = self.store.create_tasks(ped_pool, items, now)
            progress["task_org"] = {t["id"]: org.id for t, org in zip(tasks, scenario.organizations)}
            remember()

        workers = build_workers(scenario, self.seed)
        for w in workers:
            for pool in w.checks:
                self.store.set_user_skill(progress["skills"][pool], w.user_id, w.skill, now)
            self.store.put_truth("worker", w.user_id, {
                "user_id": w.user_id, "name": w.name, "role": w.role, "kind": w.kind,
                "accuracy": round(w.accuracy, 4), "skill": w.skill, "checks": list(w.checks)})
            start = random.Random(f"{self.seed}:start:{w.name}").uniform(*scenario.pace.pedestrian_start_seconds)
            delay = start if w.role == "pedestrian" else 0.0
            self._save_state(w.user_id, {"phase": "idle", "free_at": _iso(now + self._real(delay))})
        task_of = {org_id: task_id for task_id, org_id in progress["task_org"].items()}
        for org in scenario.organizations:
            self.store.put_truth("org", org.id, {
                "org_id": org.id, "exists": org.exists, "name": org.name, "address": org.address,
                "coordinates": org.coordinates, "extras": dict(org.extras), "task_id": task_of[org.id]})

        for kind in POOL_KINDS:
            pool = self.store.get_pool(progress["pools"][kind])
            if pool is not None and pool["status"] != "OPEN":
                self.store.open_pool(pool["id"], now)

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

    # ------------------------------------------------------------------ worker state

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

    # ------------------------------------------------------------------ step

    async def step(self, now: datetime) -> None:
        """Advance every worker by at most one state change. Never raises for one bad task."""
        if self.scenario is None:
            return
        order = list(self.workers.values())
        random.Random(f"{self.seed}:order:{now.isoformat()}").shuffle(order)
        for worker in order:
            try:
                await self._advance(worker, now)
            except asyncio.CancelledError:
                raise
            except Exception:  # one broken task must not stop the crowd
                self.errors += 1
                log.exception("crowd worker %s failed; dropping its current work", worker.name)
                self._drop(worker, now)

    def _drop(self, worker: Worker, now: datetime) -> None:
        state = self._state(worker.user_id)
        assignment_id = state.get("assignment_id")
        try:
            doc = self.store.get_assignment(assignment_id) if assignment_id else None
            if doc is not None and doc["status"] == "ACTIVE":
                self.store.skip_assignment(assignment_id, now)
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
            elif now >= _dt(state["due"]):
                self._finish_check(worker, state, now)
            return
        if now < _dt(state.get("free_at", _iso(now))):
            return
        if worker.role == "pedestrian" and self._start_walk(worker, now):
            return
        for pool in worker.checks:
            if await self._start_check(worker, pool, now):
                return

    # ------------------------------------------------------------------ pedestrians

    def _start_walk(self, worker: Worker, now: datetime) -> bool:
        assert self.scenario is not None
        pool_id = self._pool_open("pedestrian")
        if pool_id is None:
            return False
        # Only tasks of the scenario's organizations: a task someone else added to the pool
        # has no place behind it for the crowd to walk to.
        tasks = [t for t in self.store.available_tasks(pool_id, worker.user_id, 100) if t["id"] in self.task_org]
        if not tasks:
            return False
        assignment = self.store.create_assignment(pool_id, worker.user_id, [tasks[0]["id"]], now)
        rng = random.Random(f"{self.seed}:walk:{worker.user_id}:{tasks[0]['id']}")
        seconds = rng.uniform(*self.scenario.pace.pedestrian_seconds)
        self._save_state(worker.user_id, {"phase": "walking", "assignment_id": assignment["id"],
                                          "task_id": tasks[0]["id"], "due": _iso(now + self._real(seconds))})
        return True

    def _plan(self, worker: Worker, task_id: str, assignment_id: str) -> tuple[PedestrianWork, Any]:
        assert self.scenario is not None
        org = self.scenario.organization(self.task_org[task_id])
        rng = random.Random(f"{self.seed}:work:{worker.user_id}:{task_id}")
        return plan_pedestrian_work(worker.kind, org, self.scenario, rng, photo_prefix=assignment_id), org

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
        between the two submits exactly what the truth describes)."""
        assert self.scenario is not None
        fields = self.scenario.fields
        work, org = self._plan(worker, task_id, assignment_id)
        markers = [(name, m) for name, shots in work.photos.items() for m in shots]
        images = await asyncio.gather(*(asyncio.to_thread(render_photo, m, seed=self.seed) for _, m in markers))
        ids: dict[str, list[str]] = {}
        photo_docs: dict[str, list[dict[str, Any]]] = {}
        for (name, marker), data in zip(markers, images):
            index = len(ids.setdefault(name, [])) + 1
            meta = self.store.add_attachment(assignment_id, f"{name}_{index}.jpg", "image/jpeg", data, now)
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

    # ------------------------------------------------------------------ checkers

    async def _start_check(self, worker: Worker, pool: str, now: datetime) -> bool:
        assert self.scenario is not None
        pool_id = self._pool_open(pool)
        if pool_id is None:
            return False
        rng = random.Random(f"{self.seed}:take:{worker.user_id}:{now.isoformat()}")
        limit = rng.randint(*self.scenario.pace.tasks_per_assignment)
        tasks = self.store.available_tasks(pool_id, worker.user_id, limit)
        if not tasks:
            return False
        assignment = self.store.create_assignment(pool_id, worker.user_id, [t["id"] for t in tasks], now)
        state = {"phase": "checking", "pool": pool, "assignment_id": assignment["id"], "taken": _iso(now),
                 "solutions": None}
        self._save_state(worker.user_id, state)  # a restart re-opens the photos of this assignment
        await self._look_and_decide(worker, state, now)
        return True

    async def _look_and_decide(self, worker: Worker, state: dict[str, Any], now: datetime) -> None:
        """Open every photo of the assignment's tasks, read the markers, decide the answers."""
        assert self.scenario is not None
        fields = self.scenario.fields
        pool = state["pool"]
        assignment = self.store.get_assignment(state["assignment_id"])
        if assignment is None or assignment["status"] != "ACTIVE":
            self._save_state(worker.user_id, {"phase": "idle", "free_at": _iso(now)})
            return
        tasks = [self.store.get_task(t["id"]) or t for t in assignment["tasks"]]
        urls = sorted({u for t in tasks for u in task_urls(pool, t.get("input_values") or {}, fields)})
        looked = await asyncio.gather(*(self._look(worker, u) for u in urls))
        markers = dict(zip(urls, looked))
        solutions, records = [], []
        seconds = 0.0
        answer_field = fields.labels(pool).answer_field
        for task in tasks:
            rng = random.Random(f"{self.seed}:answer:{worker.user_id}:{task['id']}")
            given, correct = answer_task(pool, task, markers, fields, worker.accuracy, rng)
            seconds += rng.uniform(*self.scenario.pace.verification_seconds_per_task)
            inputs = task.get("input_values") or {}
            solutions.append({"output_values": {answer_field: given}})
            records.append({
                "task_id": task["id"], "given": given, "correct": correct,
                "golden": bool(task.get("known_solutions")),
                "pedestrian_assignment_id": inputs.get("pedestrian_assignment_id"),
                "image": inputs.get("image"), "image_field": inputs.get("image_field"),
                "unreadable": [u for u in task_urls(pool, inputs, fields) if markers.get(u) is None]})
        state.update(solutions=solutions, records=records, due=_iso(now + self._real(seconds)))
        self._save_state(worker.user_id, state)

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

    async def _look(self, worker: Worker, url: str) -> PhotoMarker | None:
        """Open a photo URL like a worker's browser would; None if it does not open or has no marker."""
        assert self.scenario is not None
        broken = self.scenario.behaviour.broken_link_rate
        if broken and random.Random(f"{self.seed}:link:{worker.user_id}:{url}").random() < broken:
            return None
        try:
            data = await self._fetch(url)
        except Exception as exc:  # a dead link is an answer ("bad"), not a crowd failure
            log.info("checker %s could not open %s: %s", worker.name, _short(url), exc)
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
            "scenario": saved.get("name"),
            "seed": saved.get("seed"),
            "setup": saved.get("result"),
            "organizations": self.store.all_truth("org"),
            "workers": self.store.all_truth("worker"),
            "assignments": self.store.all_truth("assignment"),
            "photos": self.store.all_truth("photo"),
            "answers": self.store.all_truth("answer"),
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
            inputs = {"pedestrian_assignment_id": dict(string), **{n: dict(optional) for n in f.org_fields},
                      f.verdict_field: dict(string), f.worker_coordinates_field: dict(optional),
                      **{n: {"type": "array_url", "required": False} for n in f.photo_fields}}
        else:
            inputs = {"image": {"type": "url", "required": True}, "image_field": dict(string),
                      "group": dict(optional), "pedestrian_assignment_id": dict(string),
                      "name": dict(optional), "address": dict(optional)}
        outputs = {labels.answer_field: {"type": "string", "required": True,
                                         "allowed_values": [labels.accept_label, labels.reject_label]}}
        title = {"visit": "Did the pedestrian really go there?", "quality": "Is the photo sharp and usable?",
                 "relevance": "Does the photo show what it should?"}[kind]
    return {
        "public_name": title,
        "public_description": f"{title} (emulated scenario {scenario.name})",
        "private_comment": f"emulator: {kind}",
        "task_spec": {"input_spec": inputs, "output_spec": outputs},
        "assignments_issuing_type": "AUTOMATED",
    }


def _pool_doc(scenario: Scenario, kind: str, project_id: str, now: datetime) -> dict[str, Any]:
    settings = scenario.pools[kind]
    doc: dict[str, Any] = {
        "project_id": project_id,
        "private_name": f"{scenario.name}: {kind}",
        "may_contain_adult_content": False,
        "reward_per_assignment": settings.reward,
        "assignment_max_duration_seconds": settings.assignment_max_duration_seconds,
        "will_expire": fmt_time(now + timedelta(days=365)),
        "auto_accept_solutions": settings.auto_accept_solutions,
        "defaults": {"default_overlap_for_new_task_suites": settings.overlap,
                     "default_overlap_for_new_tasks": settings.overlap},
        "assignments_issuing_config": {"issue_task_suites_in_creation_order": kind == "pedestrian"},
        "metadata": {"emulator_role": [kind]},
    }
    if settings.auto_accept_period_day is not None:
        doc["auto_accept_period_day"] = settings.auto_accept_period_day
    if kind != "pedestrian":
        lo, hi = scenario.pace.tasks_per_assignment
        doc["mixer_config"] = {"real_tasks_count": hi, "golden_tasks_count": 0, "training_tasks_count": 0}
    return doc
