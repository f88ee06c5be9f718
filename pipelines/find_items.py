"""The find-items pipeline (toloka-kit's streaming example), declared on the engine.

find_items (submitted) -> verification -> the find_items assignment is accepted
or rejected (a rejection gives the task one more overlap: the pool's quality
control rule, as in the example) -> find_items (accepted) collects the accepted
links per image -> once an image has ``links_per_image`` of them, every pair of
its distinct links becomes a side-by-side task -> sbs answers are aggregated
with crowd-kit's BradleyTerry into a ranking per image.

Unlike the notebook it comes from, every effect is journalled and idempotent,
so a restart or a kill -9 neither loses nor repeats anything; results go to
``verified_links.tsv`` and ``rankings.tsv``, decisions to ``decisions.tsv``.
All handlers are pure: state in, actions out.
"""

from __future__ import annotations

import configparser
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Literal

from aggregation.classification import METHODS, Vote, aggregate, preload
from aggregation.pairwise import Comparison, rank
from common import ini
from common.errors import ConfigError
from engine.actions import AppendRows, CreateTasks, SetStatus, TaskSpec, operation_uuid
from engine.config import optional_str, pool_id_of
from engine.pool_specs import OutputField, PoolExpectation
from engine.spec import (
    AnswerLog,
    Batch,
    Context,
    CountChart,
    Decision,
    DecisionLog,
    FunnelStage,
    ObserverSpec,
    Outcome,
    PipelineSpec,
    Review,
    TableSpec,
)
from pipelines.find_items_trace import TRACE
from toloka_client.records import Assignment

# Decision events (the ``event`` column of decisions.tsv): one place for every name.
FOUND = "link found"
TO_VERIFICATION = "to verification"
ACCEPT = "ACCEPT link"
REJECT = "REJECT link"
AUTO_ACCEPTED = "auto-accepted"
TO_COMPARISON = "to comparison"
RANKED = "ranked"

DECISION_COLUMNS = ("date_time", "image", "link", "assignment_id", "pool", "event", "comment")
ANSWER_COLUMNS = ("date_time", "pool", "pool_id", "task", "assignment_id", "worker", "label", "skill", "result",
                  "subject")
VERIFIED_COLUMNS = ("image", "link", "worker", "verdict", "confidence", "assignment_id")
RANKING_COLUMNS = ("image", "link", "score", "rank")

SECTIONS: dict[str, frozenset[str]] = {
    "FindItemsProject": frozenset({
        "pool_id", "event", "image_field", "link_field", "links_per_image", "accept_comment", "reject_comment",
    }),
    "FindItemsVerification": frozenset({
        "pool_id", "skill_id", "event", "overlap", "answer_field", "accept_label", "reject_label", "aggregation",
        "default_skill",
    }),
    "FindItemsComparison": frozenset({
        "pool_id", "skill_id", "event", "overlap", "answer_field", "left_label", "right_label", "aggregation",
    }),
}
EVENTS = ("submitted", "accepted")


# --- configuration -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class FindSettings:
    """``[FindItemsProject]``: the pool where workers submit a link for an image."""

    pool_id: str
    event: str
    image_field: str
    link_field: str
    links_per_image: int  # accepted links an image needs before its links are compared
    accept_comment: str
    reject_comment: str


@dataclass(frozen=True, slots=True)
class VerifySettings:
    """``[FindItemsVerification]``: checkers say whether a found link matches the image."""

    pool_id: str
    skill_id: str | None
    event: str
    overlap: int
    answer_field: str
    accept_label: str
    reject_label: str
    aggregation: Literal["MajorityVote", "DawidSkene", "Wawa"]
    default_skill: float


@dataclass(frozen=True, slots=True)
class CompareSettings:
    """``[FindItemsComparison]``: comparers say which of two links fits the image better."""

    pool_id: str
    skill_id: str | None
    event: str
    overlap: int
    answer_field: str
    left_label: str
    right_label: str


