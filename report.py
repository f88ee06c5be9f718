"""``python report.py [--config toloka.ini | --pipeline NAME] [--logs L] [--results R] [--out report/]``: a report.

It reads the tables a pipeline declares (``engine.spec.PipelineSpec``: its
decision log, answer log and result tables) and the engine's ``spend.tsv``,
and writes ``index.html`` with PNG charts into ``--out``: the pipeline's
funnel, decisions over time, time from a unit's first row to its decision,
each worker's agreement with the aggregate per pool (flagging workers far
below the rest), spend over time, and the pipeline's own count charts (the
pedestrian's bonus fields accepted). It works on a running daemon's files and
says which are missing or empty.

``--config toloka.ini`` takes the pipeline (``[Pipeline] definition``), its
tables and both folders from the file; without it, ``--pipeline`` names the
pipeline (default: pedestrian).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

DEFAULT_PIPELINE = "pedestrian"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0].strip("`"))
    parser.add_argument("--logs", type=Path, help="logs folder (default: logs, or [Pipeline] logs_folder)")
    parser.add_argument("--results", type=Path, help="results folder (default: ., or [Pipeline] results_folder)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="where to write the report (default: report/)")
    parser.add_argument("--config", type=Path,
                        help="take the pipeline, its tables and the folders from this toloka.ini")
    parser.add_argument("--pipeline", metavar="NAME",
                        help=f"the pipeline whose files these are, without --config (default: {DEFAULT_PIPELINE})")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import pipelines
    from common.errors import ConfigError

    if args.pipeline is not None and args.pipeline not in pipelines.REGISTRY:
        print(f"report: --pipeline: expected one of {', '.join(sorted(pipelines.REGISTRY))}, found {args.pipeline!r}",
              file=sys.stderr)
        return 2
    logs, results = Path("logs"), Path(".")
    config: Any = None
    try:
        if args.config is not None:
            settings = pipelines.load_settings(args.config)
            if args.pipeline is not None and args.pipeline != settings.definition:
                raise ConfigError("Pipeline", "definition", f"{args.pipeline!r} (--pipeline)", settings.definition)
            spec = pipelines.get(settings.definition)
            config = settings.config
            logs, results = settings.pipeline.logs_folder, settings.pipeline.results_folder
        else:
            spec = pipelines.get(args.pipeline or DEFAULT_PIPELINE)
    except ConfigError as exc:
        print(f"report: {exc}", file=sys.stderr)
        return 2
    logs = args.logs or logs
    results = args.results or results
    from reporting.build import build_report

    report = build_report(logs, results, args.out, spec, config=config)
    for note in report.notes:
        print(f"report: {note}")
    missing = [s.title for s in report.sections if s.image is None]
    print(f"report: {report.index} with {len(report.charts)} charts"
          + (f"; not drawn: {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
