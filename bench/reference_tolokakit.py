"""The pedestrian flow written the plain way with toloka-kit 1.2.3's ``streaming`` package: the yardstick.

This is what a toloka-kit user writes for the pedestrian pipeline (compare toloka-kit's streaming
example): one ``Pipeline``, an ``AssignmentsObserver`` per pool, and callbacks that

* on a **submitted** pedestrian assignment download its counted photos to a local folder (as the
  daemon's local file store does, ``file://`` links) and create one visit task (overlap 3);
* on **accepted** visit assignments collect answers until a task has 3, aggregate with crowd-kit's
  ``MajorityVote`` and reject ("Incorrect object"), accept (the organization does not exist) or
  create one quality task per photo;
* on accepted quality assignments decide each photo by majority; ``main`` without a good photo of
  a required field rejects ("Low quality photos"), a bonus group without one is dropped; the good
  photos go to the relevance pool;
* on accepted relevance assignments decide by majority; ``main`` without a relevant photo of a
  required field rejects, else the pedestrian assignment is accepted and one bonus per bonus
  group with a relevant photo is paid.

It keeps its state in memory (no checkpoint, no journal: a crash loses it, as toloka-kit's example
does without a ``storage``), and is used only by ``bench/side_by_side.py``, which runs it as its own
process against the emulator and compares its requests, CPU and decisions with the daemon's:

    TOLOKA_TOKEN=... python bench/reference_tolokakit.py --config toloka.ini --organizations 200

It reads pool ids, field names, labels, overlaps and comments from the daemon's ``toloka.ini``
(a fixed ``overlap``; 3 when the section has none) and stops when ``--organizations`` pedestrian
tasks are decided.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import configparser
import logging
import os
import sys
from dataclasses import dataclass, field
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd
import toloka.client as tc
from crowdkit.aggregation import MajorityVote
from toloka.client.exceptions import IncorrectActionsApiError
from toloka.streaming import AssignmentsObserver, Pipeline
from toloka.streaming.event import AssignmentEvent

log = logging.getLogger("reference")
MAIN = "main"


def _list(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@dataclass(frozen=True)
class Stage:
    """One verification pool as the toloka.ini describes it."""

    pool_id: str
    overlap: int
    answer_field: str
    accept_label: str
    reject_comment: str
    accept_comment: str

    @classmethod
    def read(cls, section: configparser.SectionProxy) -> Stage:
        return cls(section["pool_id"], int(section.get("overlap", "3")), section.get("answer_field", "result"),
                   section["accept_label"], section.get("reject_comment", ""),
                   section.get("accept_comment", "Good job"))


@dataclass(frozen=True)
class Config:
    url: str
    pedestrian_pool: str
    org_fields: list[str]
    extra_fields: list[str]
    verdict_field: str
    verdict_no_org: str
    worker_coordinates_field: str
    main_fields: list[str]
    required_fields: list[str]
    bonus_fields: list[str]
    bonus_flags: list[str]
    bonus_flag_yes: str
    bonus_per_field: Decimal
    photos: Path
    visit: Stage
    quality: Stage
    relevance: Stage

    @classmethod
    def read(cls, path: Path) -> Config:
        ini = configparser.ConfigParser(interpolation=None)
        ini.read(path, encoding="utf-8")
        ped = ini["PedestrianProject"]
        return cls(
            url=ini["Toloka"]["environment"], pedestrian_pool=ped["pool_id"],
            org_fields=_list(ped["org_fields"]), extra_fields=_list(ped.get("extra_fields", "")),
            verdict_field=ped["verdict_field"], verdict_no_org=ped["verdict_no_org"],
            worker_coordinates_field=ped["worker_coordinates_field"], main_fields=_list(ped["main_fields"]),
            required_fields=_list(ped["required_fields"]), bonus_fields=_list(ped["bonus_fields"]),
            bonus_flags=_list(ped["bonus_flags"]), bonus_flag_yes=ped["bonus_flag_yes"],
            bonus_per_field=Decimal(ped["bonus_per_field"]),
            photos=(path.parent / ini["FileStore"].get("local_folder", "photos")).resolve() / "reference",
            visit=Stage.read(ini["ValidationVisit"]), quality=Stage.read(ini["ValidationQuality"]),
            relevance=Stage.read(ini["ValidationRelevance"]),
        )


@dataclass
class PhotoCheck:
    field: str
    photo_id: str  # "<field>/<n>"
    url: str
    good: bool | None = None
    relevant: bool | None = None


@dataclass
class Work:
    """One pedestrian assignment on its way through the checks."""

    assignment_id: str
    task_id: str
    user_id: str
    org: dict[str, Any]
    verdict: str
    photos: dict[str, list[PhotoCheck]]  # group (main or a bonus field) -> photos
    dropped: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Event:
    """The parts of an assignment event the callbacks read (toloka-kit types every field optional)."""

    assignment_id: str
    user_id: str
    items: list[tuple[str, dict[str, Any], bool, dict[str, Any]]]  # (task id, input, is control, output)


def read_event(event: AssignmentEvent) -> Event:
    a = event.assignment
    assert a is not None and a.id and a.user_id, "an assignment event without an assignment"
    items = [(str(t.id), dict(t.input_values or {}), bool(t.known_solutions), dict(s.output_values or {}))
             for t, s in zip(a.tasks or [], a.solutions or [], strict=True)]
    return Event(a.id, a.user_id, items)


def majority(answers: list[tuple[str, str, str]]) -> dict[str, str]:
    """task key -> label by crowd-kit's MajorityVote over (task key, label, worker) rows."""
    frame = pd.DataFrame(answers, columns=["task", "label", "worker"])
    return {str(k): str(v) for k, v in MajorityVote().fit_predict(frame).items()}