@dataclass(frozen=True, slots=True)
class FindItemsConfig:
    find: FindSettings
    verify: VerifySettings
    compare: CompareSettings

    def pools(self) -> dict[str, str]:
        return {"find_items": self.find.pool_id, "verification": self.verify.pool_id, "sbs": self.compare.pool_id}


def parse(cfg: configparser.ConfigParser) -> FindItemsConfig:
    """The three sections, checked (labels differ, pools differ, numbers in range)."""
    s = "FindItemsProject"
    find = FindSettings(
        pool_id=pool_id_of(cfg, s),
        event=ini.get_choice(cfg, s, "event", EVENTS, "submitted"),
        image_field=ini.get_str(cfg, s, "image_field", "image"),
        link_field=ini.get_str(cfg, s, "link_field", "found_link"),
        links_per_image=ini.get_int(cfg, s, "links_per_image", 3, minimum=1, maximum=50),
        accept_comment=ini.get_str(cfg, s, "accept_comment", "Well done!"),
        reject_comment=ini.get_str(cfg, s, "reject_comment", "Incorrect object."),
    )
    v = "FindItemsVerification"
    accept, reject = ini.get_str(cfg, v, "accept_label", "Yes"), ini.get_str(cfg, v, "reject_label", "No")
    if accept == reject:
        raise ConfigError(v, "reject_label", f"a label different from accept_label ({accept!r})", reject)
    aggregation = ini.get_choice(cfg, v, "aggregation", METHODS, "MajorityVote")
    verify = VerifySettings(
        pool_id=pool_id_of(cfg, v),
        skill_id=optional_str(cfg, v, "skill_id"),
        event=ini.get_choice(cfg, v, "event", EVENTS, "accepted"),
        overlap=ini.get_int(cfg, v, "overlap", 3, minimum=1),
        answer_field=ini.get_str(cfg, v, "answer_field", "result"),
        accept_label=accept,
        reject_label=reject,
        aggregation=aggregation,
        default_skill=ini.get_float(cfg, v, "default_skill", 50.0, minimum=0.0, maximum=100.0),
    )
    c = "FindItemsComparison"
    left, right = ini.get_str(cfg, c, "left_label", "left"), ini.get_str(cfg, c, "right_label", "right")
    if left == right:
        raise ConfigError(c, "right_label", f"a label different from left_label ({left!r})", right)
    ini.get_choice(cfg, c, "aggregation", ("BradleyTerry",), "BradleyTerry")
    compare = CompareSettings(
        pool_id=pool_id_of(cfg, c),
        skill_id=optional_str(cfg, c, "skill_id"),
        event=ini.get_choice(cfg, c, "event", EVENTS, "accepted"),
        overlap=ini.get_int(cfg, c, "overlap", 3, minimum=1),
        answer_field=ini.get_str(cfg, c, "answer_field", "result"),
        left_label=left,
        right_label=right,
    )
    seen: dict[str, str] = {}
    for section, pool in ((s, find.pool_id), (v, verify.pool_id), (c, compare.pool_id)):
        if pool in seen:
            raise ConfigError(section, "pool_id", f"a pool id different from [{seen[pool]}] pool_id", pool)
        seen[pool] = section
    return FindItemsConfig(find, verify, compare)


# --- state (pickled into saves/: plain data only) ---------------------------------------


@dataclass
class Found:
    """A submitted find_items assignment waiting for its verification."""

    assignment_id: str
    user_id: str
    image: str
    link: str


@dataclass
class Answer:
    """One checker's or comparer's answer, kept until its task has its overlap."""

    task_id: str
    assignment_id: str
    worker: str
    label: str
    subject: str  # the find_items assignment (verification) or the image (sbs)
    left: str = ""
    right: str = ""


