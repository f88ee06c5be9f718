"""Does each pool's project take what the pipeline sends and give what it reads?

A pipeline declares, per pool, a :class:`PoolExpectation` (``PipelineSpec.expected_pools``):
the input fields of the tasks it creates there, the input fields it reads from
tasks others created, the output fields it reads with the labels it tells
apart, and whether it reviews the pool's submitted work itself. This module
compares that with the pool and its project as Toloka returns them, and says
in words what does not fit, naming the ``toloka.ini`` section and key to fix.

Rules, in the order they are checked:

1. every input field the pipeline sends exists in the project's ``input_spec``
   (Toloka refuses a task with a field its project does not declare), and
   every field the spec marks required is one the pipeline always sends;
2. every input field the pipeline reads from tasks made elsewhere exists;
3. every output field it reads exists in the ``output_spec``; for an answer
   with labels, the field must list ``allowed_values``, and they must be the
   labels (``exact``) or include them. Listing them is what lets a checker
   submit only a label the pipeline knows, and what tells two checking
   projects with the same inputs apart (quality ok/bad, relevance
   relevant/not_relevant), so swapped pool ids are caught;
4. a pool whose submitted work the pipeline reviews must not accept work by
   itself (``auto_accept_solutions``), and a pool read as accepted must.

When a pool does not fit but its project fits what another pool of the same
pipeline expects, the message asks whether the two pool ids are swapped.
Comparing is pure; :func:`check_pool_specs` does the reading (GET only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError
from common.ini import one_error
from toloka_client.client import TolokaClient
from toloka_client.errors import TolokaError


@dataclass(frozen=True, slots=True)
class OutputField:
    """An output field the pipeline reads; ``labels``: the values it tells apart (empty: any value).

    ``exact``: the field must allow exactly ``labels`` (an answer outside them
    could not be decided); otherwise it must allow at least them. ``keys``: the
    INI keys that name the field and its labels (``"[Section] key, key"``), for the message.
    """

    name: str
    labels: tuple[str, ...] = ()
    exact: bool = True
    keys: str = ""


@dataclass(frozen=True, slots=True)
class PoolExpectation:
    """What the pipeline needs of one pool and its project (see the module docstring)."""

    section: str  # the INI section whose pool_id names the pool
    sends: tuple[str, ...] = ()  # input fields of every task the pipeline creates in the pool
    may_send: tuple[str, ...] = ()  # input fields it sends when it has them (never required by the spec)
    reads: tuple[str, ...] = ()  # input fields it reads from tasks others created
    outputs: tuple[OutputField, ...] = ()
    reviewed: bool = False  # the pipeline accepts/rejects submitted work itself; False: it reads accepted work
    event_key: str = "event"  # the INI key that says which event is read


@dataclass(frozen=True, slots=True)
class PoolReport:
    """One pool's verdict: ``problems`` empty when it fits; ``hint`` may name a likely swap."""

    name: str
    pool_id: str
    section: str
    problems: tuple[str, ...]
    hint: str = ""
    status: str = ""  # the pool's status (OPEN, CLOSED, ...), when it was read

    @property
    def ok(self) -> bool:
        return not self.problems

    def line(self) -> str:
        """``[Section] pool_id = 3: problem; problem — hint`` (or what fits)."""
        head = f"[{self.section}] pool_id = {self.pool_id}"
        if self.ok:
            shown = f" ({self.status})" if self.status else ""
            return f"{head}: the {self.name} pool{shown} and its project fit the pipeline"
        return f"{head}: " + "; ".join(self.problems) + (f" — {self.hint}" if self.hint else "")


class PoolSpecError(ConfigError):
    """A pool or its project does not fit the pipeline (section and key ``pool_id`` named)."""

    def __init__(self, report: PoolReport, file: str = "toloka.ini") -> None:
        self.report = report
        self.file = file
        self.section = report.section
        self.key = "pool_id"
        self.expected = "a pool whose project fits the pipeline"
        self.found = report.pool_id
        Exception.__init__(self, f"{file} {report.line()}")

    def __reduce__(self) -> tuple[type[PoolSpecError], tuple[PoolReport, str]]:
        return (type(self), (self.report, self.file))


def _fields(project: Mapping[str, Any], which: str) -> dict[str, Mapping[str, Any]]:
    spec = project.get("task_spec")
    fields = spec.get(which) if isinstance(spec, Mapping) else None
    if not isinstance(fields, Mapping):
        return {}
    return {str(name): (value if isinstance(value, Mapping) else {}) for name, value in fields.items()}


def _names(names: Sequence[str]) -> str:
    return ", ".join(repr(n) for n in names)


def _labels(values: Sequence[object]) -> str:
    return "/".join(str(v) for v in values)