class Flow:
    """The callbacks and their in-memory state."""

    def __init__(self, client: tc.TolokaClient, config: Config, organizations: int) -> None:
        self.client = client
        self.config = config
        self.organizations = organizations
        self.works: dict[str, Work] = {}
        self.decided_tasks: set[str] = set()
        self.answers: dict[str, dict[str, list[tuple[str, str]]]] = {
            "visit": collections.defaultdict(list), "quality": collections.defaultdict(list),
            "relevance": collections.defaultdict(list)}
        self.observers: list[AssignmentsObserver] = []

    # ------------------------------------------------------------------ pedestrian -> visit

    def on_pedestrian_submitted(self, events: list[AssignmentEvent]) -> None:
        c = self.config
        tasks = []
        for event in events:
            a = read_event(event)
            if a.assignment_id in self.works or len(a.items) != 1:
                continue
            task_id, task_input, _, out = a.items[0]
            groups = {MAIN: [(f, self._ids(out.get(f))) for f in c.main_fields]}
            for f, flag in zip(c.bonus_fields, c.bonus_flags, strict=True):
                if out.get(flag) == c.bonus_flag_yes and self._ids(out.get(f)):
                    groups[f] = [(f, self._ids(out.get(f)))]
            photos: dict[str, list[PhotoCheck]] = {}
            links: dict[str, list[str]] = {}
            for group, fields in groups.items():
                photos[group] = []
                for f, ids in fields:
                    for n, attachment_id in enumerate(ids):
                        path = c.photos / a.assignment_id / f / f"{n}.jpg"
                        path.parent.mkdir(parents=True, exist_ok=True)
                        with path.open("wb") as out_file:
                            self.client.download_attachment(attachment_id, out_file)
                        photos[group].append(PhotoCheck(f, f"{f}/{n}", path.as_uri()))
                        links.setdefault(f, []).append(path.as_uri())
            org = {k: task_input[k] for k in (*c.org_fields, *c.extra_fields) if k in task_input}
            self.works[a.assignment_id] = Work(a.assignment_id, task_id, a.user_id, org,
                                               str(out.get(c.verdict_field)), photos)
            tasks.append(tc.Task(
                pool_id=c.visit.pool_id, overlap=c.visit.overlap, unavailable_for=[a.user_id],
                input_values={"pedestrian_assignment_id": a.assignment_id, **org,
                              c.verdict_field: out.get(c.verdict_field),
                              c.worker_coordinates_field: out.get(c.worker_coordinates_field) or "", **links}))
        if tasks:
            self.client.create_tasks(tasks, open_pool=True)
            log.info("visit tasks created: %d", len(tasks))

    @staticmethod
    def _ids(value: Any) -> list[str]:
        if not value:
            return []
        return [str(v) for v in (value if isinstance(value, list) else [value]) if v]

    # ------------------------------------------------------------------ answers

    def _collect(self, stage: str, events: list[AssignmentEvent], key_of: Any) -> dict[str, str]:
        """Add the events' answers; aggregate every task key with ``overlap`` answers: key -> label."""
        conf: Stage = getattr(self.config, stage)
        waiting = self.answers[stage]
        for event in events:
            a = read_event(event)
            for _, task_input, control, output in a.items:
                key = None if control else key_of(task_input)  # a control task is not ours to aggregate
                if key is not None:
                    waiting[key].append((str(output.get(conf.answer_field)), a.user_id))
        ready = [(key, label, worker) for key, got in waiting.items() if len(got) >= conf.overlap
                 for label, worker in got]
        if not ready:
            return {}
        labels = majority(ready)
        for key in labels:
            del waiting[key]
        return labels

    # ------------------------------------------------------------------ visit

    def on_visit_accepted(self, events: list[AssignmentEvent]) -> None:
        c = self.config
        labels = self._collect("visit", events, lambda values: values.get("pedestrian_assignment_id"))
        quality_tasks = []
        for pa, label in labels.items():
            work = self.works.get(pa)
            if work is None:
                continue
            if label != c.visit.accept_label:
                self.decide(work, False, c.visit.reject_comment)
            elif work.verdict == c.verdict_no_org:
                self.decide(work, True, c.visit.accept_comment)
            else:
                photos = [(g, p) for g, ps in work.photos.items() for p in ps]
                if not photos:
                    self.decide(work, False, c.quality.reject_comment)
                quality_tasks += [self._photo_task(c.quality, work, g, p) for g, p in photos]
        if quality_tasks:
            self.client.create_tasks(quality_tasks, open_pool=True)
            log.info("quality tasks created: %d", len(quality_tasks))

    def _photo_task(self, stage: Stage, work: Work, group: str, photo: PhotoCheck) -> tc.Task:
        return tc.Task(pool_id=stage.pool_id, overlap=stage.overlap, unavailable_for=[work.user_id], input_values={
            "image": photo.url, "image_field": photo.field, "photo_id": photo.photo_id,
            "group": f"{work.assignment_id}/{group}", "pedestrian_assignment_id": work.assignment_id,
            "name": work.org.get("name", ""), "address": work.org.get("address", "")})

    # ------------------------------------------------------------------ quality

    @staticmethod
    def _photo_key(values: dict[str, Any]) -> str | None:
        pa, photo = values.get("pedestrian_assignment_id"), values.get("photo_id")
        return f"{pa}|{photo}" if pa and photo else None

    def _judged(self, stage: str, labels: dict[str, str]) -> set[str]:
        """Record photo verdicts; the pedestrian assignments touched."""
        conf: Stage = getattr(self.config, stage)
        touched = set()
        for key, label in labels.items():
            pa, photo_id = key.split("|", 1)
            work = self.works.get(pa)
            if work is None:
                continue
            for photo in (p for ps in work.photos.values() for p in ps if p.photo_id == photo_id):
                setattr(photo, "good" if stage == "quality" else "relevant", label == conf.accept_label)
            touched.add(pa)
        return touched

    def on_quality_accepted(self, events: list[AssignmentEvent]) -> None:
        c = self.config
        relevance_tasks = []
        for pa in self._judged("quality", self._collect("quality", events, self._photo_key)):
            work = self.works[pa]
            if any(p.good is None for ps in work.photos.values() for p in ps):
                continue
            good_fields = {p.field for p in work.photos[MAIN] if p.good}
            if any(f not in good_fields for f in c.required_fields):
                self.decide(work, False, c.quality.reject_comment)
                continue
            work.dropped = {g for g, ps in work.photos.items() if g != MAIN and not any(p.good for p in ps)}
            relevance_tasks += [self._photo_task(c.relevance, work, g, p) for g, ps in work.photos.items()
                                if g not in work.dropped for p in ps if p.good]
        if relevance_tasks:
            self.client.create_tasks(relevance_tasks, open_pool=True)
            log.info("relevance tasks created: %d", len(relevance_tasks))

    # ------------------------------------------------------------------ relevance

    def on_relevance_accepted(self, events: list[AssignmentEvent]) -> None:
        c = self.config
        bonuses = []
        for pa in self._judged("relevance", self._collect("relevance", events, self._photo_key)):
            work = self.works[pa]
            checked = [p for g, ps in work.photos.items() if g not in work.dropped for p in ps if p.good]
            if any(p.relevant is None for p in checked):
                continue
            relevant_fields = {p.field for p in work.photos[MAIN] if p.good and p.relevant}
            if any(f not in relevant_fields for f in c.required_fields):
                self.decide(work, False, c.relevance.reject_comment)
                continue
            paid = [g for g, ps in work.photos.items()
                    if g != MAIN and g not in work.dropped and any(p.good and p.relevant for p in ps)]
            if self.decide(work, True, c.relevance.accept_comment) and paid:
                bonuses.append(tc.user_bonus.UserBonus(
                    user_id=work.user_id, assignment_id=work.assignment_id, amount=c.bonus_per_field * len(paid),
                    public_title={"EN": "Bonus for extra photos"},
                    public_message={"EN": f"Thank you! Bonus photos accepted: {', '.join(paid)}."}))
        if bonuses:
            self.client.create_user_bonuses(bonuses)
            log.info("bonuses paid: %d", len(bonuses))
        self._stop_when_done()

    # ------------------------------------------------------------------ decisions

    def decide(self, work: Work, accept: bool, comment: str) -> bool:
        """Accept or reject the pedestrian assignment; False if it was already reviewed (e.g. in the UI)."""
        self.works.pop(work.assignment_id, None)
        self.decided_tasks.add(work.task_id)
        try:
            if accept:
                self.client.accept_assignment(work.assignment_id, comment)
            else:
                self.client.reject_assignment(work.assignment_id, comment)
        except IncorrectActionsApiError:
            log.exception("cannot %s %s", "accept" if accept else "reject", work.assignment_id)
            return False
        log.info("%s %s: %s", "accepted" if accept else "rejected", work.assignment_id, comment)
        self._stop_when_done()
        return True

    def _stop_when_done(self) -> None:
        if self.organizations and len(self.decided_tasks) >= self.organizations and not self.works:
            log.info("all %d organizations decided: stopping", self.organizations)
            for observer in self.observers:
                observer.delete()


