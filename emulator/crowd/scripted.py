"""A naive, scripted stand-in for the pipeline, over plain HTTP (aiohttp), for tests and the bench.

It runs the whole flow of the spec (section 3) against an emulator with a scenario, in the
simplest way that works: it re-reads every assignment each poll, keeps its state in memory,
decides by plain majority, and stores photos in a local folder (``file://`` links). It is not
the pipeline: no checkpoints, no cursors, no retries. Its job is to prove that the simulated
crowd reacts to what a requester does, and to measure how long the crowd takes.
"""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from emulator.crowd.behaviour import photo_urls
from emulator.crowd.scenario import Scenario


@dataclass
class _Pedestrian:
    assignment_id: str
    user_id: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    photos: dict[str, list[tuple[str, str]]]  # field -> [(attachment id, file:// url)]
    quality_left: set[str] = field(default_factory=set)  # task ids still open
    relevance_left: set[str] = field(default_factory=set)
    good: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    relevant: dict[str, list[str]] = field(default_factory=dict)  # field -> attachment ids


@dataclass
class ScriptedResult:
    """What the scripted client decided; feed ``decisions`` to :func:`emulator.crowd.truth.score`."""

    decisions: dict[str, str] = field(default_factory=dict)  # pedestrian assignment -> accept/reject/no_org
    bonuses: dict[str, list[str]] = field(default_factory=dict)  # pedestrian assignment -> bonus fields paid
    kept_photos: set[str] = field(default_factory=set)  # attachment ids judged good and relevant
    tasks: dict[str, int] = field(default_factory=lambda: {"visit": 0, "quality": 0, "relevance": 0})
    seconds: float = 0.0


