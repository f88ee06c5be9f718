"""``python pipeline.py unrestrict WORKER [--pool NAME]``: lift the daemon's restrictions on a worker."""

from __future__ import annotations

import argparse
import asyncio

from commands import Command, fail


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("worker", help="the worker's Toloka user id")
    parser.add_argument("--pool", help="unrestrict on this pool only (its name, e.g. visit)")


def _run(args: argparse.Namespace) -> int:
    import pipelines
    from common.errors import PipelineError
    from engine.commands import unrestrict

    try:
        settings = pipelines.load_settings(args.config)
        lines = asyncio.run(unrestrict(pipelines.get(settings.definition), settings, args.worker, args.pool))
    except PipelineError as exc:
        return fail(exc, 2)
    print("\n".join(lines) if lines else f"{args.worker} has no restriction on the pipeline's pools")
    return 0


COMMAND = Command("unrestrict", "lift the restrictions the daemon put on a worker (docs/decisions.md)",
                  _arguments, _run)