def build(client: tc.TolokaClient, config: Config, organizations: int, period_s: float,
          lag_s: float) -> tuple[Pipeline, Flow]:
    flow = Flow(client, config, organizations)
    lag = timedelta(seconds=lag_s)
    pedestrian = AssignmentsObserver(client, config.pedestrian_pool, cursor_time_lag=lag)
    visit = AssignmentsObserver(client, config.visit.pool_id, cursor_time_lag=lag)
    quality = AssignmentsObserver(client, config.quality.pool_id, cursor_time_lag=lag)
    relevance = AssignmentsObserver(client, config.relevance.pool_id, cursor_time_lag=lag)
    pedestrian.on_submitted(flow.on_pedestrian_submitted)
    visit.on_accepted(flow.on_visit_accepted)
    quality.on_accepted(flow.on_quality_accepted)
    relevance.on_accepted(flow.on_relevance_accepted)
    # Callbacks first, then register: toloka-kit 1.2.3 keys an observer by its callbacks when it is
    # registered and looks it up by its current key when it is deleted, so an observer that got its
    # callbacks after register() cannot be deleted (KeyError in Pipeline.run_manually).
    pipeline = Pipeline(period=timedelta(seconds=period_s))
    # Pipeline.run sleeps at least MIN_SLEEP_SECONDS (10 s) between iterations whatever the period;
    # the side-by-side compares both pipelines at the same tick period, so the floor follows it.
    pipeline.MIN_SLEEP_SECONDS = min(Pipeline.MIN_SLEEP_SECONDS, period_s)  # type: ignore[attr-defined]
    for observer in (pedestrian, visit, quality, relevance):
        pipeline.register(observer)
    flow.observers = [pedestrian, visit, quality, relevance]
    return pipeline, flow


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--config", type=Path, required=True, help="the daemon's toloka.ini")
    parser.add_argument("--organizations", type=int, default=0,
                        help="stop when this many pedestrian tasks are decided (0: run on)")
    parser.add_argument("--period", type=float, default=2.0, help="seconds between observer calls")
    parser.add_argument("--lag", type=float, default=1.0, help="cursor time lag, seconds")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(format="%(levelname)s - %(asctime)s - %(name)s: %(message)s",
                        level=args.log_level, stream=sys.stdout)
    token = os.environ.get("TOLOKA_TOKEN")
    if not token:
        print("reference_tolokakit.py: set TOLOKA_TOKEN to the account's OAuth token", file=sys.stderr)
        return 2
    config = Config.read(args.config)
    # retry_quotas=None: toloka-kit 1.2.3's quota retry path is broken (docs: toloka-api.md s.4).
    client = tc.TolokaClient(token, url=config.url, retry_quotas=None, timeout=30)
    pipeline, flow = build(client, config, args.organizations, args.period, args.lag)
    asyncio.run(pipeline.run())
    log.info("finished: %d organizations decided", len(flow.decided_tasks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