def compare(expected: PoolExpectation, project: Mapping[str, Any], pool: Mapping[str, Any]) -> list[str]:
    """What in ``project`` (its JSON) and ``pool`` (its JSON) does not fit ``expected``; empty: it fits."""
    problems: list[str] = []
    inputs = _fields(project, "input_spec")
    outputs = _fields(project, "output_spec")
    if not inputs and not outputs:
        return ["the pool's project has no task_spec (no input or output fields)"]
    sent = list(dict.fromkeys((*expected.sends, *expected.may_send)))
    lacking = [name for name in sent if name not in inputs]
    if lacking:
        problems.append(f"the project has no input field {_names(lacking)}, which the pipeline sends in its tasks")
    if sent:
        required = [name for name, spec in inputs.items()
                    if spec.get("required", True) is not False and name not in expected.sends]
        if required:
            problems.append(f"the project requires input field {_names(required)}, which the pipeline does not send")
    unread = [name for name in expected.reads if name not in inputs]
    if unread:
        problems.append(f"the project has no input field {_names(unread)}, which the pipeline reads")
    for out in expected.outputs:
        problem = _output_problem(out, outputs)
        if problem:
            problems.append(problem)
    auto = pool.get("auto_accept_solutions")
    if expected.reviewed and auto is True:
        problems.append(f"the pool accepts work by itself (auto_accept_solutions), but the pipeline reviews it "
                        f"([{expected.section}] {expected.event_key} = submitted)")
    if not expected.reviewed and auto is not True:
        problems.append(f"the pool does not accept work by itself (auto_accept_solutions is {auto}), but the "
                        f"pipeline reads accepted work ([{expected.section}] {expected.event_key} = accepted)")
    return problems


def _output_problem(out: OutputField, outputs: Mapping[str, Mapping[str, Any]]) -> str | None:
    keys = f" ({out.keys})" if out.keys else ""
    spec = outputs.get(out.name)
    if spec is None:
        return f"the project has no output field {out.name!r}{keys}"
    if not out.labels:
        return None
    allowed = spec.get("allowed_values")
    wanted = _labels(out.labels)
    if not isinstance(allowed, list) or not allowed:
        return f"the project's output field {out.name!r} lists no allowed values, expected {wanted}{keys}"
    allowed_set = {str(v) for v in allowed}
    fits = allowed_set == set(out.labels) if out.exact else set(out.labels) <= allowed_set
    if fits:
        return None
    return f"the project has output field {out.name!r} with labels {_labels(allowed)}, expected {wanted}{keys}"


def reports(
    expected: Mapping[str, PoolExpectation],
    pool_ids: Mapping[str, str],
    projects: Mapping[str, Mapping[str, Any]],
    pools: Mapping[str, Mapping[str, Any]],
) -> list[PoolReport]:
    """One report per pool in ``projects`` (pool name -> its project's and its own JSON), swap hints included."""
    found: dict[str, PoolReport] = {}
    for name, project in projects.items():
        want = expected[name]
        found[name] = PoolReport(name, pool_ids[name], want.section, tuple(compare(want, project, pools[name])),
                                 status=str(pools[name].get("status") or ""))
    for name, report in found.items():
        if report.ok:
            continue
        for other, want in expected.items():
            if other == name or other not in projects:
                continue
            # Only the spec is compared here: the pools' own settings may be swapped along with them.
            if not _spec_problems(want, projects[name]) and _spec_problems(want, projects[other]):
                found[name] = dataclasses.replace(
                    report, hint=f"its project is what [{want.section}] expects: are the {name} and {other} pool ids "
                                 "swapped?")
                break
    return [found[name] for name in projects]


def _spec_problems(expected: PoolExpectation, project: Mapping[str, Any]) -> list[str]:
    """``compare`` without the pool's own settings."""
    neutral = {"auto_accept_solutions": not expected.reviewed}
    return compare(expected, project, neutral)


async def check_pool_specs(
    client: TolokaClient, expected: Mapping[str, PoolExpectation], pool_ids: Mapping[str, str]
) -> list[PoolReport]:
    """Read every expected pool and its project (GET only) and compare; a pool that cannot be read is a problem."""
    projects: dict[str, Mapping[str, Any]] = {}
    pools: dict[str, Mapping[str, Any]] = {}
    unreadable: dict[str, PoolReport] = {}
    for name, want in expected.items():
        pool_id = pool_ids[name]
        try:
            pool = await client.get_pool(pool_id)
            if not pool.project_id:
                raise ValueError("the pool names no project")
            project = await client.get_project(pool.project_id)
        except (TolokaError, ValueError) as exc:
            if isinstance(exc, TolokaError) and exc.retryable:
                raise  # Toloka cannot answer right now (5xx, 429, a timeout): not a wrong pool id
            unreadable[name] = PoolReport(name, pool_id, want.section, (f"cannot read the pool or its project: {exc}",))
            continue
        projects[name] = {**project.extra, "id": project.id}
        pools[name] = {"auto_accept_solutions": pool.auto_accept_solutions, "status": pool.status, **pool.extra}
    compared = {r.name: r for r in reports(expected, pool_ids, projects, pools)}
    return [unreadable.get(name) or compared[name] for name in expected]


def raise_on_mismatch(found: Sequence[PoolReport], file: str = "toloka.ini") -> None:
    """Raise the :class:`PoolSpecError` of every pool that does not fit (together, as ConfigErrors).

    ``file``: the configuration file's name, as the lines name it.
    """
    errors: list[ConfigError] = [PoolSpecError(report, file) for report in found if not report.ok]
    if errors:
        raise one_error(errors)