@dataclass
class ImageWork:
    """An image's accepted links and, once compared, its comparisons."""

    links: list[str] = field(default_factory=list)  # accepted links, in the order they came
    pairs: int = 0  # sbs tasks created (0: still collecting links)
    done: list[Answer] = field(default_factory=list)  # answers of sbs tasks that reached their overlap
    tasks_done: int = 0


@dataclass
class FindItemsState:
    found: dict[str, Found] = field(default_factory=dict)  # find_items assignment id -> work under verification
    verification: dict[str, list[Answer]] = field(default_factory=dict)  # verification task -> answers so far
    images: dict[str, ImageWork] = field(default_factory=dict)  # image -> its links and comparisons
    sbs: dict[str, list[Answer]] = field(default_factory=dict)  # sbs task -> answers so far
    ranked: set[str] = field(default_factory=set)  # images whose ranking is written (late links are ignored)
    held: dict[str, str] = field(default_factory=dict)  # unreadable assignments, kept for a person


# --- handlers -----------------------------------------------------------------------------


def stamp(now: datetime) -> str:
    return now.strftime("%Y-%m-%d %H:%M:%S")


def decision(now: datetime, image: str, link: str, assignment_id: str, pool: str, event: str,
             comment: str = "") -> dict[str, object]:
    return {"date_time": stamp(now), "image": image, "link": link, "assignment_id": assignment_id, "pool": pool,
            "event": event, "comment": comment}


def _pair(assignment: Assignment) -> tuple[Mapping[str, object], Mapping[str, object]] | None:
    pairs = [(t.input_values, s.output_values) for t, s in assignment.pairs() if s is not None]
    return pairs[0] if len(pairs) == 1 else None


def on_found(state: FindItemsState, batch: Batch, ctx: Context[FindItemsConfig]) -> Decision:
    """find_items, submitted: each new link goes to verification (unavailable to its finder)."""
    out = Decision()
    cfg = ctx.config
    for a in batch.assignments:
        if not a.id or a.id in state.found or a.id in state.held:
            continue  # re-delivered
        pair = _pair(a)
        image = str(pair[0].get(cfg.find.image_field, "")) if pair else ""
        link = pair[1].get(cfg.find.link_field) if pair else None
        if not a.user_id or a.submitted is None or not image or not isinstance(link, str) or not link.strip():
            state.held[a.id] = f"expected one task with {cfg.find.image_field!r} and a {cfg.find.link_field!r} answer"
            out.warning(f"find_items assignment {a.id} held for a person: {state.held[a.id]}")
            continue
        link = link.strip()
        state.found[a.id] = Found(a.id, a.user_id, image, link)
        out.reviewing.append(Review(a.id, "find_items", a.reward or Decimal(0), a.submitted, label=image))
        task = TaskSpec({"image": image, "found_link": link, "assignment_id": a.id}, cfg.verify.overlap, (a.user_id,))
        out.add(
            a.id,
            CreateTasks(cfg.verify.pool_id, operation_uuid("verification", a.id), (task,)),
            AppendRows("decisions", f"{a.id}/found", (
                decision(ctx.now, image, link, a.id, "find_items", FOUND),
                decision(ctx.now, image, link, a.id, "find_items", TO_VERIFICATION),
            )),
        )
    return out


