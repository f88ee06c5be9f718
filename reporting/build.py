"""Build the report: read the tables, compute the numbers, draw the charts, write ``index.html``.

The HTML has no external assets: the charts sit beside it as PNG files, and
every chart is followed by the numbers it shows. What could not be drawn (a
missing or empty file, too little data yet) is said in words where the chart
would be, and listed at the top.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pandas as pd

from engine.spec import CountChart, PipelineSpec
from reporting import charts, numbers
from reporting.load import Inputs, load
from reporting.plan import SPEND, ReportPlan, plan


@dataclass
class Section:
    """One chart (or the reason there is none) and the numbers under it."""

    title: str
    image: str | None = None
    missing: str | None = None
    rows: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    """What was written: the HTML file, the charts, the notes, and what was read of the pipeline."""

    index: Path
    charts: dict[str, Path]
    notes: list[str]
    sections: list[Section]
    plan: ReportPlan


def build_report(logs: Path, results: Path, out: Path, spec: PipelineSpec[Any, Any], *, config: Any = None,
                 now: datetime | None = None) -> Report:
    """Write ``out/index.html`` and its charts from the TSVs the pipeline ``spec`` writes to ``logs`` and ``results``.

    ``config`` is the pipeline's parsed configuration (``Settings.config``), when
    there is one: it says which tables the pipeline writes (see :mod:`reporting.plan`).
    """
    out.mkdir(parents=True, exist_ok=True)
    p = plan(spec, config)
    inputs = load(logs, results, p.tables, p.rare)
    drawn: dict[str, Path] = {}
    sections: list[Section] = []

    def chart(key: str, title: str, missing: str | None, draw: Callable[[Path], Path],
              rows: Callable[[], list[tuple[str, str]]]) -> None:
        path = out / f"{key}.png"
        if missing is None:
            drawn[key] = draw(path)
            sections.append(Section(title, image=path.name, rows=rows()))
        else:
            path.unlink(missing_ok=True)  # an old chart must not pass for a new one
            sections.append(Section(title, missing=missing))

    log = p.log
    decisions = inputs[log.table] if log is not None else pd.DataFrame()
    if log is None:
        no_decisions: str | None = f"the {p.name} pipeline declares no decision log"
    elif not inputs.usable(log.table, log.pool_column, log.event_column, log.subject_column, p.time_column):
        no_decisions = _why(inputs, log.table)
    else:
        no_decisions = None
    has_decisions = no_decisions is None

    counts = numbers.funnel(decisions, p) if has_decisions else {}
    outcomes = numbers.outcomes(decisions, p) if has_decisions else {}
    chart("funnel", "Funnel: " + " -> ".join(s.name for s in p.funnel) if p.funnel else "Funnel",
          no_decisions or (None if p.funnel else f"the {p.name} pipeline declares no funnel"),
          lambda path: charts.funnel_chart(counts, outcomes, path, noun=p.subject_noun),
          lambda: [*((s, str(n)) for s, n in counts.items()),
                   *((k, str(v)) for k, v in outcomes.items() if k not in counts)])

    over_time = numbers.decisions_over_time(decisions, p) if has_decisions else pd.DataFrame()
    chart("decisions_over_time", "Decisions over time", no_decisions or (
        None if not over_time.empty else f"no {_or(p.timeline_events)} rows yet"),
        lambda path: charts.decisions_chart(over_time, path, p.timeline_events),
        lambda: [(str(e), str(int(over_time[e].sum()))) for e in over_time.columns])

    start = p.start_event or "the first row"
    minutes = numbers.time_to_decision(decisions, p) if has_decisions else pd.Series(dtype=float)
    chart("time_to_decision", f"Time from {start} to decision", no_decisions or (
        None if len(minutes) else f"none of the {p.subject_noun} has both its {start} row and a final decision "
                                  f"({_or(p.final_events)}) yet"),
        lambda path: charts.time_to_decision_chart(minutes, path, start=start, noun=p.subject_noun),
        lambda: [(p.subject_noun, str(len(minutes))), ("median minutes", f"{minutes.median():.1f}"),
                 ("longest minutes", f"{minutes.max():.1f}")])

    answer_log = p.answer_log
    if answer_log is None:
        (out / "worker_agreement.png").unlink(missing_ok=True)  # nor a chart of another pipeline's
    else:
        agreement = numbers.worker_agreement(inputs[answer_log.table], answer_log, p.pools)
        flagged = agreement.table[agreement.table["flagged"]]
        usable = inputs.usable(answer_log.table, answer_log.pool_column, answer_log.worker_column,
                               answer_log.label_column, answer_log.result_column)
        chart("worker_agreement", "Agreement of each worker with the aggregate, per pool",
              None if usable else _why(inputs, answer_log.table),
              lambda path: charts.agreement_chart(agreement, path),
              lambda: [(f"{r.pool}: worker {r.worker}",
                        f"{r.agreement:.2f} of {r.answers} answers - far below the rest")
                       for r in flagged.itertuples()] or [("workers far below the rest", "none")])

    learned = _learned_workers(logs / WORKERS)
    if learned is not None:
        sections.append(Section("Checkers' learned quality (worst first; logs/workers.tsv)", rows=learned))

    spend_log = inputs[SPEND]
    spend = numbers.spend_over_time(spend_log)
    limit = _max_spend(spend_log)
    chart("spend_over_time", "Spend over time", _why(inputs, SPEND) if spend.empty else None,
          lambda path: charts.spend_chart(spend, limit, path),
          lambda: [(c, spend_log[c].iloc[-1]) for c in ("rewards", "bonuses", "spent") if c in spend_log.columns]
          + ([("max_spend", f"{limit:g}")] if limit is not None else []))

    for count in p.charts:
        _count_chart(chart, inputs, count)

    index = out / "index.html"
    stamp = (now or datetime.now(UTC).replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M:%S UTC")
    index.write_text(_html(p, inputs, sections, counts, outcomes, stamp, logs, results), encoding="utf-8")
    return Report(index, drawn, inputs.notes, sections, p)


def _count_chart(chart: Callable[..., None], inputs: Inputs, count: CountChart) -> None:
    """A count chart the pipeline declares, and its numbers (and its money, if it has a money column)."""
    frame = inputs[count.table]
    values = numbers.count_values(frame, count)
    rows = [(str(k), str(int(n))) for k, n in values.items()]
    if count.money_column:
        rows.append((count.money_label, str(numbers.money_total(frame, count.money_column))))
    chart(count.key, count.title, _why(inputs, count.table) if values.empty else None,
          lambda path: charts.count_chart(values, path, title=count.title, unit=count.unit), lambda: rows)


#: The daemon's table of learned worker quality (rewritten every tick), if the pipeline keeps one.
WORKERS = "workers.tsv"
WORKERS_LISTED = 25


def _learned_workers(path: Path) -> list[tuple[str, str]] | None:
    """The worst checkers as the daemon learned them, or None when there is no such table."""
    if not path.exists():
        return None
    table = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    rows = []
    for row in table.head(WORKERS_LISTED).itertuples():
        restricted = " - restricted" if getattr(row, "restricted", "") else ""
        rows.append((f"{row.pool}: worker {row.worker}",
                     f"accuracy {row.accuracy} (sensitivity {row.sensitivity}, specificity {row.specificity}), "
                     f"controls {row.controls_right}/{row.controls}{restricted}"))
    return rows or [("checkers scored", "none yet")]


def _or(words: Sequence[str]) -> str:
    """``a, b or c``."""
    words = list(words)
    return " or ".join(filter(None, [", ".join(words[:-1]), words[-1] if words else ""])) or "decision"


def _why(inputs: Inputs, name: str) -> str:
    """Why a table gives nothing to draw: its note, or that it lacks the columns needed."""
    path = inputs.paths.get(name)
    if path is None:
        return f"the pipeline has no table {name!r}"
    for note in inputs.notes:
        if note.startswith(str(path)):
            return note
    return f"{path} has no rows with the columns this chart needs"


def _max_spend(spend: pd.DataFrame) -> float | None:
    if spend.empty or "max_spend" not in spend.columns:
        return None
    value = str(spend["max_spend"].iloc[-1])
    return float(Decimal(value)) if value else None


def _html(p: ReportPlan, inputs: Inputs, sections: list[Section], counts: dict[str, int],
          outcomes: dict[str, int], stamp: str, logs: Path, results: Path) -> str:
    e = html.escape
    headline: list[tuple[str, int]] = []
    if p.funnel and counts:
        headline.append((f"{p.subject_noun} that entered the funnel ({p.funnel[0].name})", counts[p.funnel[0].name]))
    headline += [(f"ended: {name}", n) for name, n in outcomes.items()]
    headline += [(f"{inputs.paths[name].name} rows", len(inputs[name]))
                 for name, (folder, _) in p.tables.items() if folder == "results"]
    title = f"{p.name} pipeline report"
    parts = [
        f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{e(title)}</title>",
        "<style>body{font:14px/1.4 system-ui,sans-serif;margin:20px 28px;color:#1d2433}"
        "h1{font-size:22px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}"
        "td,th{padding:2px 10px;border-bottom:1px solid #eaecf0;text-align:left}td.n{text-align:right}"
        ".note{background:#fdecc8;padding:6px 10px;border-radius:4px;margin:4px 0}"
        ".missing{color:#8a1c17}img{max-width:100%;border:1px solid #eaecf0}</style></head><body>",
        f"<h1>{e(title)}</h1>",
        f"<p>{e(p.title)}</p>" if p.title else "",
        f"<p>Made {e(stamp)} from {e(str(logs))} and {e(str(results))}. "
        "Numbers are as of the files' last complete rows.</p>",
    ]
    if inputs.notes:
        parts.append("<h2>About the input files</h2>")
        parts += [f"<div class=\"note\">{e(n)}</div>" for n in inputs.notes]
    parts.append("<h2>In short</h2><table>")
    parts += [f"<tr><td>{e(k)}</td><td class=\"n\">{v}</td></tr>" for k, v in headline]
    parts.append("</table>")
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        if section.image is None and section.missing is not None:
            parts.append(f"<p class=\"missing\">No chart: {e(section.missing)}</p>")
            continue
        if section.image is not None:
            parts.append(f"<img src=\"{e(section.image)}\" alt=\"{e(section.title)}\">")
        if section.rows:
            parts.append("<table>")
            parts += [f"<tr><td>{e(k)}</td><td class=\"n\">{e(v)}</td></tr>" for k, v in section.rows]
            parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
