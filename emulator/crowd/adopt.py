"""The crowd-only mode: the scenario's crowd works in pools a requester made through the API.

With ``python -m emulator --scenario demo --crowd-only`` the emulator creates no project,
pool or task; the scenario brings only its workers and its organizations (with their truth).
A requester (``python pipeline.py setup`` and ``add``, or any client) makes the rest, and the
crowd adopts it:

- an OPEN pool is recognised by its project's output spec alone, never by names or comments:
  the pedestrian project has the verdict field with the two verdict labels; a checking project
  has the answer field whose allowed values are exactly that pool's two labels (visit yes/no,
  quality ok/bad, relevance relevant/not_relevant, or what the scenario's ``fields`` say). The
  first OPEN pool of each kind is the crowd's pool of that kind;
- a checking pool's skills are the ones its quality control sets (``SET_SKILL_FROM_OUTPUT_FIELD``
  and other actions naming a ``skill_id``): the crowd's checkers of that pool get their skill
  there, as the scenario's own set-up would give it;
- a pedestrian task is the scenario's organization of the same (name, address), case and runs of
  spaces aside (what ``pipeline.py add`` normalizes too); a task of no organization is left alone.

Everything here is pure; :class:`~emulator.crowd.simulator.Crowd` does the store work.
"""

from __future__ import annotations

import csv
import io
import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from emulator.crowd.scenario import VERIFICATION_POOLS, Fields, Scenario


def _outputs(project: Mapping[str, Any] | None) -> Mapping[str, Any]:
    spec = (project or {}).get("task_spec") or {}
    outputs = spec.get("output_spec") if isinstance(spec, Mapping) else None
    return outputs if isinstance(outputs, Mapping) else {}


def _allowed(field: object) -> set[str]:
    values = field.get("allowed_values") if isinstance(field, Mapping) else None
    return {str(v) for v in values} if isinstance(values, list) else set()


def pool_kind(project: Mapping[str, Any] | None, fields: Fields) -> str | None:
    """``pedestrian``, ``visit``, ``quality`` or ``relevance`` from a project's output spec, or None."""
    outputs = _outputs(project)
    if _allowed(outputs.get(fields.verdict_field)) >= {fields.verdict_ok, fields.verdict_no_org}:
        return "pedestrian"
    for kind in VERIFICATION_POOLS:
        labels = fields.labels(kind)
        if _allowed(outputs.get(labels.answer_field)) == {labels.accept_label, labels.reject_label}:
            return kind
    return None


def skill_ids(pool: Mapping[str, Any]) -> list[str]:
    """The skills a pool's quality-control rules set, in the order they appear, once each."""
    found: dict[str, None] = {}
    configs = (pool.get("quality_control") or {}).get("configs") or []
    for config in configs if isinstance(configs, list) else ():
        for rule in (config or {}).get("rules") or ():
            parameters = ((rule or {}).get("action") or {}).get("parameters") or {}
            skill = parameters.get("skill_id") if isinstance(parameters, Mapping) else None
            if skill not in (None, ""):
                found[str(skill)] = None
    return list(found)


def place_key(name: object, address: object) -> tuple[str, str]:
    """An organization's (name, address) as ``pipeline.py add`` compares them: case and spaces aside."""
    return (" ".join(str(name or "").split()).casefold(), " ".join(str(address or "").split()).casefold())


def places(scenario: Scenario) -> dict[tuple[str, str], str]:
    """:func:`place_key` -> organization id, for every organization of the scenario."""
    return {place_key(o.name, o.address): o.id for o in scenario.organizations}


def organizations_tsv(scenario: Scenario) -> str:
    """The scenario's organizations as the TSV ``pipeline.py add`` reads: a header of the org fields
    and extra fields (those of ``[PedestrianProject]``), then one row per organization."""
    f = scenario.fields
    columns = (*f.org_fields, *f.extra_fields)
    out = io.StringIO()
    writer = csv.writer(out, delimiter="\t", lineterminator="\n")
    writer.writerow(columns)
    for org in scenario.organizations:
        values = org.input_values(f.org_fields, f.extra_fields)
        writer.writerow([values.get(c, "") for c in columns])
    return out.getvalue()


def write_organizations(path: str | os.PathLike[str], scenario: Scenario) -> int:
    """Write :func:`organizations_tsv` to ``path`` (atomically); return the number of rows."""
    target = Path(path).absolute()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".orgs-", suffix=".tsv", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
            handle.write(organizations_tsv(scenario))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return len(scenario.organizations)


def first_open(pools: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """OPEN pools in creation order (ids are decimal: the first of a kind wins)."""
    return sorted((p for p in pools if p.get("status") == "OPEN"), key=lambda p: (len(str(p["id"])), str(p["id"])))
