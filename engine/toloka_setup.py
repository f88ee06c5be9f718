"""``python pipeline.py setup``: create a pipeline's projects, skills and pools on Toloka, once.

A pipeline declares what it needs as a :class:`SetupPlan` (its ``toloka_setup``
hook, in ``pipelines/``): the projects with their task specs and interfaces,
the skills, and the pools with their settings, plus the ``toloka.ini`` key that
receives each id. :func:`apply_plan` makes what is missing and finds what a
previous run made.

Idempotent and crash-safe without any local state: every object carries a
marker in its ``private_comment`` (``pipeline.py setup <name>/<key>``) and is
looked up by it before anything is created (projects by listing the account's
projects, pools by listing each project's pools, skills by their name). A run
killed between two creations leaves objects the next run finds; a create whose
answer was lost is not repeated by the client (it is not safe to repeat), so the
next run finds that object too. The searches may show a new object a moment
late (the API is eventually consistent): a rerun right after a crash should
wait a few seconds.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from common.errors import PipelineError
from toloka_client.client import TolokaClient, operation_id_for
from toloka_client.records import Pool, Record

MARKER_PREFIX = "pipeline.py setup"


@dataclass(frozen=True)
class SetupRequest:
    """What the person running ``setup`` chose: the deployment's name, rewards, control tasks."""

    name: str  # tells two deployments on one account apart (it is in every marker)
    now: datetime  # naive UTC; pools expire a year after it
    rewards: Mapping[str, Decimal] = field(default_factory=dict)  # pool key -> reward per assignment
    control_pools: frozenset[str] = frozenset()  # pools given control tasks: their suites mix them in


@dataclass(frozen=True)
class ProjectPlan:
    """A project: ``doc`` is the ``POST /projects`` body without ``private_comment`` (the marker)."""

    key: str
    doc: Mapping[str, Any]


@dataclass(frozen=True)
class SkillPlan:
    """A skill, and the ``toloka.ini`` key that receives its id."""

    key: str
    name: str
    doc: Mapping[str, Any]
    section: str
    ini_key: str = "skill_id"


@dataclass(frozen=True)
class PoolPlan:
    """A pool of project ``project``: ``build(project_id, skill ids by key)`` is its ``POST /pools``
    body without ``private_comment``; ``section``/``ini_key`` receive its id."""

    key: str
    project: str
    build: Callable[[str, Mapping[str, str]], Mapping[str, Any]]
    section: str
    ini_key: str = "pool_id"
    control_field: str | None = None  # the output field a control task's known answer fills (None: no control)


@dataclass(frozen=True)
class ControlTask:
    """A control task from ``--control``: a task input of pool ``pool`` and the answer a careful worker gives."""

    pool: str
    input_values: Mapping[str, Any]
    answer: str
    line: int  # in the file, for messages

    def identity(self) -> str:
        """What makes two control tasks the same (the input and the answer), as canonical JSON."""
        return json.dumps([self.input_values, self.answer], sort_keys=True, ensure_ascii=False)


@dataclass(frozen=True)
class SetupPlan:
    """Everything a pipeline needs on Toloka, made in this order: projects, skills, pools."""

    projects: tuple[ProjectPlan, ...]
    skills: tuple[SkillPlan, ...]
    pools: tuple[PoolPlan, ...]

    def check(self) -> None:
        """Refuse a malformed plan (a programming error): repeated keys, a pool of no project."""
        for kind, keys in (("project", [p.key for p in self.projects]), ("skill", [s.key for s in self.skills]),
                           ("pool", [p.key for p in self.pools])):
            if len(set(keys)) != len(keys):
                raise ValueError(f"setup plan: repeated {kind} keys {keys}")
        projects = {p.key for p in self.projects}
        for pool in self.pools:
            if pool.project not in projects:
                raise ValueError(f"setup plan: pool {pool.key} belongs to no project ({pool.project})")


Kind = Literal["project", "skill", "pool", "control tasks"]


@dataclass(frozen=True)
class Made:
    """One object of the plan on Toloka: found (made by an earlier run) or created now."""

    kind: Kind
    key: str
    id: str
    created: bool
    section: str = ""  # the toloka.ini section and key that receive the id (projects: none)
    ini_key: str = ""
    differs: tuple[str, ...] = ()  # settings of a found pool that are not what the plan asks for now

    def line(self) -> str:
        """One line for the person running setup."""
        verb = "created" if self.created else "found"
        where = f" -> [{self.section}] {self.ini_key}" if self.section else ""
        note = (f" (its {', '.join(self.differs)} differ from what setup would make now: setup changes "
                f"nothing it made before; change them in Toloka, or pass another --name to make new ones)"
                ) if self.differs else ""
        return f"{verb} {self.kind} {self.key}: {self.id}{where}{note}"


