"""``python pipeline.py sample N [--out FILE] [--seed S]``: N random accepted organizations as one HTML page.

For a person's spot check: each organization with every field of its result
row and its photos (kept result links, main and bonus). The page is written
atomically (``--out``, default ``sample.html`` in the results folder) from the
files alone, so it runs beside the daemon. Without ``--seed`` a seed is chosen
and printed, so the same draw can be made again.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from commands import Command, fail


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("n", metavar="N", type=int, help="how many accepted organizations to draw")
    parser.add_argument("--out", type=Path, default=None,
                        help="the HTML file to write (default: sample.html in the results folder)")
    parser.add_argument("--seed", type=int, default=None, help="random seed of the draw (default: a new one)")


def _run(args: argparse.Namespace) -> int:
    import os
    import random
    import tempfile

    import pipelines
    from common.errors import PipelineError
    from engine import trace
    from engine.runner import utc_now
    from reporting.sample import draw, render

    if args.n < 1:
        print(f"pipeline: sample: N must be at least 1, found {args.n}", file=sys.stderr)
        return 2
    try:
        settings = pipelines.load_settings(args.config)
    except PipelineError as exc:
        return fail(exc, 2)
    spec = pipelines.get(settings.definition)
    if spec.trace is None or spec.trace.accepted is None:
        print(f"pipeline: the {spec.name} pipeline declares no table of accepted work to sample", file=sys.stderr)
        return 2
    tables = spec.tables(settings.config)
    paths = {name: table.path(settings.pipeline.logs_folder, settings.pipeline.results_folder)
             for name, table in tables.items()}
    rows, notes = trace.load(spec.trace, paths)
    subject = next(t.subject_column for t in spec.trace.tables if t.table == spec.trace.accepted)
    results = [name for name, table in tables.items() if table.folder == "results"]
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(1, 1_000_000)
    drawn, total = draw(spec.trace, subject, rows, results, args.n, seed)
    page = render(drawn, label=spec.trace.unit, total=total, seed=seed, title=f"{spec.name} pipeline",
                  now=utc_now())
    out: Path = args.out if args.out is not None else settings.pipeline.results_folder / "sample.html"
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out.parent, prefix=f".{out.name}.",
                                         delete=False) as handle:
            handle.write(page)
        os.replace(handle.name, out)
    except OSError as exc:
        print(f"pipeline: sample: cannot write {out}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    if total == 0:
        print(f"nothing accepted yet in {paths[spec.trace.accepted]}; wrote an empty sample to {out}")
        return 1
    short = f" (only {total} accepted)" if total < args.n else ""
    print(f"wrote {len(drawn)} of {total} accepted{short} to {out} (seed {seed})")
    return 0


COMMAND = Command("sample", "write an HTML page of N random accepted organizations with their photos, to spot-check",
                  _arguments, _run)