def on_verified(state: FindItemsState, batch: Batch, ctx: Context[FindItemsConfig]) -> Decision:
    """verification, accepted: once a link has its answers, accept or reject the find_items assignment."""
    out = Decision()
    cfg = ctx.config.verify
    for a in batch.assignments:
        for task, solution in a.pairs():
            if task.is_golden or not task.id or solution is None or not a.id or not a.user_id:
                continue
            subject = str(task.input_values.get("assignment_id", ""))
            if subject not in state.found:
                continue  # decided already, or not ours
            label = solution.output_values.get(cfg.answer_field)
            if label not in (cfg.accept_label, cfg.reject_label):
                out.warning(f"verification assignment {a.id}: {cfg.answer_field}={label!r} ignored")
                continue
            answers = state.verification.setdefault(task.id, [])
            if all(x.assignment_id != a.id for x in answers):
                answers.append(Answer(task.id, a.id, a.user_id, str(label), subject))
    for task_id in [t for t, answers in state.verification.items() if answers[0].subject not in state.found]:
        del state.verification[task_id]
    complete = {t: answers for t, answers in state.verification.items() if len(answers) >= cfg.overlap}
    for task_id in complete:
        del state.verification[task_id]
    votes = [Vote(x.task_id, x.worker, x.label) for answers in complete.values() for x in answers]
    results = aggregate(votes, cfg.aggregation, skills=batch.skills, default_skill=cfg.default_skill,
                        tie_label=cfg.reject_label)
    for task_id in sorted(complete):
        answers = complete[task_id]
        found = state.found.pop(answers[0].subject)
        verdict = results[task_id]
        good = verdict.label == cfg.accept_label
        find = ctx.config.find
        comment = find.accept_comment if good else find.reject_comment
        event = ACCEPT if good else REJECT
        overtaken = AppendRows("decisions", f"{found.assignment_id}/auto-accepted", (
            decision(ctx.now, found.image, found.link, found.assignment_id, "verification", AUTO_ACCEPTED,
                     f"wanted {'ACCEPTED' if good else 'REJECTED'}: {comment}"),))
        out.add(
            found.assignment_id,
            AppendRows("answers", f"{found.assignment_id}/verification", tuple(
                {"date_time": stamp(ctx.now), "pool": "verification", "pool_id": cfg.pool_id, "task": task_id,
                 "assignment_id": x.assignment_id, "worker": x.worker, "label": x.label,
                 "skill": batch.skills.get(x.worker, cfg.default_skill), "result": verdict.label,
                 "subject": found.assignment_id} for x in answers)),
            SetStatus(found.assignment_id, "ACCEPTED" if good else "REJECTED", comment, if_overtaken=overtaken),
            AppendRows("verified_links", found.assignment_id, ({
                "image": found.image, "link": found.link, "worker": found.user_id, "verdict": verdict.label,
                "confidence": verdict.confidence, "assignment_id": found.assignment_id},)),
            AppendRows("decisions", f"{found.assignment_id}/final", (
                decision(ctx.now, found.image, found.link, found.assignment_id, "verification", event,
                         f"{verdict.label} ({verdict.confidence})"),)),
        )
        out.decided += 1
        out.info(f"{found.assignment_id} {'accepted' if good else 'rejected'}: {found.link} for {found.image}")
    return out


def on_accepted(state: FindItemsState, batch: Batch, ctx: Context[FindItemsConfig]) -> Decision:
    """find_items, accepted: collect links per image; an image with enough of them gets its comparisons."""
    out = Decision()
    cfg = ctx.config
    ready: list[str] = []
    for a in batch.assignments:
        pair = _pair(a)
        if pair is None or not a.id:
            continue
        image = str(pair[0].get(cfg.find.image_field, ""))
        link = pair[1].get(cfg.find.link_field)
        if not image or not isinstance(link, str) or not link.strip() or image in state.ranked:
            continue
        work = state.images.setdefault(image, ImageWork())
        if work.pairs:
            continue  # its comparisons are under way: a late link does not change them
        work.links.append(link.strip())
        if len(work.links) >= cfg.find.links_per_image and image not in ready:
            ready.append(image)
    for image in ready:
        work = state.images[image]
        links = sorted(set(work.links))
        pairs = list(itertools.combinations(links, 2))
        comment = f"{len(links)} distinct links, {len(pairs)} pairs"
        rows = [decision(ctx.now, image, "", "", "find_items", TO_COMPARISON, comment)]
        if not pairs:  # one distinct link: nothing to compare, it ranks first
            out.add(image, AppendRows("decisions", f"{image}/to-comparison", tuple(rows)),
                    *_ranking(state, image, [], links, ctx.now))
            continue
        work.pairs = len(pairs)
        tasks = tuple(TaskSpec({"image": image, "left_link": left, "right_link": right}, cfg.compare.overlap)
                      for left, right in pairs)
        out.add(image, CreateTasks(cfg.compare.pool_id, operation_uuid("sbs", image), tasks),
                AppendRows("decisions", f"{image}/to-comparison", tuple(rows)))
    return out


