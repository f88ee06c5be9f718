"""``python pipeline.py setup``: create the pipeline's projects, skills and pools on Toloka and write toloka.ini.

The field names and labels come from the template (``toloka.example.ini``, or
the ``--config`` file itself with ``--force``), so the projects' specs match
what the daemon will send and read with the file written. Runs again safely:
what an earlier run made is found by its marker and reused (docs/toloka-setup.md).
"""

from __future__ import annotations

import argparse
import json
import sys
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

from commands import Command, fail

if TYPE_CHECKING:
    from engine.toloka_setup import SetupPlan

EXAMPLE = Path(__file__).resolve().parents[1] / "toloka.example.ini"


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--environment", help="PRODUCTION, SANDBOX or a URL (default: [Toloka] environment "
                                              "of the template)")
    parser.add_argument("--force", action="store_true",
                        help="replace the pool and skill ids of an existing --config file (its other "
                             "settings are kept)")
    parser.add_argument("--template", type=Path, default=EXAMPLE,
                        help="the commented file to start from when --config does not exist "
                             "(default: toloka.example.ini)")
    parser.add_argument("--name", help="marks everything setup makes, to tell deployments on one account "
                                       "apart (default: the pipeline's name)")
    parser.add_argument("--reward", action="append", default=[], metavar="POOL=AMOUNT",
                        help="reward per assignment of a pool, e.g. pedestrian=0.60 (repeatable)")
    parser.add_argument("--show", action="store_true",
                        help="print the projects, skills and pools setup would send (JSON, ids as <...>), "
                             "touch nothing: for creating them by hand")
    parser.add_argument("--control", type=Path, metavar="FILE",
                        help="control tasks (TSV: pool, answer and the task's input columns) to put in the "
                             "checking pools and mix into every task suite (docs/toloka-setup.md)")


def _rewards(items: list[str]) -> dict[str, Decimal]:
    rewards: dict[str, Decimal] = {}
    for item in items:
        pool, _, amount = item.partition("=")
        try:
            value = Decimal(amount.strip())
        except InvalidOperation:
            value = Decimal(-1)
        if not pool.strip() or not value.is_finite() or value <= 0:
            raise ValueError(f"--reward {item!r}: expected POOL=AMOUNT with an amount above 0")
        rewards[pool.strip()] = value
    return rewards


