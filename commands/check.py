"""``python pipeline.py check``: check a configuration without acting on anything.

Reports every mistake in ``toloka.ini`` at once (exit 2); then checks the
keyring entries, the token, each pool and its project against what the
pipeline sends and reads, and the photo store (engine/preflight.py), one
``OK``/``FAIL`` line each, and a summary: exit 0 when all pass, 1 otherwise.
"""

from __future__ import annotations

import argparse
import sys

from commands import Command, fail


def _arguments(parser: argparse.ArgumentParser) -> None:
    """``check`` takes only ``--config``."""


def _run(args: argparse.Namespace) -> int:
    import asyncio
    from datetime import UTC, datetime

    import pipelines
    from common.errors import PipelineError
    from engine.preflight import run_checks

    try:
        settings = pipelines.load_settings(args.config)
        spec = pipelines.get(settings.definition)
    except PipelineError as exc:
        for line in str(exc).splitlines():
            print(f"pipeline: {line}", file=sys.stderr)
        return 2
    print(f"configuration {settings.source}: no mistakes ({settings.definition} pipeline)")
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        checks = asyncio.run(run_checks(spec, settings, now))
    except PipelineError as exc:  # e.g. the keyring backend itself is unusable
        return fail(exc, 1)
    for check in checks:
        print(check.line())
    failed = sum(not check.ok for check in checks)
    if failed:
        print(f"{failed} of {len(checks)} checks failed: the daemon would not work as configured")
        return 1
    print(f"all {len(checks)} checks passed")
    return 0


COMMAND = Command("check", "check toloka.ini, the keyring, the token, every pool's project and the photo store, "
                  "changing nothing on Toloka", _arguments, _run)
