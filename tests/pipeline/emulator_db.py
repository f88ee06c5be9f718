"""Read an emulator's SQLite file after a run (the emulator has stopped by then)."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any


def objects(db: Path, kind: str) -> list[dict[str, Any]]:
    """Every stored object of ``kind`` (task, assignment, bonus, ...), as the API serves it."""
    with sqlite3.connect(db) as conn:
        return [json.loads(doc) for (doc,) in conn.execute("SELECT doc FROM objects WHERE kind = ?", (kind,))]


def truth(db: Path, kind: str) -> dict[str, dict[str, Any]]:
    """The crowd's ground truth of ``kind`` (org, assignment, photo, ...)."""
    with sqlite3.connect(db) as conn:
        return {key: json.loads(doc) for key, doc in conn.execute("SELECT key, doc FROM truth WHERE kind = ?", (kind,))}