def on_compared(state: FindItemsState, batch: Batch, ctx: Context[FindItemsConfig]) -> Decision:
    """sbs, accepted: once every pair of an image has its answers, rank its links with BradleyTerry."""
    out = Decision()
    cfg = ctx.config.compare
    for a in batch.assignments:
        for task, solution in a.pairs():
            if task.is_golden or not task.id or solution is None or not a.id or not a.user_id:
                continue
            values = task.input_values
            image, left, right = (str(values.get(k, "")) for k in ("image", "left_link", "right_link"))
            work = state.images.get(image)
            if work is None or not work.pairs or any(x.task_id == task.id for x in work.done):
                continue  # not ours, or that pair is judged already
            label = solution.output_values.get(cfg.answer_field)
            if label not in (cfg.left_label, cfg.right_label):
                out.warning(f"sbs assignment {a.id}: {cfg.answer_field}={label!r} ignored")
                continue
            answers = state.sbs.setdefault(task.id, [])
            if all(x.assignment_id != a.id for x in answers):
                answers.append(Answer(task.id, a.id, a.user_id, str(label), image, left, right))
    touched: list[str] = []
    for task_id in sorted(t for t, answers in state.sbs.items() if len(answers) >= cfg.overlap):
        answers = state.sbs.pop(task_id)
        work = state.images.get(answers[0].subject)
        if work is None:
            continue
        work.done.extend(answers)
        work.tasks_done += 1
        if answers[0].subject not in touched:
            touched.append(answers[0].subject)
    for image in touched:
        work = state.images[image]
        if work.tasks_done < work.pairs:
            continue
        comparisons = [Comparison(x.worker, x.left, x.right, x.left if x.label == cfg.left_label else x.right)
                       for x in work.done]
        out.add(image, *_ranking(state, image, comparisons, sorted(set(work.links)), ctx.now))
    return out


def _ranking(state: FindItemsState, image: str, comparisons: Sequence[Comparison], links: Sequence[str],
             now: datetime) -> list[AppendRows]:
    """The image's ranking rows and its decision; the image leaves the state."""
    ranked = rank(comparisons, links)
    state.images.pop(image, None)
    state.ranked.add(image)
    return [
        AppendRows("rankings", image, tuple({"image": image, "link": r.item, "score": r.score, "rank": r.rank}
                                            for r in ranked)),
        AppendRows("decisions", f"{image}/ranked", (
            decision(now, image, ranked[0].item if ranked else "", "", "sbs", RANKED,
                     f"{len(ranked)} links, {len(comparisons)} answers"),)),
    ]


# --- the declaration ----------------------------------------------------------------------


def _tables(config: FindItemsConfig) -> Mapping[str, TableSpec]:
    """Each table's key names one fact (no time, no confidence), so a start from scratch doubles nothing."""
    return {
        "decisions": TableSpec("logs", "decisions.tsv", DECISION_COLUMNS,
                               key=("image", "link", "assignment_id", "pool", "event")),
        "answers": TableSpec("logs", "answers.tsv", ANSWER_COLUMNS,
                             key=("pool", "pool_id", "task", "assignment_id", "worker")),
        "verified_links": TableSpec("results", "verified_links.tsv", VERIFIED_COLUMNS, key=("assignment_id",)),
        "rankings": TableSpec("results", "rankings.tsv", RANKING_COLUMNS, key=("image", "link")),
    }