class ScriptedClient:
    """Drive one emulator scenario to the end (see the module docstring)."""

    def __init__(self, url: str, *, token: str, setup_result: dict[str, Any], scenario: Scenario,
                 folder: Path, http: aiohttp.ClientSession, poll_seconds: float = 0.2,
                 bonus_per_field: Decimal = Decimal("0.05")) -> None:
        self.api = url.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"OAuth {token}"}
        self.pools: dict[str, str] = setup_result["pools"]
        self.scenario = scenario
        self.folder = folder
        self.http = http
        self.poll_seconds = poll_seconds
        self.bonus_per_field = bonus_per_field
        self.result = ScriptedResult()
        self._peds: dict[str, _Pedestrian] = {}
        self._task_owner: dict[str, tuple[str, str, str, str]] = {}  # task -> (pool, ped id, field, attachment)
        self._answers: dict[str, list[str]] = {}
        self._seen: set[str] = set()
        self._settled: set[str] = set()

    def connect(self, url: str) -> None:
        """Talk to the emulator at ``url`` from now on (a restarted emulator on another port)."""
        self.api = url.rstrip("/") + "/api/v1"

    # ------------------------------------------------------------------ HTTP

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.api + path, headers=self.headers, **kwargs) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {await resp.text()}")
            return None if resp.status == 204 else await resp.json()

    async def _all_assignments(self, pool: str, status: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        last = ""
        while True:
            params = {"pool_id": self.pools[pool], "status": status, "sort": "id", "limit": "1000"}
            if last:
                params["id_gt"] = last
            page = await self._call("GET", "/assignments", params=params)
            items += page["items"]
            if not page["has_more"] or not page["items"]:
                return items
            last = page["items"][-1]["id"]

    async def _create_tasks(self, pool: str, inputs: list[dict[str, Any]], user_id: str) -> list[str]:
        body = [{"pool_id": self.pools[pool], "input_values": i, "overlap": self.scenario.pools[pool].overlap,
                 "unavailable_for": [user_id]} for i in inputs]
        answer = await self._call("POST", "/tasks", params={"async_mode": "false"}, json=body)
        created = answer["items"]
        if answer.get("validation_errors"):
            raise RuntimeError(f"tasks refused: {answer['validation_errors']}")
        self.result.tasks[pool] += len(created)
        return [created[str(i)]["id"] for i in range(len(body))]

    async def _review(self, ped: _Pedestrian, status: str, comment: str) -> None:
        await self._call("PATCH", f"/assignments/{ped.assignment_id}",
                         json={"status": status, "public_comment": comment})

    # ------------------------------------------------------------------ flow

    # The deadline is checked between polls, so it never cancels a half-made review
    # (asyncio.timeout would); tests and benches call run(timeout=...).
    async def run(self, *, expected: int, timeout: float) -> ScriptedResult:  # noqa: ASYNC109 - see above
        """Poll until ``expected`` pedestrian assignments are decided; TimeoutError after ``timeout``."""
        started = time.monotonic()
        self.folder.mkdir(parents=True, exist_ok=True)
        while len(self.result.decisions) < expected:
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"decided {len(self.result.decisions)} of {expected} in {timeout} s")
            await self._new_pedestrian_work()
            for pool in ("visit", "quality", "relevance"):
                await self._read_answers(pool)
            await self._decide()
            await asyncio.sleep(self.poll_seconds)
        self.result.seconds = time.monotonic() - started
        return self.result

    async def _new_pedestrian_work(self) -> None:
        f = self.scenario.fields
        for a in await self._all_assignments("pedestrian", "SUBMITTED"):
            if a["id"] in self._peds:
                continue
            out = a["solutions"][0]["output_values"]
            photos: dict[str, list[tuple[str, str]]] = {}
            for name in f.photo_fields:
                for attachment_id in photo_urls(out.get(name)):
                    path = self.folder / f"{attachment_id}.jpg"
                    async with self.http.get(f"{self.api}/attachments/{attachment_id}/download",
                                             headers=self.headers) as resp:
                        resp.raise_for_status()
                        path.write_bytes(await resp.read())
                    photos.setdefault(name, []).append((attachment_id, path.as_uri()))
            ped = _Pedestrian(a["id"], a["user_id"], a["tasks"][0]["input_values"], out, photos)
            self._peds[a["id"]] = ped
            visit = {"pedestrian_assignment_id": a["id"],
                     **{k: ped.inputs.get(k) for k in f.org_fields},
                     f.verdict_field: out.get(f.verdict_field),
                     f.worker_coordinates_field: out.get(f.worker_coordinates_field),
                     **{name: [u for _, u in photos.get(name, [])] for name in f.photo_fields}}
            (task_id,) = await self._create_tasks("visit", [visit], a["user_id"])
            self._task_owner[task_id] = ("visit", a["id"], "", "")

    async def _read_answers(self, pool: str) -> None:
        answer_field = self.scenario.fields.labels(pool).answer_field
        for a in await self._all_assignments(pool, "ACCEPTED"):
            if a["id"] in self._seen:
                continue
            self._seen.add(a["id"])
            for task, solution in zip(a["tasks"], a["solutions"], strict=True):
                self._answers.setdefault(task["id"], []).append(solution["output_values"][answer_field])

    def _majority(self, task_id: str, pool: str) -> bool | None:
        """True/False once the task has its overlap of answers (ties count as negative)."""
        answers = self._answers.get(task_id, [])
        if len(answers) < self.scenario.pools[pool].overlap:
            return None
        labels = self.scenario.fields.labels(pool)
        votes = Counter(answers)
        return votes[labels.accept_label] > votes[labels.reject_label]

    async def _decide(self) -> None:
        for task_id, (pool, ped_id, name, attachment_id) in list(self._task_owner.items()):
            if task_id in self._settled:
                continue
            verdict = self._majority(task_id, pool)
            if verdict is None:
                continue
            self._settled.add(task_id)
            ped = self._peds[ped_id]
            if ped_id in self.result.decisions:
                continue
            if pool == "visit":
                await self._after_visit(ped, verdict)
            elif pool == "quality":
                ped.quality_left.discard(task_id)
                if verdict:
                    ped.good.setdefault(name, []).append((attachment_id, dict(ped.photos[name])[attachment_id]))
                if not ped.quality_left:
                    await self._after_quality(ped)
            else:
                ped.relevance_left.discard(task_id)
                if verdict:
                    ped.relevant.setdefault(name, []).append(attachment_id)
                if not ped.relevance_left:
                    await self._after_relevance(ped)

    def _check_input(self, ped: _Pedestrian, name: str, url: str) -> dict[str, Any]:
        f = self.scenario.fields
        group = "main" if name in f.main_fields else name
        return {"image": url, "image_field": name, "group": f"{ped.assignment_id}/{group}",
                "pedestrian_assignment_id": ped.assignment_id,
                "name": ped.inputs.get("name"), "address": ped.inputs.get("address")}

    async def _create_checks(self, pool: str, ped: _Pedestrian, photos: dict[str, list[tuple[str, str]]]) -> set[str]:
        pairs = [(name, aid, url) for name, shots in photos.items() for aid, url in shots]
        ids = await self._create_tasks(pool, [self._check_input(ped, n, u) for n, _, u in pairs], ped.user_id)
        for task_id, (name, aid, _) in zip(ids, pairs, strict=True):
            self._task_owner[task_id] = (pool, ped.assignment_id, name, aid)
        return set(ids)

    async def _after_visit(self, ped: _Pedestrian, visited: bool) -> None:
        f = self.scenario.fields
        if not visited:
            await self._decide_ped(ped, "reject", "Incorrect object")
        elif ped.outputs.get(f.verdict_field) == f.verdict_no_org:
            await self._decide_ped(ped, "no_org", "Thank you")
        elif not ped.photos:
            await self._decide_ped(ped, "reject", "Low quality photos")
        else:
            ped.quality_left = await self._create_checks("quality", ped, self._wanted(ped, ped.photos))

    def _wanted(self, ped: _Pedestrian, photos: dict[str, list[tuple[str, str]]]) -> dict[str, list[tuple[str, str]]]:
        """Main fields always; a bonus field only when its flag says yes."""
        f = self.scenario.fields
        return {name: shots for name, shots in photos.items()
                if name in f.main_fields or ped.outputs.get(f.flag_of(name)) == f.bonus_flag_yes}

    async def _after_quality(self, ped: _Pedestrian) -> None:
        f = self.scenario.fields
        if any(not ped.good.get(name) for name in f.required_fields):
            await self._decide_ped(ped, "reject", "Low quality photos")
            return
        ped.relevance_left = await self._create_checks("relevance", ped, ped.good)

    async def _after_relevance(self, ped: _Pedestrian) -> None:
        f = self.scenario.fields
        if any(not ped.relevant.get(name) for name in f.required_fields):
            await self._decide_ped(ped, "reject", "Not relevant photos")
            return
        bonus = [name for name in f.bonus_fields if ped.relevant.get(name)]
        self.result.kept_photos |= {aid for ids in ped.relevant.values() for aid in ids}
        await self._decide_ped(ped, "accept", "Good job")
        if bonus:
            amount = self.bonus_per_field * len(bonus)
            await self._call("POST", "/user-bonuses", params={"async_mode": "false"}, json={
                "user_id": ped.user_id, "amount": float(amount), "assignment_id": ped.assignment_id,
                "public_title": {"EN": "Bonus for extra photos"},
                "public_message": {"EN": "Accepted bonus photos: " + ", ".join(bonus)}})
            self.result.bonuses[ped.assignment_id] = bonus

    async def _decide_ped(self, ped: _Pedestrian, decision: str, comment: str) -> None:
        status = "REJECTED" if decision == "reject" else "ACCEPTED"
        await self._review(ped, status, comment)
        self.result.decisions[ped.assignment_id] = decision
