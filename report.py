"""``python report.py [--logs logs] [--results .] [--out report/]``: an HTML report with charts.

It reads ``decisions.tsv``, ``answers.tsv`` and ``spend.tsv`` from the logs
folder and the result TSVs (``main_tasks.tsv``, ``no_org.tsv``,
``bonus_tasks.tsv``) from the results folder, and writes ``index.html`` with
PNG charts into ``--out``: the funnel, decisions over time, time from submit
to decision, each worker's agreement with the aggregate per verification pool
(flagging workers far below the rest), spend over time and the bonus fields
accepted. It works on a running daemon's files and says which are missing or
empty. ``--config toloka.ini`` takes both folders from ``[Pipeline]``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0].strip("`"))
    parser.add_argument("--logs", type=Path, help="logs folder (default: logs, or [Pipeline] logs_folder)")
    parser.add_argument("--results", type=Path, help="results folder (default: ., or [Pipeline] results_folder)")
    parser.add_argument("--out", type=Path, default=Path("report"), help="where to write the report (default: report/)")
    parser.add_argument("--config", type=Path, help="take the folders from this toloka.ini")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logs, results = Path("logs"), Path(".")
    if args.config is not None:
        from engine.config import load_settings
        from common.errors import ConfigError

        try:
            settings = load_settings(args.config)
        except ConfigError as exc:
            print(f"report: {exc}", file=sys.stderr)
            return 2
        logs, results = settings.pipeline.logs_folder, settings.pipeline.results_folder
    logs = args.logs or logs
    results = args.results or results
    from reporting.build import build_report

    report = build_report(logs, results, args.out)
    for note in report.notes:
        print(f"report: {note}")
    missing = [s.title for s in report.sections if s.image is None]
    print(f"report: {report.index} with {len(report.charts)} charts"
          + (f"; not drawn: {', '.join(missing)}" if missing else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
