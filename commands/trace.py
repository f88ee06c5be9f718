"""``python pipeline.py trace ID-or-ADDRESS``: one unit of work's path, from the result and log tables.

For the pedestrian pipeline a unit is one organization visited: ID may be its
pedestrian assignment id, a checking task id or a checker's assignment id; any
other text is looked for in the names and addresses. It prints the photos,
every answer with worker, skill and confidence, each task's aggregate and each
decision with its reason, in time order. It reads files only (no Toloka call),
so it runs beside the daemon. Several matches are listed (exit 1): ask again
with one of their ids.
"""

from __future__ import annotations

import argparse
import sys

from commands import Command, fail


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("query", metavar="ID-or-ADDRESS",
                        help="an assignment or task id, or part of the organization's name or address")


def _run(args: argparse.Namespace) -> int:
    import pipelines
    from common.errors import PipelineError
    from engine import trace

    try:
        settings = pipelines.load_settings(args.config)
    except PipelineError as exc:
        return fail(exc, 2)
    spec = pipelines.get(settings.definition)
    if spec.trace is None:
        print(f"pipeline: the {spec.name} pipeline declares no trace", file=sys.stderr)
        return 2
    if not args.query.strip():
        print("pipeline: trace: give an id or part of a name or address", file=sys.stderr)
        return 2
    logs, results = settings.pipeline.logs_folder, settings.pipeline.results_folder
    paths = {name: table.path(logs, results) for name, table in spec.tables(settings.config).items()}
    rows, notes = trace.load(spec.trace, paths)
    units = trace.find_units(spec.trace, rows, args.query)
    if not units:
        print(f"pipeline: trace: nothing in {settings.pipeline.logs_folder} or {settings.pipeline.results_folder} "
              f"matches {args.query!r}", file=sys.stderr)
        for note in notes:
            print(f"note: {note}", file=sys.stderr)
        return 1
    if len(units) > 1:
        print(f"{len(units)} {spec.trace.unit}s match {args.query!r}; trace one of them by its id:")
        for unit, label in units.items():
            print(trace.printable(f"  {unit}  {label}"))
        return 1
    [(unit, label)] = units.items()
    found = trace.trace_unit(spec.trace, rows, unit, label)
    found.notes.extend(notes)
    print(trace.render(found, spec.trace.unit))
    return 0


COMMAND = Command("trace", "print one organization's path: photos, answers, aggregates, decisions (files only)",
                  _arguments, _run)
