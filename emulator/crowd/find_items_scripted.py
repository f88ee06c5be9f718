"""A naive, scripted stand-in for the find_items pipeline, over plain HTTP, for tests.

It plays the daemon's part of toloka-kit's streaming example against an emulator running a
find_items scenario, in the simplest way that works (it re-reads every assignment each poll
and keeps its state in memory; no checkpoints, no cursors, no retries):

- each submitted find becomes a verification task (``image``, ``found_link``,
  ``assignment_id``; ``unavailable_for`` the finder);
- once a find has its overlap of verification answers: majority ``Yes`` -> accept
  ("Well done!"), else reject ("Incorrect object."; the pool's rule then raises the image
  task's overlap and another finder takes it);
- comparisons (every pair of the image's distinct accepted links, ``left``/``right`` in link
  order) are created once an image has ``links_per_image`` accepted links. By default
  (``settle=True``) the client waits until the image's task is finished, and compares all its
  accepted links, so the outcome does not depend on the order in which finds were decided;
  with ``settle=False`` it compares the first ``links_per_image`` accepted links at once,
  like the seed;
- an image's ranking is its links ordered by the share of comparisons they won.

The result holds the rows of ``verified_links.tsv`` and ``rankings.tsv`` for
:func:`emulator.crowd.find_items_truth.score_find_items`.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from emulator.crowd.find_items_scenario import (
    ACCEPT_COMMENT,
    ANSWER_FIELD,
    ASSIGNMENT_FIELD,
    IMAGE_FIELD,
    LEFT,
    LEFT_FIELD,
    LINK_FIELD,
    REJECT_COMMENT,
    RIGHT_FIELD,
    YES,
    FindItemsScenario,
)


@dataclass
class _Find:
    assignment_id: str
    task_id: str
    image: str
    link: str
    worker: str
    answers: list[str] = field(default_factory=list)


@dataclass
class FindItemsResult:
    """What the scripted client decided and ranked."""

    decisions: dict[str, str] = field(default_factory=dict)  # find assignment -> accept | reject
    verified_rows: list[dict[str, Any]] = field(default_factory=list)  # image, link, worker, verdict, confidence
    ranking_rows: list[dict[str, Any]] = field(default_factory=list)  # image, link, score, rank
    comparisons: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # image -> (left, right) pairs
    tasks: dict[str, int] = field(default_factory=lambda: {"verification": 0, "sbs": 0})
    seconds: float = 0.0


class FindItemsScriptedClient:
    """Drive one find_items scenario to the end (see the module docstring)."""

    def __init__(self, url: str, *, token: str, setup_result: dict[str, Any], scenario: FindItemsScenario,
                 http: aiohttp.ClientSession, poll_seconds: float = 0.2, settle: bool = True) -> None:
        self.api = url.rstrip("/") + "/api/v1"
        self.headers = {"Authorization": f"OAuth {token}"}
        self.pools: dict[str, str] = setup_result["pools"]
        self.scenario = scenario
        self.http = http
        self.poll_seconds = poll_seconds
        self.settle = settle
        self.result = FindItemsResult()
        self._finds: dict[str, _Find] = {}  # find assignment id -> find
        self._check_of: dict[str, str] = {}  # verification task -> find assignment id
        self._accepted: dict[str, list[str]] = {}  # image -> accepted links, in decision order
        self._pairs: dict[str, dict[str, tuple[str, str]]] = {}  # image -> sbs task -> (left, right)
        self._compared: dict[str, list[str]] = {}  # image -> the distinct links compared
        self._votes: dict[str, list[str]] = {}  # sbs task -> labels
        self._seen: set[str] = set()
        self._ranked: set[str] = set()

    def connect(self, url: str) -> None:
        """Talk to the emulator at ``url`` from now on (a restarted emulator on another port)."""
        self.api = url.rstrip("/") + "/api/v1"

    # ------------------------------------------------------------------ HTTP

    async def _call(self, method: str, path: str, **kwargs: Any) -> Any:
        async with self.http.request(method, self.api + path, headers=self.headers, **kwargs) as resp:
            if resp.status >= 400:
                raise RuntimeError(f"{method} {path}: HTTP {resp.status}: {await resp.text()}")
            return None if resp.status == 204 else await resp.json()

    async def _all(self, what: str, pool: str, **filters: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        last = ""
        while True:
            params = {"pool_id": self.pools[pool], "sort": "id", "limit": "1000", **filters}
            if last:
                params["id_gt"] = last
            page = await self._call("GET", f"/{what}", params=params)
            items += page["items"]
            if not page["has_more"] or not page["items"]:
                return items
            last = page["items"][-1]["id"]

    async def _create_tasks(self, pool: str, bodies: list[dict[str, Any]]) -> list[str]:
        answer = await self._call("POST", "/tasks", params={"async_mode": "false"}, json=bodies)
        if answer.get("validation_errors"):
            raise RuntimeError(f"tasks refused: {answer['validation_errors']}")
        self.result.tasks[pool] += len(bodies)
        return [answer["items"][str(i)]["id"] for i in range(len(bodies))]

    # ------------------------------------------------------------------ flow

    # The deadline is checked between polls, so it never cancels a half-made review
    # (asyncio.timeout would); tests call run(timeout=...).
    async def run(self, *, timeout: float, stop_after: int | None = None) -> FindItemsResult:  # noqa: ASYNC109 - see above
        """Poll until every image task is finished and decided and every comparison answered
        (or, with ``stop_after``, until that many finds are decided: a test then restarts the
        emulator and calls ``run`` again); TimeoutError after ``timeout`` seconds."""
        started = time.monotonic()
        while True:
            await self._new_finds()
            await self._read_verifications()
            await self._decide()
            await self._read_comparisons()
            if stop_after is not None and len(self.result.decisions) >= stop_after:
                break
            if await self._finished():
                break
            if time.monotonic() - started > timeout:
                raise TimeoutError(f"decided {len(self.result.decisions)} finds, ranked {len(self._ranked)} "
                                   f"images in {timeout} s")
            await asyncio.sleep(self.poll_seconds)
        self.result.seconds = time.monotonic() - started
        return self.result

    async def _new_finds(self) -> None:
        for a in await self._all("assignments", "find_items", status="SUBMITTED"):
            if a["id"] in self._finds:
                continue
            task, solution = a["tasks"][0], a["solutions"][0]
            find = _Find(a["id"], task["id"], task["input_values"][IMAGE_FIELD],
                         solution["output_values"][LINK_FIELD], a["user_id"])
            self._finds[a["id"]] = find
            (check,) = await self._create_tasks("verification", [{
                "pool_id": self.pools["verification"], "overlap": self.scenario.pools["verification"].overlap,
                "unavailable_for": [find.worker],
                "input_values": {IMAGE_FIELD: find.image, LINK_FIELD: find.link,
                                 ASSIGNMENT_FIELD: find.assignment_id}}])
            self._check_of[check] = find.assignment_id

    async def _read_verifications(self) -> None:
        for a in await self._all("assignments", "verification", status="ACCEPTED"):
            if a["id"] in self._seen:
                continue
            self._seen.add(a["id"])
            for task, solution in zip(a["tasks"], a["solutions"], strict=True):
                find_id = self._check_of.get(task["id"]) or task["input_values"].get(ASSIGNMENT_FIELD)
                if find_id in self._finds:
                    self._finds[find_id].answers.append(solution["output_values"][ANSWER_FIELD])

    async def _decide(self) -> None:
        overlap = self.scenario.pools["verification"].overlap
        for find in self._finds.values():
            if find.assignment_id in self.result.decisions or len(find.answers) < overlap:
                continue
            votes = Counter(find.answers)
            accept = votes[YES] * 2 > len(find.answers)
            await self._call("PATCH", f"/assignments/{find.assignment_id}", json={
                "status": "ACCEPTED" if accept else "REJECTED",
                "public_comment": ACCEPT_COMMENT if accept else REJECT_COMMENT})
            self.result.decisions[find.assignment_id] = "accept" if accept else "reject"
            share = max(votes.values()) / len(find.answers)
            self.result.verified_rows.append({"image": find.image, "link": find.link, "worker": find.worker,
                                              "verdict": "accepted" if accept else "rejected",
                                              "confidence": round(share, 4)})
            if accept:
                self._accepted.setdefault(find.image, []).append(find.link)
        await self._compare()

    async def _image_tasks(self) -> tuple[list[dict[str, Any]], set[str]]:
        """The find_items tasks, and the ids of those with a find still being made or reviewed."""
        tasks = await self._all("tasks", "find_items")
        pending = await self._all("assignments", "find_items", status="ACTIVE,SUBMITTED")
        return tasks, {t["id"] for a in pending for t in a["tasks"]}

    def _settled(self, task: dict[str, Any], pending: set[str]) -> bool:
        """Every find the task will get is in and decided (or no finder is left to take it)."""
        if task["id"] in pending:
            return False
        finds = [f for f in self._finds.values() if f.task_id == task["id"]]
        if any(f.assignment_id not in self.result.decisions for f in finds):
            return False
        return (task.get("remaining_overlap") or 0) == 0 or len(finds) >= len(self.scenario.finders)

    async def _compare(self) -> None:
        need = self.scenario.links_per_image
        ready = [image for image, links in self._accepted.items()
                 if image not in self._pairs and len(links) >= need]
        if not ready:
            return
        if self.settle:
            tasks, pending = await self._image_tasks()
            by_image = {t["input_values"][IMAGE_FIELD]: t for t in tasks}
            ready = [image for image in ready if image in by_image and self._settled(by_image[image], pending)]
        for image in ready:
            links = self._accepted[image] if self.settle else self._accepted[image][:need]
            self._compared[image] = sorted(set(links))
            pairs = list(itertools.combinations(self._compared[image], 2))
            self.result.comparisons[image] = pairs
            ids = await self._create_tasks("sbs", [{
                "pool_id": self.pools["sbs"], "overlap": self.scenario.pools["sbs"].overlap,
                "input_values": {IMAGE_FIELD: image, LEFT_FIELD: left, RIGHT_FIELD: right}}
                for left, right in pairs]) if pairs else []
            self._pairs[image] = dict(zip(ids, pairs, strict=True))
            if not pairs:  # a single distinct link: nothing to compare
                self._rank(image)

    async def _read_comparisons(self) -> None:
        for a in await self._all("assignments", "sbs", status="ACCEPTED"):
            if a["id"] in self._seen:
                continue
            self._seen.add(a["id"])
            for task, solution in zip(a["tasks"], a["solutions"], strict=True):
                self._votes.setdefault(task["id"], []).append(solution["output_values"][ANSWER_FIELD])
        overlap = self.scenario.pools["sbs"].overlap
        for image, pairs in self._pairs.items():
            if image not in self._ranked and all(len(self._votes.get(t, ())) >= overlap for t in pairs):
                self._rank(image)

    def _rank(self, image: str) -> None:
        """Order the image's links by the share of comparisons they won (ties by link)."""
        won: Counter[str] = Counter()
        seen: Counter[str] = Counter()
        for task_id, (left, right) in self._pairs.get(image, {}).items():
            for label in self._votes.get(task_id, ()):
                won[left if label == LEFT else right] += 1
                seen[left] += 1
                seen[right] += 1
        links = self._compared.get(image, [])
        scores = {link: (won[link] / seen[link] if seen[link] else 0.0) for link in links}
        ordered = sorted(links, key=lambda link: (-scores[link], link))
        for rank, link in enumerate(ordered, start=1):
            self.result.ranking_rows.append({"image": image, "link": link, "score": round(scores[link], 4),
                                             "rank": rank})
        self._ranked.add(image)

    async def _finished(self) -> bool:
        if len(self.result.decisions) < len(self._finds) or set(self._pairs) - self._ranked:
            return False
        tasks, pending = await self._image_tasks()
        if pending:
            return False
        for task in tasks:
            if not self._settled(task, pending):
                return False
            image = task["input_values"][IMAGE_FIELD]
            if len(self._accepted.get(image, ())) >= self.scenario.links_per_image and image not in self._pairs:
                return False
        return True