def gauges(state: FindItemsState) -> dict[str, dict[str, int]]:
    """Per pool: answers waiting for their task's overlap, and units waiting for that pool."""
    comparing = [w for w in state.images.values() if w.pairs]
    return {
        "find_items": {"answers_waiting": 0, "groups_waiting": len(state.found)},
        "verification": {"answers_waiting": sum(len(x) for x in state.verification.values()),
                         "groups_waiting": len(state.found)},
        "sbs": {"answers_waiting": sum(len(x) for x in state.sbs.values()), "groups_waiting": len(comparing)},
    }


def _pools(config: FindItemsConfig) -> Mapping[str, str]:
    return config.pools()


def _in_progress(state: FindItemsState) -> int:
    return len(state.found) + sum(1 for w in state.images.values() if w.pairs)


def _held(state: FindItemsState) -> int:
    return len(state.held)


def expected_pools(config: FindItemsConfig) -> dict[str, PoolExpectation]:
    """What each pool's project must declare (``pipeline.py check`` and start-up compare it with Toloka)."""
    f, v, c = config.find, config.verify, config.compare
    return {
        "find_items": PoolExpectation(
            "FindItemsProject", reads=(f.image_field,), reviewed=f.event == "submitted",
            outputs=(OutputField(f.link_field, keys="[FindItemsProject] link_field"),)),
        "verification": PoolExpectation(
            "FindItemsVerification", sends=("image", "found_link", "assignment_id"), reviewed=v.event == "submitted",
            outputs=(OutputField(v.answer_field, (v.accept_label, v.reject_label),
                                 keys="[FindItemsVerification] answer_field, accept_label, reject_label"),)),
        "sbs": PoolExpectation(
            "FindItemsComparison", sends=("image", "left_link", "right_link"), reviewed=c.event == "submitted",
            outputs=(OutputField(c.answer_field, (c.left_label, c.right_label),
                                 keys="[FindItemsComparison] answer_field, left_label, right_label"),)),
    }


FIND_ITEMS: PipelineSpec[FindItemsConfig, FindItemsState] = PipelineSpec(
    name="find_items",
    title="workers find a product link for an image; checkers verify it; comparers rank the links side by side",
    sections=SECTIONS,
    parse_config=parse,
    pools=_pools,
    observers=(
        ObserverSpec("find_items", event=lambda c: c.find.event, handler=on_found),
        ObserverSpec("verification", event=lambda c: c.verify.event, handler=on_verified,
                     skill_id=lambda c: c.verify.skill_id),
        ObserverSpec("find_items", event=lambda c: "accepted", handler=on_accepted, name="find_items:accepted"),
        ObserverSpec("sbs", event=lambda c: c.compare.event, handler=on_compared,
                     skill_id=lambda c: c.compare.skill_id),
    ),
    new_state=FindItemsState,
    tables=_tables,
    state_packages=("pipelines.find_items",),
    decision_log=DecisionLog(table="decisions", pool_column="pool", event_column="event",
                             subject_column="assignment_id", label_column="image", comment_column="comment",
                             start_event=FOUND, final_events=(ACCEPT, REJECT),
                             timeline_events=(FOUND, ACCEPT, REJECT, RANKED)),
    funnel=(
        FunnelStage("found", FOUND),
        FunnelStage("verified", ACCEPT),
        FunnelStage("rejected", REJECT),
    ),
    gauges=gauges,
    in_progress=_in_progress,
    held_for_a_person=_held,
    outcomes=(Outcome("verified", ACCEPT), Outcome("rejected", REJECT)),
    answer_log=AnswerLog("answers", pool_column="pool", worker_column="worker", label_column="label",
                         result_column="result"),
    report_charts=(
        CountChart("verdicts", "Verdicts on found links", table="verified_links", column="verdict", unit="links"),
    ),
    expected_pools=expected_pools,
    prepare=lambda config: preload(),  # its verification and ranking always use crowd-kit
    trace=TRACE,
)
