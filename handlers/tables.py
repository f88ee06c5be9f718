"""The pedestrian pipeline's six tables: where they go and their columns."""

from __future__ import annotations

from collections.abc import Mapping

from engine.spec import TableSpec
from handlers.base import ANSWER_COLUMNS, DECISION_COLUMNS, HELD_COLUMNS
from handlers.relevance import bonus_columns, main_columns
from handlers.settings import PedestrianConfig
from handlers.visit import no_org_columns


def pedestrian_tables(config: PedestrianConfig) -> Mapping[str, TableSpec]:
    """``decisions`` and ``answers`` go to the logs folder, the results to the results folder."""
    p = config.pedestrian
    return {
        "decisions": TableSpec("logs", "decisions.tsv", DECISION_COLUMNS),
        "answers": TableSpec("logs", "answers.tsv", ANSWER_COLUMNS),
        "held": TableSpec("results", "held.tsv", HELD_COLUMNS, rare=True),
        "no_org": TableSpec("results", "no_org.tsv", no_org_columns(p)),
        "main_tasks": TableSpec("results", "main_tasks.tsv", main_columns(p)),
        "bonus_tasks": TableSpec("results", "bonus_tasks.tsv", bonus_columns(p)),
    }
