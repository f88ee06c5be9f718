"""The report's figures, computed from the tables with pandas (no drawing here).

Each function takes the frames as :func:`reporting.load.load` reads them (all
strings) and returns plain numbers or small frames, so the tests can compare
them with the logs and the charts are drawn from exactly these values.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

import pandas as pd

from engine.daemon import FUNNEL, funnel_stage

FINAL = ("ACCEPT assignment", "REJECT assignment")
VERIFICATION = ("visit", "quality", "relevance")


def funnel(decisions: pd.DataFrame) -> dict[str, int]:
    """Pedestrian assignments that entered each stage, as the status page counts them."""
    counts = {stage: 0 for stage, _ in FUNNEL}
    if decisions.empty:
        return counts
    stages = [funnel_stage(h, e) for h, e in zip(decisions["handler"], decisions["event"])]
    frame = pd.DataFrame({"stage": stages, "pa": decisions["pedestrian_assignment_id"]}).dropna()
    for stage, n in frame.drop_duplicates().groupby("stage").size().items():
        counts[str(stage)] = int(n)
    return counts


def outcomes(decisions: pd.DataFrame) -> dict[str, int]:
    """Final decisions: accepted after all checks, accepted as no_org, rejected per handler."""
    out = {"accepted": 0, "no_org": 0}
    if decisions.empty:
        return out
    finals = decisions[decisions["event"].isin(FINAL)].drop_duplicates("pedestrian_assignment_id", keep="last")
    for row in finals.itertuples():
        if row.event == "ACCEPT assignment":
            out["accepted" if row.handler == "relevance" else "no_org"] += 1
        else:
            key = f"rejected at {row.handler}"
            out[key] = out.get(key, 0) + 1
    return out


def decisions_over_time(decisions: pd.DataFrame, events: tuple[str, ...]) -> pd.DataFrame:
    """Rows per time bucket (a column per event), the bucket chosen from the time span."""
    if decisions.empty:
        return pd.DataFrame()
    frame = decisions[decisions["event"].isin(events)].copy()
    frame["t"] = pd.to_datetime(frame["date_time"], errors="coerce")
    frame = frame.dropna(subset=["t"])
    if frame.empty:
        return pd.DataFrame()
    span = frame["t"].max() - frame["t"].min()
    bucket = "10s" if span <= pd.Timedelta(minutes=10) else "min" if span <= pd.Timedelta(hours=6) else "h" \
        if span <= pd.Timedelta(days=7) else "D"
    table = frame.groupby([frame["t"].dt.floor(bucket), "event"]).size().unstack(fill_value=0)
    return table.reindex(columns=[e for e in events if e in table.columns])


def time_to_decision(decisions: pd.DataFrame) -> pd.Series:
    """Minutes from each assignment's submit row to its final decision row."""
    if decisions.empty:
        return pd.Series(dtype=float)
    t = pd.to_datetime(decisions["date_time"], errors="coerce")
    frame = decisions.assign(t=t).dropna(subset=["t"])
    submitted = frame[frame["event"] == "submit"].groupby("pedestrian_assignment_id")["t"].min()
    decided = frame[frame["event"].isin(FINAL)].groupby("pedestrian_assignment_id")["t"].max()
    both = pd.concat([submitted.rename("submit"), decided.rename("final")], axis=1).dropna()
    return ((both["final"] - both["submit"]).dt.total_seconds() / 60.0).rename("minutes")


@dataclass(frozen=True)
class Agreement:
    """Per worker and pool: answers, share agreeing with the aggregate, and whether it stands out."""

    table: pd.DataFrame  # columns: pool, worker, answers, agreement, flagged
    threshold: dict[str, float]  # pool -> agreement below which a worker is flagged
    min_answers: int = 3  # fewer answers than this: too few to judge a worker


def worker_agreement(answers: pd.DataFrame, min_answers: int = 3) -> Agreement:
    """How often each worker's label equals the aggregated result, per verification pool.

    A worker with at least ``min_answers`` answers is flagged when their agreement
    is far below the rest of the pool: under the pool's first quartile minus 1.5
    interquartile ranges, and under 0.8 (a pool of careful workers has a tiny
    spread; a single miss must not flag anyone there).
    """
    empty = pd.DataFrame(columns=["pool", "worker", "answers", "agreement", "flagged"])
    if answers.empty or not {"handler", "worker", "label", "result"} <= set(answers.columns):
        return Agreement(empty, {}, min_answers)
    frame = answers[answers["handler"].isin(VERIFICATION)].copy()
    frame["agree"] = (frame["label"] == frame["result"]).astype(float)
    table = (frame.groupby(["handler", "worker"])["agree"].agg(answers="size", agreement="mean")
             .reset_index().rename(columns={"handler": "pool"}))
    thresholds: dict[str, float] = {}
    flagged = pd.Series(False, index=table.index)
    for pool, group in table.groupby("pool"):
        counted = group[group["answers"] >= min_answers]["agreement"]
        if len(counted) < 3:
            continue
        q1, q3 = counted.quantile(0.25), counted.quantile(0.75)
        limit = float(min(q1 - 1.5 * (q3 - q1), 0.8))
        thresholds[str(pool)] = limit
        flagged |= (table["pool"] == pool) & (table["answers"] >= min_answers) & (table["agreement"] < limit)
    table["flagged"] = flagged
    order = {p: i for i, p in enumerate(VERIFICATION)}
    table = table.sort_values(["pool", "agreement"], key=lambda c: c.map(order) if c.name == "pool" else c)
    return Agreement(table.reset_index(drop=True), thresholds, min_answers)


def spend_over_time(spend: pd.DataFrame) -> pd.DataFrame:
    """The daemon's running money totals (``logs/spend.tsv``) indexed by time, as floats for drawing."""
    if spend.empty or "date_time" not in spend.columns:
        return pd.DataFrame()
    frame = spend.assign(t=pd.to_datetime(spend["date_time"], errors="coerce")).dropna(subset=["t"]).set_index("t")
    columns = [c for c in ("rewards", "bonuses", "spent") if c in frame.columns]
    return frame[columns].apply(pd.to_numeric, errors="coerce").dropna(how="all")


def bonus_fields(bonus_tasks: pd.DataFrame) -> pd.Series:
    """Accepted bonus fields: how many assignments had each one paid."""
    if bonus_tasks.empty or "bonus_field" not in bonus_tasks.columns:
        return pd.Series(dtype=int)
    return bonus_tasks.drop_duplicates(["pedestrian_assignment_id", "bonus_field"])["bonus_field"].value_counts()


def money_total(frame: pd.DataFrame, column: str) -> Decimal:
    """Exact sum of a money column (strings as written); unreadable cells count as 0."""
    total = Decimal(0)
    for value in frame.get(column, pd.Series(dtype=str)):
        try:
            total += Decimal(str(value))
        except InvalidOperation:
            continue
    return total
