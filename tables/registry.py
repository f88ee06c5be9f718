"""The five tables the daemon writes, with their columns, by logical name."""

from __future__ import annotations

from pathlib import Path

from handlers.base import ANSWER_COLUMNS, DECISION_COLUMNS, PedestrianRules
from handlers.relevance import bonus_columns, main_columns
from handlers.visit import no_org_columns
from tables.tsv import TsvTable


def open_tables(logs: Path, results: Path, pedestrian: PedestrianRules) -> dict[str, TsvTable]:
    """``decisions`` and ``answers`` go to the logs folder, the results to the results folder."""
    return {
        "decisions": TsvTable(logs / "decisions.tsv", DECISION_COLUMNS),
        "answers": TsvTable(logs / "answers.tsv", ANSWER_COLUMNS),
        "no_org": TsvTable(results / "no_org.tsv", no_org_columns(pedestrian)),
        "main_tasks": TsvTable(results / "main_tasks.tsv", main_columns(pedestrian)),
        "bonus_tasks": TsvTable(results / "bonus_tasks.tsv", bonus_columns(pedestrian)),
    }


def repair_tables(tables: dict[str, TsvTable]) -> None:
    """Check headers and cut torn tails of the tables that exist (blocking: run it in a thread)."""
    for table in tables.values():
        table.repair()
