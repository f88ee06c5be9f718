"""The report of a pipeline that is not the pedestrian one: it reads only what the spec declares.

A hand-made ``parcels`` pipeline (pools intake -> review -> audit) with its own column names
(``stamp``, ``parcel``, ``stage_pool``, ``what``), events, answer log (``votes.tsv``) and result
table (``shipping_manifest.tsv``), written by hand. Its report has the pipeline's own numbers
and nothing of the pedestrian pipeline; the funnel is the one the engine counts for the status
page from the same rows; the spec's own fields (as engine.spec will carry them), the values an
entry point declares on its behalf, and the derived defaults are read in that order.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from engine.accounting import Stats
from engine.actions import AppendRows
from engine.spec import Decision, DecisionLog, FunnelStage, ObserverSpec, PipelineSpec, TableSpec
from engine.ticker import Engine
from reporting.build import build_report
from reporting.charts import read_chart_data
from reporting.plan import AnswerLog, CountChart, Outcome, plan

POOLS = {"intake": "11", "review": "12", "audit": "13"}
JOURNAL = ("stamp", "parcel", "stage_pool", "what", "note")
# (minute past 10:00, parcel, pool, event): p1 shipped, p2 failed review, p3 waved through at
# review, p4 failed audit, p5 still at intake. p3 enters review twice (two boxes): counted once.
ROWS = [
    (0, "p1", "intake", "received"), (0, "p1", "intake", "queued for review"),
    (1, "p2", "intake", "received"), (1, "p2", "intake", "queued for review"),
    (2, "p3", "intake", "received"), (2, "p3", "intake", "queued for review"),
    (2, "p3", "intake", "queued for review"),
    (2, "p4", "intake", "received"), (2, "p4", "intake", "queued for review"),
    (3, "p1", "review", "labelled"), (3, "p1", "review", "queued for audit"),
    (4, "p3", "review", "PASSED"),
    (5, "p2", "review", "labelled"), (5, "p2", "review", "FAILED"),
    (6, "p4", "review", "queued for audit"),
    (10, "p1", "audit", "PASSED"),
    (20, "p4", "audit", "FAILED"),
    (30, "p5", "intake", "received"),
]
FUNNEL = (
    FunnelStage("received", "received"),
    FunnelStage("reviewed", "queued for review"),
    FunnelStage("audited", "queued for audit"),
    FunnelStage("shipped", "PASSED", pool="audit"),
)
FIELDS: dict[str, Any] = {
    "time_column": "stamp",
    "start_event": "received",
    "final_events": ("PASSED", "FAILED"),
    "timeline_events": ("received", "PASSED", "FAILED", "labelled"),
    "outcomes": (Outcome("shipped", "PASSED", pool="audit"), Outcome("waved through", "PASSED"),
                 Outcome("failed {pool}", "FAILED")),
    "answer_log": AnswerLog("votes", pool_column="pool_name", worker_column="grader", label_column="said",
                            result_column="consensus"),
    "report_charts": (CountChart("carriers", "Carriers used", table="manifest", column="carrier",
                                 unique_by=("parcel",), unit="parcels", money_column="fee", money_label="fees"),),
}
LOG_FIELDS = ("time_column", "start_event", "final_events", "timeline_events")


def _tables(config: Any) -> Mapping[str, TableSpec]:
    return {
        "journal": TableSpec("logs", "journal.tsv", JOURNAL),
        "votes": TableSpec("logs", "votes.tsv", ("when", "pool_name", "task", "grader", "said", "consensus")),
        "manifest": TableSpec("results", "shipping_manifest.tsv", ("parcel", "carrier", "fee")),
        "returns": TableSpec("results", "returns.tsv", ("parcel", "reason")),
    }


def _nothing(state: Any, batch: Any, ctx: Any) -> Decision:
    return Decision()


def parcels_spec(*, future: bool) -> PipelineSpec[Any, Any]:
    """The parcels pipeline; ``future``: its spec declares the report's fields (else they are derived)."""
    log_args: dict[str, Any] = {"table": "journal", "pool_column": "stage_pool", "event_column": "what",
                                "subject_column": "parcel", "label_column": None, "comment_column": "note"}
    common: dict[str, Any] = {
        "name": "parcels", "title": "parcels are received, reviewed and audited before they ship",
        "sections": {"Parcels": frozenset({"pool_id"})}, "parse_config": lambda cfg: SimpleNamespace(),
        "pools": lambda config: dict(POOLS),
        "observers": tuple(ObserverSpec(pool, event=lambda c: "accepted", handler=_nothing) for pool in POOLS),
        "new_state": dict, "tables": _tables, "funnel": FUNNEL,
    }
    if not future:
        return PipelineSpec(decision_log=DecisionLog(**log_args), **common)
    log = DecisionLog(**log_args, **{k: FIELDS[k] for k in LOG_FIELDS})
    return PipelineSpec(decision_log=log, **{k: v for k, v in FIELDS.items() if k not in LOG_FIELDS}, **common)


