"""Reading the daemon's TSV files for the report, also while the daemon is still appending to them.

Every problem becomes a note the report shows (a missing file, an empty one,
an unfinished last record cut off) instead of an exception: a report on a run
that has just started is still a report.
"""

from __future__ import annotations

import io
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd


@dataclass
class Inputs:
    """The tables (empty frames when unusable) and what was wrong with them."""

    paths: dict[str, Path]
    frames: dict[str, pd.DataFrame]
    notes: list[str] = field(default_factory=list)

    def __getitem__(self, name: str) -> pd.DataFrame:
        """The table ``name``; an empty frame for one that was not read."""
        return self.frames.get(name, pd.DataFrame())

    def usable(self, name: str, *columns: str) -> bool:
        """True when the table has rows and every one of ``columns``."""
        frame = self[name]
        return len(frame) > 0 and all(c in frame.columns for c in columns)


def read_table(path: Path) -> tuple[pd.DataFrame, str | None]:
    """The table at ``path`` as strings, and a note when it is missing, empty or was cut short."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return pd.DataFrame(), f"{path} is missing"
    except OSError as exc:
        return pd.DataFrame(), f"{path} cannot be read: {exc.strerror or exc}"
    note = None
    if data and not data.endswith(b"\n"):
        # The daemon is appending right now: its last record is not complete yet.
        data = data[: data.rfind(b"\n") + 1]
        note = f"{path}: an unfinished last record (the daemon is writing) was left out"
    if not data.strip():
        return pd.DataFrame(), f"{path} is empty"
    try:
        frame = pd.read_csv(io.BytesIO(data), sep="\t", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        return pd.DataFrame(), f"{path} cannot be parsed: {' '.join(str(exc).split())}"
    if frame.empty:
        return frame, f"{path} has a header but no rows yet"
    return frame, note


def load(logs: Path, results: Path, tables: Mapping[str, tuple[str, str]],
         rare: Collection[str] = ()) -> Inputs:
    """Every table in ``tables`` (name -> (folder, file name); folder ``logs`` or ``results``).

    A ``rare`` table that does not exist yet is read as no rows, without a note.
    """
    folders = {"logs": logs, "results": results}
    paths = {name: folders[where] / filename for name, (where, filename) in tables.items()}
    inputs = Inputs(paths=paths, frames={})
    for name, path in paths.items():
        frame, note = read_table(path)
        inputs.frames[name] = frame
        if note and name in rare and not path.exists():
            continue
        if note:
            inputs.notes.append(note)
    return inputs