def _run(args: argparse.Namespace) -> int:  # noqa: C901 - one refusal per kind of mistake, in order
    import asyncio
    import configparser
    import dataclasses
    import logging
    from datetime import UTC, datetime

    import pipelines
    from common import ini
    from common.errors import ConfigError, PipelineError
    from common.files import write_text_atomically
    from common.ini_text import set_values
    from common.secrets import read_secret
    from engine.config import DEFAULT_DEFINITION, base_url_of, parse_settings
    from engine.toloka_setup import ControlTask, Made, SetupRequest, apply_plan, read_control_tasks
    from toloka_client.client import TolokaClient
    from toloka_client.errors import AuthenticationError, TolokaError, TransportError
    from toloka_client.http import HttpSettings
    from toloka_client.retry import RetryPolicy

    out: Path = args.config
    if out.exists() and not args.force and not args.show:
        return fail(f"{out} exists: setup writes a new one. Pass --force to keep its settings and replace "
                     f"its pool and skill ids, or --config another path")
    source: Path = out if out.exists() else args.template
    try:
        text = source.read_text(encoding="utf-8")
    except OSError as exc:
        return fail(f"cannot read the template {source}: {exc.strerror or exc}")
    try:
        rewards = _rewards(args.reward)
        if args.environment is not None:
            try:
                base_url_of(args.environment)
            except ConfigError:
                raise ValueError(f"--environment: expected PRODUCTION, SANDBOX or an http(s):// URL, "
                                 f"found {args.environment!r}") from None
            text = set_values(text, {"Toloka": {"environment": args.environment}})
    except ValueError as exc:
        return fail(str(exc))
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        cfg.read_string(text, source=str(source))
        spec = pipelines.get(ini.get_str(cfg, "Pipeline", "definition", DEFAULT_DEFINITION))
        settings = parse_settings(cfg, spec, source=source.absolute(), base_dir=out.absolute().parent)
    except configparser.Error as exc:
        return fail(f"cannot read {source}: {' '.join(str(exc).split())}")
    except ConfigError as exc:  # every mistake, each named in the template as it is called
        return fail(exc.in_file(str(source)))
    except PipelineError as exc:
        return fail(f"{source}: {exc}")
    if spec.toloka_setup is None:
        return fail(f"pipeline {spec.name} has no setup: create its pools by hand (docs/toloka-setup.md)")
    name = args.name or spec.name
    if not name.strip() or len(name) > 100 or any(ch in name for ch in "\r\n/"):
        return fail(f"--name: expected up to 100 characters without '/' or line breaks, found {name!r}")
    request = SetupRequest(name=name, now=datetime.now(UTC).replace(tzinfo=None), rewards=rewards)
    plan = spec.toloka_setup(settings.config, request)
    controls: list[ControlTask] = []
    if args.control is not None:
        controls, problems = read_control_tasks(args.control, plan)
        if problems:
            for problem in problems:
                print(f"pipeline: {problem}", file=sys.stderr)
            return 2
        if not controls:
            return fail(f"{args.control}: no control tasks in it")
        # The pools given control tasks mix one into every suite.
        request = dataclasses.replace(request, control_pools=frozenset(c.pool for c in controls))
        plan = spec.toloka_setup(settings.config, request)
    unknown = sorted(set(rewards) - {p.key for p in plan.pools})
    if unknown:
        return fail(f"--reward: no pool {', '.join(unknown)}; the pools are "
                     f"{', '.join(p.key for p in plan.pools)}")
    if args.show:
        print(json.dumps(_shown(plan, name), indent=2, ensure_ascii=False, default=str))
        return 0
    environment = settings.toloka.environment

    def report(made: Made) -> None:
        print(made.line(), flush=True)

    async def make() -> list[Made]:
        token = await asyncio.to_thread(read_secret, settings.secrets.toloka_token)
        # A person waits for this command: a few quick tries, then one clear line.
        http = HttpSettings(total_timeout_s=settings.toloka.timeout_s, retry=RetryPolicy(max_attempts=3, budget_s=30))
        async with TolokaClient.connect(settings.toloka.base_url, token, http) as client:
            try:
                await client.get_requester()
            except AuthenticationError:
                raise ConfigError("Secrets", "toloka_token",
                                  f"a token {environment} accepts (keyring entry {settings.secrets.toloka_token!r})",
                                  "a refused token") from None
            return await apply_plan(client, plan, name, report, controls)

    print(f"setting up pipeline {spec.name} ({name!r}) on {environment}", flush=True)
    # The client's retry notes would repeat the one line this command prints when it gives up.
    logging.getLogger("toloka_client").setLevel(logging.ERROR)
    try:
        made = asyncio.run(make())
    except TransportError as exc:
        return fail(f"cannot reach {environment}: {exc}", 1)
    except TolokaError as exc:
        return fail(f"{environment}: {exc}", 2 if not exc.retryable else 1)
    except PipelineError as exc:
        return fail(str(exc))
    ids: dict[str, dict[str, str]] = {"Toloka": {"environment": environment}}
    for item in made:
        if item.section:
            ids.setdefault(item.section, {})[item.ini_key] = item.id
    new_text = set_values(text, ids)
    created = sum(1 for item in made if item.created)
    if created == 0:
        print(f"nothing created: all {len(made)} objects were made by an earlier run")
    if out.exists() and out.read_text(encoding="utf-8") == new_text:
        print(f"{out} already holds these ids: unchanged")
        return 0
    write_text_atomically(out, new_text)
    print(f"wrote {out}: {created} objects created, {len(made) - created} found. The pools are closed: "
          f"open them in Toloka once the daemon runs (python pipeline.py --config {out})")
    return 0


def _shown(plan: SetupPlan, name: str) -> dict[str, object]:
    """The plan as the request bodies setup sends, with ``<project:KEY>``/``<skill:KEY>`` for ids."""
    from engine.toloka_setup import marker

    skills = {s.key: f"<skill:{s.key}>" for s in plan.skills}
    return {
        "projects": {p.key: {**p.doc, "task_spec": {**p.doc["task_spec"], "view_spec": {
            **p.doc["task_spec"]["view_spec"], "config": json.loads(p.doc["task_spec"]["view_spec"]["config"])}}}
            for p in plan.projects},
        "skills": {s.key: {**s.doc, "name": s.name, "toloka.ini": f"[{s.section}] {s.ini_key}"} for s in plan.skills},
        "pools": {p.key: {**p.build(f"<project:{p.project}>", skills), "project_id": f"<project:{p.project}>",
                          "private_comment": marker(name, p.key), "toloka.ini": f"[{p.section}] {p.ini_key}"}
                  for p in plan.pools},
    }


COMMAND = Command("setup", "create the pipeline's projects, skills and pools on Toloka and write toloka.ini "
                           "(docs/toloka-setup.md)", _arguments, _run)
