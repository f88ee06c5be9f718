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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, Literal

from toloka_client.client import TolokaClient
from toloka_client.records import Record

MARKER_PREFIX = "pipeline.py setup"


@dataclass(frozen=True)
class SetupRequest:
    """What the person running ``setup`` chose: the deployment's name, rewards, control tasks."""

    name: str  # tells two deployments on one account apart (it is in every marker)
    now: datetime  # naive UTC; pools expire a year after it
    rewards: Mapping[str, Decimal] = field(default_factory=dict)  # pool key -> reward per assignment
    control_per_suite: int = 0  # control tasks mixed into each checking task suite (0: none)


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


Kind = Literal["project", "skill", "pool"]


@dataclass(frozen=True)
class Made:
    """One object of the plan on Toloka: found (made by an earlier run) or created now."""

    kind: Kind
    key: str
    id: str
    created: bool
    section: str = ""  # the toloka.ini section and key that receive the id (projects: none)
    ini_key: str = ""

    def line(self) -> str:
        """One line for the person running setup."""
        verb = "created" if self.created else "found"
        where = f" -> [{self.section}] {self.ini_key}" if self.section else ""
        return f"{verb} {self.kind} {self.key}: {self.id}{where}"


def marker(name: str, key: str) -> str:
    """The ``private_comment`` that identifies an object of deployment ``name``."""
    return f"{MARKER_PREFIX} {name}/{key}"


def _marked(record: Record, wanted: str) -> bool:
    return record.extra.get("private_comment") == wanted


async def apply_plan(client: TolokaClient, plan: SetupPlan, name: str,
                     report: Callable[[Made], None] = lambda made: None) -> list[Made]:
    """Find or create every object of ``plan``; ``report`` hears of each as soon as it is settled.

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
            settle(Made("project", project.key, found.id, False))
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

    for pool in plan.pools:
        tag = marker(name, pool.key)
        project_id = project_ids[pool.project]
        live = [p for p in await client.find_all_pools(project_id)
                if _marked(p, tag) and p.id and p.status != "ARCHIVED"]
        if live:
            settle(Made("pool", pool.key, str(live[0].id), False, pool.section, pool.ini_key))
            continue
        doc = {**pool.build(project_id, skill_ids), "project_id": project_id, "private_comment": tag}
        new_pool = await client.create_pool(doc)
        settle(Made("pool", pool.key, str(new_pool.id), True, pool.section, pool.ini_key))
    return made
