"""The pedestrian pipeline's six tables: where they go and their columns."""

from __future__ import annotations

from collections.abc import Mapping

from engine.spec import TableSpec
from handlers.base import ANSWER_COLUMNS, DECISION_COLUMNS, HELD_COLUMNS
from handlers.relevance import bonus_columns, main_columns
from handlers.settings import PedestrianConfig
from handlers.visit import no_org_columns

# What one fact is in each table (engine.spec.TableSpec.key): the same decision made again after a
# start from scratch has another time and fresh links but the same key, so it is not written twice.
# A decision is its assignment, stage, group, event and comment (a GOOD image's comment is its photo);
# a reversed decision is another event, so it is kept. An answer is one worker's answer to one task in
# one assignment. An organization is accepted (main_tasks) or found missing (no_org) once per
# pedestrian assignment, and pays one bonus row per bonus field.
DECISION_KEY = ("pedestrian_assignment_id", "handler", "group", "event", "comment")
ANSWER_KEY = ("handler", "pool_id", "task", "assignment_id", "worker")
HELD_KEY = ("pedestrian_assignment_id", "stage")
ORGANIZATION_KEY = ("pedestrian_assignment_id",)
BONUS_KEY = ("pedestrian_assignment_id", "bonus_field")


def pedestrian_tables(config: PedestrianConfig) -> Mapping[str, TableSpec]:
    """``decisions`` and ``answers`` go to the logs folder, the results to the results folder."""
    p = config.pedestrian
    return {
        "decisions": TableSpec("logs", "decisions.tsv", DECISION_COLUMNS, key=DECISION_KEY),
        "answers": TableSpec("logs", "answers.tsv", ANSWER_COLUMNS, key=ANSWER_KEY),
        "held": TableSpec("results", "held.tsv", HELD_COLUMNS, rare=True, key=HELD_KEY),
        "no_org": TableSpec("results", "no_org.tsv", no_org_columns(p), key=ORGANIZATION_KEY),
        "main_tasks": TableSpec("results", "main_tasks.tsv", main_columns(p), key=ORGANIZATION_KEY),
        "bonus_tasks": TableSpec("results", "bonus_tasks.tsv", bonus_columns(p), key=BONUS_KEY),
    }
