"""Build the report: read the tables, compute the numbers, draw the charts, write ``index.html``.

The HTML has no external assets: the charts sit beside it as PNG files, and
every chart is followed by the numbers it shows. What could not be drawn (a
missing or empty file, too little data yet) is said in words where the chart
would be, and listed at the top.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

import pandas as pd

from reporting import charts, numbers
from reporting.load import Inputs, load

DECISION_EVENTS = ("submit", "ACCEPT assignment", "REJECT assignment", "PAY bonus")


@dataclass
class Section:
    """One chart (or the reason there is none) and the numbers under it."""

    title: str
    image: str | None = None
    missing: str | None = None
    rows: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Report:
    """What was written: the HTML file, the charts, the notes."""

    index: Path
    charts: dict[str, Path]
    notes: list[str]
    sections: list[Section]


def build_report(logs: Path, results: Path, out: Path, *, now: datetime | None = None) -> Report:
    """Write ``out/index.html`` and its charts from the TSVs in ``logs`` and ``results``."""
    out.mkdir(parents=True, exist_ok=True)
    inputs = load(logs, results)
    drawn: dict[str, Path] = {}
    sections: list[Section] = []

    def chart(key: str, title: str, missing: str | None, draw: Callable[[Path], Path],
              rows: list[tuple[str, str]]) -> None:
        path = out / f"{key}.png"
        if missing is None:
            drawn[key] = draw(path)
            sections.append(Section(title, image=path.name, rows=rows))
        else:
            path.unlink(missing_ok=True)  # an old chart must not pass for a new one
            sections.append(Section(title, missing=missing))

    decisions = inputs["decisions"]
    has_decisions = inputs.usable("decisions", "handler", "event", "pedestrian_assignment_id", "date_time")
    no_decisions = None if has_decisions else _why(inputs, "decisions")

    counts = numbers.funnel(decisions) if has_decisions else {}
    outcomes = numbers.outcomes(decisions) if has_decisions else {}
    chart("funnel", "Funnel: pedestrian -> visit -> quality -> relevance -> accepted", no_decisions,
          lambda p: charts.funnel_chart(counts, outcomes, p),
          [*((s, str(n)) for s, n in counts.items()), *((k, str(v)) for k, v in outcomes.items() if k != "accepted")])

    over_time = numbers.decisions_over_time(decisions, DECISION_EVENTS) if has_decisions else pd.DataFrame()
    chart("decisions_over_time", "Decisions over time", no_decisions or (
        None if not over_time.empty else "no submit, accept, reject or bonus decisions yet"),
        lambda p: charts.decisions_chart(over_time, p),
        [(str(e), str(int(over_time[e].sum()))) for e in over_time.columns])

    minutes = numbers.time_to_decision(decisions) if has_decisions else pd.Series(dtype=float)
    chart("time_to_decision", "Time from submit to decision", no_decisions or (
        None if len(minutes) else "no pedestrian assignment has both its submit and its final decision yet"),
        lambda p: charts.time_to_decision_chart(minutes, p),
        [("assignments", str(len(minutes))), ("median minutes", f"{minutes.median():.1f}" if len(minutes) else "-"),
         ("longest minutes", f"{minutes.max():.1f}" if len(minutes) else "-")])

    agreement = numbers.worker_agreement(inputs["answers"])
    flagged = agreement.table[agreement.table["flagged"]]
    chart("worker_agreement", "Agreement of each worker with the aggregate, per verification pool",
          _why(inputs, "answers") if not inputs.usable("answers", "handler", "worker", "label", "result") else None,
          lambda p: charts.agreement_chart(agreement, p),
          [(f"{r.pool}: worker {r.worker}", f"{r.agreement:.2f} of {r.answers} answers - far below the rest")
           for r in flagged.itertuples()] or [("workers far below the rest", "none")])

    spend = numbers.spend_over_time(inputs["spend"])
    limit = _max_spend(inputs["spend"])
    chart("spend_over_time", "Spend over time", _why(inputs, "spend") if spend.empty else None,
          lambda p: charts.spend_chart(spend, limit, p),
          [(c, inputs["spend"][c].iloc[-1]) for c in ("rewards", "bonuses", "spent") if c in inputs["spend"].columns]
          + ([("max_spend", f"{limit:g}")] if limit is not None else []))

    fields = numbers.bonus_fields(inputs["bonus_tasks"])
    bonus_money = numbers.money_total(inputs["bonus_tasks"], "bonus_amount")
    chart("bonus_fields", "Bonus fields accepted", _why(inputs, "bonus_tasks") if fields.empty else None,
          lambda p: charts.bonus_fields_chart(fields, p),
          [*((str(k), str(int(v))) for k, v in fields.items()), ("bonus money owed for them", str(bonus_money))])

    index = out / "index.html"
    stamp = (now or datetime.now(timezone.utc).replace(tzinfo=None)).strftime("%Y-%m-%d %H:%M:%S UTC")
    index.write_text(_html(inputs, sections, counts, outcomes, stamp), encoding="utf-8")
    return Report(index, drawn, inputs.notes, sections)


def _why(inputs: Inputs, name: str) -> str:
    """Why a table gives nothing to draw: its note, or that it lacks the columns needed."""
    path = inputs.paths[name]
    for note in inputs.notes:
        if note.startswith(str(path)):
            return note
    return f"{path} has no rows with the columns this chart needs"


def _max_spend(spend: pd.DataFrame) -> float | None:
    if spend.empty or "max_spend" not in spend.columns:
        return None
    value = str(spend["max_spend"].iloc[-1])
    return float(Decimal(value)) if value else None


def _html(inputs: Inputs, sections: list[Section], counts: dict[str, int], outcomes: dict[str, int],
          stamp: str) -> str:
    e = html.escape
    headline = [
        ("submitted", counts.get("pedestrian", 0)),
        ("accepted", outcomes.get("accepted", 0)),
        ("no organization", outcomes.get("no_org", 0)),
        ("rejected", sum(v for k, v in outcomes.items() if k.startswith("rejected"))),
        ("main_tasks.tsv rows", len(inputs["main_tasks"])),
        ("no_org.tsv rows", len(inputs["no_org"])),
        ("bonus_tasks.tsv rows", len(inputs["bonus_tasks"])),
    ]
    parts = [
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Pedestrian pipeline report</title>",
        "<style>body{font:14px/1.4 system-ui,sans-serif;margin:20px 28px;color:#1d2433}"
        "h1{font-size:22px}h2{font-size:16px;margin-top:28px}table{border-collapse:collapse}"
        "td,th{padding:2px 10px;border-bottom:1px solid #eaecf0;text-align:left}td.n{text-align:right}"
        ".note{background:#fdecc8;padding:6px 10px;border-radius:4px;margin:4px 0}"
        ".missing{color:#8a1c17}img{max-width:100%;border:1px solid #eaecf0}</style></head><body>",
        "<h1>Pedestrian pipeline report</h1>",
        f"<p>Made {e(stamp)} from {e(str(inputs.paths['decisions'].parent))} and "
        f"{e(str(inputs.paths['main_tasks'].parent))}. Numbers are as of the files' last complete rows.</p>",
    ]
    if inputs.notes:
        parts.append("<h2>About the input files</h2>")
        parts += [f"<div class=\"note\">{e(n)}</div>" for n in inputs.notes]
    parts.append("<h2>In short</h2><table>")
    parts += [f"<tr><td>{e(k)}</td><td class=\"n\">{v}</td></tr>" for k, v in headline]
    parts.append("</table>")
    for section in sections:
        parts.append(f"<h2>{e(section.title)}</h2>")
        if section.image is None:
            parts.append(f"<p class=\"missing\">No chart: {e(section.missing or '')}</p>")
            continue
        parts.append(f"<img src=\"{e(section.image)}\" alt=\"{e(section.title)}\">")
        if section.rows:
            parts.append("<table>")
            parts += [f"<tr><td>{e(k)}</td><td class=\"n\">{e(v)}</td></tr>" for k, v in section.rows]
            parts.append("</table>")
    parts.append("</body></html>\n")
    return "\n".join(parts)