def write_tsv(path: Path, columns: Sequence[str], rows: Sequence[Sequence[object]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = ["\t".join(columns), *("\t".join(str(v) for v in row) for row in rows)]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def journal_rows(time_column: str) -> list[dict[str, str]]:
    return [{time_column: f"2025-03-01 10:{m:02d}:00", "parcel": parcel, "stage_pool": pool, "what": event,
             "note": ""} for m, parcel, pool, event in ROWS]


@pytest.fixture
def folders(tmp_path: Path) -> tuple[Path, Path]:
    logs, results = tmp_path / "var" / "log", tmp_path / "out"
    write_tsv(logs / "journal.tsv", JOURNAL, [tuple(r.values()) for r in journal_rows("stamp")])
    votes = []
    for pool, workers in (("review", {"w1": 4, "w2": 4, "w3": 4, "w4": 4, "w5": 0}),
                          ("audit", {"w6": 4, "w7": 4, "w8": 4})):
        for worker, agreeing in workers.items():
            votes += [("2025-03-01 10:05:00", pool, f"t{i}", worker, "ok" if i < agreeing else "bad", "ok")
                      for i in range(4)]
    votes += [("2025-03-01 10:05:00", "audit", f"t{i}", "w9", "bad", "ok") for i in range(2)]  # too few to judge
    write_tsv(logs / "votes.tsv", ("when", "pool_name", "task", "grader", "said", "consensus"), votes)
    write_tsv(logs / "spend.tsv", ("date_time", "rewards", "bonuses", "spent", "intake_rewards", "review_rewards",
                                   "audit_rewards", "bonuses_paid", "max_spend", "held"),
              [("2025-03-01 10:05:00", "1.00", "0", "1.00", "0.60", "0.40", "0", "0", "", "0"),
               ("2025-03-01 10:20:00", "2.50", "0", "2.50", "1.20", "0.80", "0.50", "0", "", "0")])
    write_tsv(results / "shipping_manifest.tsv", ("parcel", "carrier", "fee"),
              [("p1", "DHL", "1.50"), ("p3", "DHL", "1.25"), ("p3", "DHL", "1.25"), ("p4", "UPS", "2.00")])
    return logs, results


PEDESTRIAN_WORDS = ("pedestrian", "visit", "quality", "relevance", "no_org", "submit", "handler",
                    "ACCEPT assignment", "bonus_field", "main_tasks", "decisions.tsv", "answers.tsv")


def test_a_pipeline_of_another_shape_gets_its_own_report(folders: tuple[Path, Path], tmp_path: Path) -> None:
    logs, results = folders
    out = tmp_path / "report"
    report = build_report(logs, results, out, parcels_spec(future=True), config=SimpleNamespace(),
                          now=datetime(2025, 3, 1, 11, 0))
    assert report.notes == [f"{results / 'returns.tsv'} is missing"]
    assert sorted(report.charts) == sorted(["funnel", "decisions_over_time", "time_to_decision", "worker_agreement",
                                            "spend_over_time", "carriers"])
    data = {name: read_chart_data(path) for name, path in report.charts.items()}
    assert data["funnel"] == {
        "funnel": {"received": 5, "reviewed": 4, "audited": 2, "shipped": 1},
        "outcomes": {"shipped": 1, "waved through": 1, "failed review": 1, "failed audit": 1},
    }
    assert data["decisions_over_time"]["totals"] == {"received": 5, "PASSED": 2, "FAILED": 2, "labelled": 2}
    # p1 10 min, p2 4, p3 2, p4 18; p5 is not decided yet.
    assert data["time_to_decision"] == {"count": 4, "median_minutes": 7.0, "max_minutes": 18.0}
    assert data["worker_agreement"] == {"review": {"workers": 5, "flagged": ["w5"]},
                                        "audit": {"workers": 4, "flagged": []}}
    assert data["spend_over_time"] == {"rewards": 2.5, "bonuses": 0.0, "spent": 2.5}
    assert data["carriers"] == {"DHL": 2, "UPS": 1}  # p3's two rows count once

    page = report.index.read_text(encoding="utf-8")
    assert "<title>parcels pipeline report</title>" in page
    assert "parcels are received, reviewed and audited before they ship" in page
    assert "Funnel: received -&gt; reviewed -&gt; audited -&gt; shipped" in page
    assert "Time from received to decision" in page
    assert '<tr><td>fees</td><td class="n">6.00</td></tr>' in page  # every row's fee, exactly
    assert '<tr><td>shipping_manifest.tsv rows</td><td class="n">4</td></tr>' in page
    assert '<tr><td>returns.tsv rows</td><td class="n">0</td></tr>' in page
    assert '<tr><td>review: worker w5</td><td class="n">0.00 of 4 answers - far below the rest</td></tr>' in page
    for word in PEDESTRIAN_WORDS:
        assert word not in page, word
    assert not (out / "bonus_fields.png").exists()


def test_the_funnel_is_the_one_the_engine_counts_for_the_status_page(folders: tuple[Path, Path],
                                                                     tmp_path: Path) -> None:
    logs, results = folders
    spec = parcels_spec(future=True)
    report = build_report(logs, results, tmp_path / "report", spec, config=SimpleNamespace())
    # The engine counts decision-log rows as the handlers append them: here one AppendRows per parcel and minute.
    engine = SimpleNamespace(spec=spec, recent_decisions=deque(maxlen=50))
    stats = Stats()
    batches: dict[tuple[int, str], list[dict[str, str]]] = {}
    for (minute, parcel, _pool, _event), row in zip(ROWS, journal_rows("stamp"), strict=True):
        batches.setdefault((minute, parcel), []).append(row)
    for (minute, parcel), rows in batches.items():
        action = AppendRows("journal", f"{parcel}/{minute}", tuple(rows))
        Engine._count_decisions(engine, stats, action, datetime(2025, 3, 1, 10, minute))  # type: ignore[arg-type]
    assert read_chart_data(report.charts["funnel"])["funnel"] == stats.funnel
    assert sum(pool.decisions.get("received", 0) for pool in stats.pools.values()) == 5


def test_without_declarations_the_report_derives_what_it_can(tmp_path: Path) -> None:
    """No config, no report fields: tables by convention (<table>.tsv, answers in answers.tsv as both pipelines
    have them), the clock from the first stage, outcomes from the stages after it."""
    logs, results = tmp_path / "logs", tmp_path / "results"
    rows = journal_rows("date_time")
    write_tsv(logs / "journal.tsv", tuple(rows[0]), [tuple(r.values()) for r in rows])
    spec = parcels_spec(future=False)
    p = plan(spec)
    assert p.time_column == "date_time" and p.start_event == "received" and p.subject_noun == "parcels"
    assert p.final_events == ("queued for review", "queued for audit", "PASSED")
    assert p.pools == tuple(POOLS) and p.charts == ()
    assert p.tables == {"journal": ("logs", "journal.tsv"), "answers": ("logs", "answers.tsv"),
                        "engine:spend": ("logs", "spend.tsv")}
    report = build_report(logs, results, tmp_path / "report", spec)
    assert sorted(report.charts) == ["decisions_over_time", "funnel", "time_to_decision"]
    assert report.notes == [f"{logs / 'answers.tsv'} is missing", f"{logs / 'spend.tsv'} is missing"]
    funnel = read_chart_data(report.charts["funnel"])
    assert funnel["funnel"] == {"received": 5, "reviewed": 4, "audited": 2, "shipped": 1}
    # Where each parcel's last row of a stage after the first left it (p3 passed at review: no stage names that).
    assert funnel["outcomes"] == {"reviewed": 1, "audited": 1, "shipped": 1, "PASSED at review": 1}
    page = report.index.read_text(encoding="utf-8")
    for word in PEDESTRIAN_WORDS:
        assert word == "answers.tsv" or word not in page, word