#: Pool settings compared between a found pool and the plan (the ones that change how work flows).
COMPARED = ("auto_accept_solutions", "auto_accept_period_day", "defaults", "mixer_config", "quality_control")


def _differs(found: Pool, wanted: Mapping[str, Any]) -> tuple[str, ...]:
    """The :data:`COMPARED` settings of ``wanted`` that ``found`` holds with another value."""
    differ = []
    for key in COMPARED:
        if key not in wanted:
            continue
        have = getattr(found, key) if key in ("auto_accept_solutions", "auto_accept_period_day") else (
            found.defaults if key == "defaults" else found.extra.get(key))
        if not _covers(have, wanted[key]):
            differ.append(key)
    return tuple(differ)


def _covers(have: object, want: object) -> bool:
    """Whether ``have`` holds every value of ``want`` (Toloka may add fields of its own; numbers by value)."""
    if isinstance(want, Mapping):
        return isinstance(have, Mapping) and all(k in have and _covers(have[k], v) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, (list, tuple)) and len(have) == len(want)
                and all(_covers(h, w) for h, w in zip(have, want, strict=True)))
    if isinstance(want, bool) or isinstance(have, bool):
        return have is want
    if isinstance(want, (int, float, Decimal)) and isinstance(have, (int, float, Decimal)):
        return Decimal(str(have)) == Decimal(str(want))
    return have == want


def marker(name: str, key: str) -> str:
    """The ``private_comment`` that identifies an object of deployment ``name``."""
    return f"{MARKER_PREFIX} {name}/{key}"


def _marked(record: Record, wanted: str) -> bool:
    return record.extra.get("private_comment") == wanted


def read_control_tasks(path: Path, plan: SetupPlan) -> tuple[list[ControlTask], list[str]]:
    """Control tasks from a TSV file: a ``pool`` column (a pool that takes control tasks), an
    ``answer`` column (one of that pool's answer labels) and one column per task input of its
    project (a list input: its values separated by spaces; empty cells are left out).

    Returns the tasks and every problem found, one line each naming the file and line.
    """
    try:
        with path.open(encoding="utf-8", newline="") as handle:
            rows = list(csv.reader(handle, delimiter="\t"))
    except (OSError, UnicodeDecodeError) as exc:
        return [], [f"{path}: cannot read it ({getattr(exc, 'strerror', None) or exc})"]
    if not rows or "pool" not in rows[0] or "answer" not in rows[0]:
        return [], [f"{path} line 1: expected a header with the columns pool and answer (tab-separated)"]
    header = [name.strip() for name in rows[0]]
    problems: list[str] = []
    tasks: list[ControlTask] = []
    seen: dict[str, int] = {}
    for number, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) > len(header):
            problems.append(f"{path} line {number}: {len(row)} cells, the header has {len(header)}")
            continue
        cells = {name: (row[i].strip() if i < len(row) else "") for i, name in enumerate(header)}
        task = _control_row(plan, cells, number)
        if isinstance(task, str):
            problems.append(f"{path} line {number}: {task}")
        elif task.identity() in seen:
            problems.append(f"{path} line {number}: the same control task as line {seen[task.identity()]}")
        else:
            seen[task.identity()] = number
            tasks.append(task)
    return tasks, problems


def _control_row(plan: SetupPlan, cells: dict[str, str], number: int) -> ControlTask | str:
    """One row of the control file as a task, or what is wrong with it."""
    outputs = {p.key: p for p in plan.pools if p.control_field is not None}
    pool = cells.pop("pool")
    answer = cells.pop("answer")
    if pool not in outputs:
        return f"pool {pool!r} takes no control tasks (one of {', '.join(outputs)})"
    task_spec = next(p.doc for p in plan.projects if p.key == outputs[pool].project)["task_spec"]
    allowed = task_spec["output_spec"][outputs[pool].control_field].get("allowed_values") or []
    if answer not in allowed:
        return f"answer {answer!r} is not one of {', '.join(allowed)}"
    inputs: dict[str, Any] = {}
    wrong = []
    for name, value in cells.items():
        spec = task_spec["input_spec"].get(name)
        if spec is None:
            if value:
                wrong.append(f"{name} is not an input of the {pool} project")
        elif value:
            inputs[name] = value.split() if str(spec.get("type", "")).startswith("array_") else value
    missing = [name for name, spec in task_spec["input_spec"].items()
               if spec.get("required", True) and name not in inputs]
    if missing:
        wrong.append(f"required inputs are empty: {', '.join(missing)}")
    return "; ".join(wrong) if wrong else ControlTask(pool, inputs, answer, number)


