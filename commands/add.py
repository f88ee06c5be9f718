"""``python pipeline.py add organizations.tsv``: create the pedestrian pool's tasks from a file, each once.

The file is TSV (``.tsv``, or any name whose header has a tab) or CSV
(``.csv``; ``;`` accepted when the header has no comma), UTF-8, with a header
line naming the columns: the pool's ``[PedestrianProject] org_fields``
(required: name, address, coordinates as ``lat,lon`` by default) and any of its
``extra_fields`` (passed through to the task). Other columns are not sent (a
note says so).

Every row is checked before anything is sent, and every problem is reported,
one line each, as ``file:line: reason``: a missing name (or other org field),
coordinates that are not ``lat,lon`` or out of range, a wrong number of cells,
a duplicate of an earlier line. Good rows are sent even when others are
refused. A row sent by an earlier run (or already a task of the pool) is not
sent again. Then one summary line: ``added N, already sent M, refused K``.

Exit status: 0 every row added or already sent; 1 some rows refused (the good
ones were added); 2 nothing could be done: the file cannot be read, lacks a
required column, the configuration or the token is wrong, or Toloka failed
mid-way (then run the same command again: nothing is sent twice).

Safe to repeat and to kill: each batch (``--batch-size``, 1000 rows) is
recorded in ``saves/intake-<pool_id>.jsonl`` before it is sent, with a fixed
``operation_id``, so a rerun after ``kill -9`` finishes the interrupted batch
without creating its tasks twice (engine/intake.py explains why). It takes its
own lock, ``saves/intake.lock``, not the daemon's, so it runs while the
daemon runs; the daemon reads the new tasks' work when pedestrians submit it.
``--dry-run`` checks the file and says what would be sent, creating nothing
(not even ``saves/``; it takes no lock). A missing ``saves/`` is not created
when the daemon's tables already hold rows (``saves/`` lost or elsewhere: the
daemon's refusal, exit 2); a new project's is. ``--open-pool`` leaves the pool
open: after the batches (even when no row was new) it reads the pool and opens
it if needed; when Toloka refuses, the reason is printed and the exit status
is 1 (the pool stays as it is without the option: open it when you are ready).

Toloka refusing a whole create request for good (403/404 on the pool, a
request over its size limit) closes that batch with each of its rows refused,
reported by line and not recorded as sent, so a later run tries them again;
on 403/404 the run stops there (exit 2). Batches are bounded by bytes as
well as rows, under Toloka's 1 MiB of ``input_values`` per request.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commands import Command, fail

if TYPE_CHECKING:
    from engine.config import Settings
    from engine.intake import AddReport, Checked, IntakeSpec

MAX_BATCH = 5000  # Toloka's limit per create request


def _batch_size(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number of rows, found {text!r}") from None
    if not 1 <= value <= MAX_BATCH:
        raise argparse.ArgumentTypeError(f"expected 1..{MAX_BATCH}, found {value}")
    return value


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", type=Path, help="TSV or CSV of organizations, with a header line")
    parser.add_argument("--dry-run", action="store_true",
                        help="check the file and count what would be sent; create nothing")
    parser.add_argument("--open-pool", action="store_true",
                        help="open the pedestrian pool after creating the tasks, if it is closed")
    parser.add_argument("--batch-size", type=_batch_size, default=1000,
                        help="rows per create request (default 1000, at most 5000)")


def _err(line: str) -> None:
    print(line, file=sys.stderr, flush=True)


def _run(args: argparse.Namespace) -> int:
    import pipelines
    from common.errors import PipelineError
    from engine.intake import IntakeError, check_rows, read_sheet

    name = str(args.file)
    try:
        settings = pipelines.load_settings(args.config)
        spec = pipelines.get(settings.definition)
        if spec.intake is None:
            _err(f"pipeline: the {spec.name} pipeline takes no file of work; `add` feeds the pedestrian pool")
            return 2
        intake = spec.intake(settings.config)
        pool_id = settings.pools()[intake.pool]
        checked = check_rows(read_sheet(args.file, name), intake)
        if not args.dry_run:
            _refuse_lost_saves(settings, dict(spec.tables(settings.config)))
    except IntakeError as exc:
        for line in exc.lines:
            _err(line)
        _err(f"{name}: nothing was sent")
        return 2
    except PipelineError as exc:
        return fail(exc)
    try:
        report = asyncio.run(_send(settings, intake, pool_id, checked, name, args))
    except PipelineError as exc:
        fail(exc)
        _err(f"{name}: stopped before the end; what was sent is recorded: run the same command again "
             f"to send the rest (nothing is sent twice)")
        return 2
    except KeyboardInterrupt:
        _err(f"{name}: interrupted; run the same command again to send the rest (nothing is sent twice)")
        return 2
    for line in (*report.notes, *report.refused):
        _err(line)
    for line in report.resumed:
        print(line)
    if args.dry_run:
        print(f"would add {report.would_add}, already sent {report.already}, refused {len(report.refused)} "
              f"(dry run: nothing was sent)")
        return 1 if report.refused else 0
    print(f"{report.summary()} (pool {intake.pool}, {pool_id})")
    if report.stopped is not None:
        _err(f"{name}: {report.stopped}; refused rows are not recorded as sent: fix the cause, then run the "
             f"same command again")
        return 2
    if report.not_opened is not None:
        _err(f"{name}: --open-pool: {report.not_opened}")
        return 1
    return 1 if report.refused else 0


def _refuse_lost_saves(settings: Settings[Any], tables: dict[str, Any]) -> None:
    """Refuse to create a missing ``saves/`` when the daemon's tables hold rows (lost or misplaced).

    Creating it would put the operator's ``mv saves.bak saves`` inside it; a new
    project (no ``saves/``, no rows) goes on and ``saves/`` is made as before.
    """
    from common.errors import StateError
    from engine.runner import earlier_rows, refuse_to_start_over

    saves = settings.pipeline.saves_folder
    if saves.exists():
        return
    found = earlier_rows(tables, settings.pipeline.logs_folder, settings.pipeline.results_folder)
    if found:
        raise StateError(f"{refuse_to_start_over(saves, found)}\n"
                         f"(`add` creates no saves/ over earlier rows; --fresh is the daemon's option: "
                         f"after it made a new saves/, run add again)")


async def _send(settings: Settings[Any], intake: IntakeSpec, pool_id: str, checked: Checked, name: str,
                args: argparse.Namespace) -> AddReport:
    """Connect with the token from the keyring and send the checked rows."""
    from common.secrets import read_secret
    from engine.intake import add_rows
    from toloka_client.client import TolokaClient
    from toloka_client.http import HttpSettings

    token = await asyncio.to_thread(read_secret, settings.secrets.toloka_token)
    http = HttpSettings(total_timeout_s=settings.toloka.timeout_s)
    async with TolokaClient.connect(settings.toloka.base_url, token, http) as client:
        return await add_rows(client, intake, pool_id, settings.pipeline.saves_folder, checked, name=name,
                              batch_size=args.batch_size, dry_run=args.dry_run, open_pool=args.open_pool,
                              progress=_err)


COMMAND = Command("add", "create the pedestrian pool's tasks from a TSV/CSV of organizations, each once",
                  _arguments, _run)
