"""The report's figures, computed from the tables with pandas (no drawing here).

Each function takes the frames as :func:`reporting.load.load` reads them (all
strings) and the pipeline's :class:`~reporting.plan.ReportPlan` (which columns,
events and stages to count), and returns plain numbers or small frames, so the tests can compare
them with the logs and the charts are drawn from exactly these values.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pandas as pd

from engine.spec import AnswerLog, CountChart, funnel_entries
from reporting.plan import ReportPlan


def funnel(decisions: pd.DataFrame, plan: ReportPlan) -> dict[str, int]:
    """Units of work that entered each stage of the pipeline's funnel, as the status page counts them."""
    counts = {stage.name: 0 for stage in plan.funnel}
    if decisions.empty or plan.log is None:
        return counts
    # Column labels read from a TSV header are strings; pandas types them as any hashable.
    rows = [{str(column): value for column, value in row.items()} for row in decisions.to_dict("records")]
    for stage, _subject in funnel_entries(plan.funnel, plan.log, rows):
        counts[stage] += 1
    return counts


def outcomes(decisions: pd.DataFrame, plan: ReportPlan) -> dict[str, int]:
    """How units of work ended: each unit's last final row, named by the plan's outcomes."""
    out = {o.name: 0 for o in plan.outcomes if "{pool}" not in o.name}
    log = plan.log
    if decisions.empty or log is None:
        return out
    finals = decisions[decisions[log.event_column].isin(plan.final_events)]
    finals = finals.drop_duplicates(log.subject_column, keep="last")
    for pool, event in zip(finals[log.pool_column], finals[log.event_column], strict=True):
        name = plan.outcome_of(str(pool), str(event))
        out[name] = out.get(name, 0) + 1
    return out


def decisions_over_time(decisions: pd.DataFrame, plan: ReportPlan) -> pd.DataFrame:
    """Rows per time bucket (a column per timeline event), the bucket chosen from the time span."""
    log, events = plan.log, plan.timeline_events
    if decisions.empty or log is None:
        return pd.DataFrame()
    frame = decisions[decisions[log.event_column].isin(events)].copy()
    frame["t"] = pd.to_datetime(frame[plan.time_column], errors="coerce")
    frame = frame.dropna(subset=["t"])
    if frame.empty:
        return pd.DataFrame()
    span = frame["t"].max() - frame["t"].min()
    bucket = "10s" if span <= pd.Timedelta(minutes=10) else "min" if span <= pd.Timedelta(hours=6) else "h" \
        if span <= pd.Timedelta(days=7) else "D"
    table = frame.groupby([frame["t"].dt.floor(bucket), log.event_column]).size().unstack(fill_value=0)
    return table.reindex(columns=[e for e in events if e in table.columns])


def time_to_decision(decisions: pd.DataFrame, plan: ReportPlan) -> pd.Series:
    """Minutes from each unit's start row (its first row, without a start event) to its last final row."""
    log = plan.log
    if decisions.empty or log is None:
        return pd.Series(dtype=float)
    t = pd.to_datetime(decisions[plan.time_column], errors="coerce")
    frame = decisions.assign(t=t).dropna(subset=["t"])
    started = frame if plan.start_event is None else frame[frame[log.event_column] == plan.start_event]
    first = started.groupby(log.subject_column)["t"].min()
    decided = frame[frame[log.event_column].isin(plan.final_events)].groupby(log.subject_column)["t"].max()
    both = pd.concat([first.rename("start"), decided.rename("final")], axis=1).dropna()
    return ((both["final"] - both["start"]).dt.total_seconds() / 60.0).rename("minutes")


@dataclass(frozen=True)
class Agreement:
    """Per worker and pool: answers, share agreeing with the aggregate, and whether it stands out."""

    table: pd.DataFrame  # columns: pool, worker, answers, agreement, flagged
    threshold: dict[str, float]  # pool -> agreement below which a worker is flagged
    min_answers: int = 3  # fewer answers than this: too few to judge a worker


def worker_agreement(answers: pd.DataFrame, log: AnswerLog | None, pools: Sequence[str] = (),
                     min_answers: int = 3) -> Agreement:
    """How often each worker's answer equals the aggregated result, per pool of the answer log.

    A worker with at least ``min_answers`` answers is flagged when their agreement
    is far below the rest of the pool: under the pool's first quartile minus 1.5
    interquartile ranges, and under 0.8 (a pool of careful workers has a tiny
    spread; a single miss must not flag anyone there). Pools come in the order
    of ``pools`` (the pipeline's flow), any other after them.
    """
    empty = pd.DataFrame(columns=["pool", "worker", "answers", "agreement", "flagged"])
    if log is None or answers.empty:
        return Agreement(empty, {}, min_answers)
    columns = {log.pool_column: "pool", log.worker_column: "worker", log.label_column: "label",
               log.result_column: "result"}
    if not set(columns) <= set(answers.columns):
        return Agreement(empty, {}, min_answers)
    frame = pd.DataFrame({new: answers[old] for old, new in columns.items()})
    frame["agree"] = (frame["label"] == frame["result"]).astype(float)
    table = frame.groupby(["pool", "worker"])["agree"].agg(answers="size", agreement="mean").reset_index()
    thresholds: dict[str, float] = {}
    flagged = pd.Series(False, index=table.index)
    for pool, group in table.groupby("pool"):
        counted = group[group["answers"] >= min_answers]["agreement"]
        if len(counted) < 3:
            continue
        q1, q3 = float(counted.quantile(0.25)), float(counted.quantile(0.75))
        limit = min(q1 - 1.5 * (q3 - q1), 0.8)
        thresholds[str(pool)] = limit
        flagged |= (table["pool"] == pool) & (table["answers"] >= min_answers) & (table["agreement"] < limit)
    table["flagged"] = flagged
    order = {p: i for i, p in enumerate(pools)}
    table["rank"] = [order.get(str(p), len(order)) for p in table["pool"]]
    table = table.sort_values(["rank", "pool", "agreement"]).drop(columns="rank")
    return Agreement(table.reset_index(drop=True), thresholds, min_answers)


def spend_over_time(spend: pd.DataFrame) -> pd.DataFrame:
    """The daemon's running money totals (``logs/spend.tsv``) indexed by time, as floats for drawing."""
    if spend.empty or "date_time" not in spend.columns:
        return pd.DataFrame()
    frame = spend.assign(t=pd.to_datetime(spend["date_time"], errors="coerce")).dropna(subset=["t"]).set_index("t")
    columns = [c for c in ("rewards", "bonuses", "spent") if c in frame.columns]
    numeric: pd.DataFrame = frame[columns].apply(pd.to_numeric, errors="coerce")
    return numeric.dropna(how="all")


def count_values(frame: pd.DataFrame, chart: CountChart) -> pd.Series:
    """How many rows (each combination of ``chart.unique_by`` once) have each value of ``chart.column``."""
    needed = {chart.column, *chart.unique_by}
    if frame.empty or not needed <= set(frame.columns):
        return pd.Series(dtype=int)
    rows = frame.drop_duplicates(list(chart.unique_by)) if chart.unique_by else frame
    return rows[chart.column].value_counts()


def money_total(frame: pd.DataFrame, column: str) -> Decimal:
    """Exact sum of a money column (strings as written); unreadable cells count as 0."""
    total = Decimal(0)
    for value in frame.get(column, pd.Series(dtype=str)):
        try:
            total += Decimal(str(value))
        except InvalidOperation:
            continue
    return total