async def _add_controls(client: TolokaClient, plan: SetupPlan, name: str, pool_ids: Mapping[str, str],
                        controls: Sequence[ControlTask], settle: Callable[[Made], None]) -> None:
    """Create the control tasks the pools do not hold yet (matched by input and answer)."""
    for pool in plan.pools:
        mine = [c for c in controls if c.pool == pool.key]
        if not mine or pool.control_field is None:
            continue
        pool_id = pool_ids[pool.key]
        held = set()
        async for task in client.iter_tasks(pool_id):
            for known in task.known_solutions:
                answer = (known.get("output_values") or {}).get(pool.control_field)
                held.add(json.dumps([dict(task.input_values), answer], sort_keys=True, ensure_ascii=False))
        missing = [c for c in mine if c.identity() not in held]
        if missing:
            # One operation per set of missing tasks *in this pool*: a rerun after a lost answer resumes it,
            # and a pool made anew (the old one archived) gets its own, not the old pool's finished one.
            operation = operation_id_for("setup-control", name, pool.key, pool_id,
                                         *sorted(c.identity() for c in missing))
            docs = [{"pool_id": pool_id, "input_values": dict(c.input_values), "infinite_overlap": True,
                     "known_solutions": [{"output_values": {pool.control_field: c.answer},
                                          "correctness_weight": 1}]} for c in missing]
            result = await client.create_tasks(docs, operation_id=operation, skip_invalid_items=False)
            if result.validation_errors:
                index, why = next(iter(result.validation_errors.items()))
                raise PipelineError(f"Toloka refused the control task of line {missing[index].line}: {dict(why)}")
            landed = [t for t in result.created if t.pool_id == pool_id]
            if len(landed) != len(missing):
                raise PipelineError(f"control tasks of pool {pool.key}: {len(missing)} sent, {len(landed)} in pool "
                                    f"{pool_id} (operation {operation}); nothing else was changed")
        settle(Made("control tasks", pool.key, f"{len(mine)} in pool {pool_id}", bool(missing)))


async def apply_plan(client: TolokaClient, plan: SetupPlan, name: str,
                     report: Callable[[Made], None] = lambda made: None,
                     controls: Sequence[ControlTask] = ()) -> list[Made]:
    """Find or create every object of ``plan`` (and the ``controls``); ``report`` hears of each as soon
    as it is settled.

    Objects are matched by their marker only (never by position or name alone), so
    a person's own projects and pools are never picked up or changed.
    """
    plan.check()
    made: list[Made] = []

    def settle(item: Made) -> None:
        made.append(item)
        report(item)

    projects = {p.extra.get("private_comment"): p for p in await client.find_projects(status="ACTIVE")}
    project_ids: dict[str, str] = {}
    for project in plan.projects:
        tag = marker(name, project.key)
        found = projects.get(tag)
        if found is not None and found.id:
            project_ids[project.key] = found.id
            have = found.extra.get("task_spec") or {}
            want = project.doc.get("task_spec") or {}
            differ = tuple(part for part in ("input_spec", "output_spec")
                           if part in want and not _covers(have.get(part), want[part]))
            settle(Made("project", project.key, found.id, False, differs=differ))
            continue
        new = await client.create_project({**project.doc, "private_comment": tag})
        project_ids[project.key] = str(new.id)
        settle(Made("project", project.key, str(new.id), True))

    skill_ids: dict[str, str] = {}
    for skill in plan.skills:
        tag = marker(name, skill.key)
        same = [s for s in await client.find_skills(name=skill.name) if _marked(s, tag) and s.id]
        if same:
            skill_ids[skill.key] = str(same[0].id)
            settle(Made("skill", skill.key, skill_ids[skill.key], False, skill.section, skill.ini_key))
            continue
        new_skill = await client.create_skill({**skill.doc, "name": skill.name, "private_comment": tag})
        skill_ids[skill.key] = str(new_skill.id)
        settle(Made("skill", skill.key, skill_ids[skill.key], True, skill.section, skill.ini_key))

    pool_ids: dict[str, str] = {}
    for pool in plan.pools:
        tag = marker(name, pool.key)
        project_id = project_ids[pool.project]
        live = [p for p in await client.find_all_pools(project_id)
                if _marked(p, tag) and p.id and p.status != "ARCHIVED"]
        doc = {**pool.build(project_id, skill_ids), "project_id": project_id, "private_comment": tag}
        if live:
            pool_ids[pool.key] = str(live[0].id)
            settle(Made("pool", pool.key, pool_ids[pool.key], False, pool.section, pool.ini_key,
                        _differs(live[0], doc)))
            continue
        new_pool = await client.create_pool(doc)
        pool_ids[pool.key] = str(new_pool.id)
        settle(Made("pool", pool.key, pool_ids[pool.key], True, pool.section, pool.ini_key))
    await _add_controls(client, plan, name, pool_ids, controls, settle)
    return made
