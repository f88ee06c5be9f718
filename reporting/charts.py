"""The report's PNG charts, drawn with matplotlib's object API (no pyplot state, no display).

Each chart carries the numbers it was drawn from in a PNG text chunk
(``pipeline-data``, JSON), so a reader or a test can check a picture against
the logs without reading pixels.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # files only, never a window

import pandas as pd
from matplotlib.figure import Figure

from reporting.numbers import Agreement

BLUE, RED, GREY, GREEN, ORANGE = "#3b6fd8", "#d64541", "#98a2b3", "#2e9d5b", "#e08a1e"
PURPLE, TEAL = "#7a4fc2", "#1f9aa8"
DATA_KEY = "pipeline-data"


def _save(fig: Figure, path: Path, data: Any) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={DATA_KEY: json.dumps(data, ensure_ascii=False, default=str)})
    return path


def funnel_chart(counts: Mapping[str, int], outcomes: Mapping[str, int], path: Path, *, noun: str) -> Path:
    """Horizontal bars, one per funnel stage (units of work, ``noun``); outcomes that are not stages in the title."""
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    stages = list(counts)[::-1]
    values = [counts[s] for s in stages]
    bars = ax.barh(stages, values, color=BLUE)
    ax.bar_label(bars, labels=[str(v) for v in values], padding=3)
    exits = ", ".join(f"{k} {v}" for k, v in outcomes.items() if k not in counts)
    ax.set_title(f"Funnel of {noun}" + (f"\n(also: {exits})" if exits else ""))
    ax.set_xlabel(noun)
    ax.set_xlim(0, max([1, *values]) * 1.15)
    return _save(fig, path, {"funnel": dict(counts), "outcomes": dict(outcomes)})


def _palette(events: Sequence[str]) -> list[str]:
    colours = [GREY, GREEN, RED, ORANGE, BLUE, PURPLE, TEAL]
    return [colours[i % len(colours)] for i, _ in enumerate(events)]


def decisions_chart(table: pd.DataFrame, path: Path, events: Sequence[str] = ()) -> Path:
    """Stacked bars of decision events per time bucket (colours by the event's place: start, accept, reject, ...)."""
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    labels = [t.strftime("%m-%d %H:%M:%S") for t in table.index]
    bottom = [0] * len(table)
    colours = dict(zip(events, _palette(events), strict=True))
    for event in table.columns:
        values = [int(v) for v in table[event]]
        ax.bar(range(len(table)), values, bottom=bottom, label=event, color=colours.get(event, BLUE))
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    step = max(1, len(labels) // 10)
    ax.set_xticks(range(0, len(labels), step), labels[::step], rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("decisions")
    ax.set_title("Decisions over time (UTC)")
    ax.legend(fontsize=8)
    data = {str(e): int(table[e].sum()) for e in table.columns}
    return _save(fig, path, {"totals": data, "buckets": len(table)})


def time_to_decision_chart(minutes: pd.Series, path: Path, *, start: str, noun: str) -> Path:
    """Histogram of minutes from a unit's ``start`` row to its final decision."""
    fig = Figure(figsize=(8, 4))
    ax = fig.add_subplot()
    ax.hist(minutes, bins=min(20, max(5, len(minutes) // 2)), color=BLUE)
    median = float(minutes.median())
    ax.axvline(median, color=RED, linestyle="--", label=f"median {median:.1f} min")
    ax.set_xlabel(f"minutes from {start} to the final decision")
    ax.set_ylabel(noun)
    ax.set_title(f"Time from {start} to decision")
    ax.legend()
    return _save(fig, path, {"count": len(minutes), "median_minutes": round(median, 3),
                             "max_minutes": round(float(minutes.max()), 3)})


def agreement_chart(agreement: Agreement, path: Path) -> Path:
    """One panel per pool (in the table's order): each worker's agreement with the aggregate, outliers in red."""
    table = agreement.table
    pools = [str(p) for p in dict.fromkeys(table["pool"])]
    fig = Figure(figsize=(9, 2.2 + 1.6 * len(pools)))
    axes = fig.subplots(len(pools), 1, squeeze=False)[:, 0]
    for ax, pool in zip(axes, pools, strict=True):
        rows = table[table["pool"] == pool]
        colours = [RED if f else GREY if n < agreement.min_answers else BLUE
                   for f, n in zip(rows["flagged"], rows["answers"], strict=True)]
        ax.bar(range(len(rows)), rows["agreement"], color=colours)
        ax.set_xticks(range(len(rows)), [str(w)[-6:] for w in rows["worker"]], rotation=90, fontsize=6)
        ax.set_ylim(0, 1.05)
        ax.set_ylabel("agreement")
        limit = agreement.threshold.get(pool)
        if limit is not None:
            ax.axhline(limit, color=RED, linestyle=":", linewidth=1)
        flagged = int(rows["flagged"].sum())
        ax.set_title(f"{pool}: {len(rows)} workers, {flagged} far below the rest (red); "
                     f"grey: fewer than {agreement.min_answers} answers", fontsize=10)
    fig.suptitle("Agreement of each worker with the aggregated answer")
    data = {
        pool: {"workers": int((table["pool"] == pool).sum()),
               "flagged": sorted(table[(table["pool"] == pool) & table["flagged"]]["worker"].tolist())}
        for pool in pools
    }
    return _save(fig, path, data)


def spend_chart(series: pd.DataFrame, max_spend: float | None, path: Path) -> Path:
    """Running rewards, bonuses and their sum, with the spending limit when there is one."""
    fig = Figure(figsize=(9, 4))
    ax = fig.add_subplot()
    colours = {"rewards": BLUE, "bonuses": ORANGE, "spent": "#1d2433"}
    for column in series.columns:
        ax.step(series.index, series[column], where="post", label=column, color=colours.get(column, GREY))
    if max_spend is not None:
        ax.axhline(max_spend, color=RED, linestyle="--", label=f"max_spend {max_spend:g}")
    ax.set_ylabel("money")
    ax.set_title("Spend over time (UTC)")
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    last = series.iloc[-1]
    return _save(fig, path, {c: round(float(last[c]), 6) for c in series.columns})


def count_chart(counts: pd.Series, path: Path, *, title: str, unit: str) -> Path:
    """Bars: how many ``unit`` have each value (a declared count chart, e.g. the bonus fields accepted)."""
    fig = Figure(figsize=(8, 3.5))
    ax = fig.add_subplot()
    bars = ax.bar([str(i) for i in counts.index], [int(v) for v in counts], color=ORANGE)
    ax.bar_label(bars, padding=2)
    ax.set_ylabel(unit)
    ax.set_title(title)
    ax.set_ylim(0, max([1, *counts]) * 1.2)
    return _save(fig, path, {str(k): int(v) for k, v in counts.items()})


def read_chart_data(path: Path) -> Any:
    """The numbers a chart was drawn from (its ``pipeline-data`` text chunk)."""
    from PIL import Image

    with Image.open(path) as image:
        return json.loads(image.text[DATA_KEY])
