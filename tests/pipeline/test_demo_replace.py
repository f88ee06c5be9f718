"""The demo says in one line when it deletes an earlier run in its folder, and never otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from demo import MARKER, _prepare


def earlier_run(folder: Path, *, finished: bool, seed: int = 1, pipeline: str = "pedestrian") -> None:
    (folder / "results").mkdir(parents=True)
    (folder / "results" / "main_tasks.tsv").write_text("x\n")
    (folder / MARKER).write_text(json.dumps({"seed": seed, "pipeline": pipeline, "finished": finished}))


def test_a_finished_run_is_replaced_with_one_line_saying_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "demo-run"
    earlier_run(folder, finished=True)
    assert _prepare(folder, 1) is False
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("demo: replacing the finished pedestrian run of ")
    assert lines[0].endswith(f" (seed 1) in {folder}: its results, logs and photos are deleted")
    assert not (folder / "results").exists()


def test_an_interrupted_run_of_another_seed_is_replaced_and_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo-run"
    earlier_run(folder, finished=False, seed=3, pipeline="find_items")
    assert _prepare(folder, 1) is False
    out = capsys.readouterr().out
    assert out.startswith("demo: replacing the interrupted find_items run of ") and "(seed 3)" in out


def test_an_interrupted_run_of_the_same_seed_is_resumed_not_replaced(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "demo-run"
    earlier_run(folder, finished=False)
    assert _prepare(folder, 1) is True
    out = capsys.readouterr().out
    assert "resuming the interrupted run" in out and "replacing" not in out
    assert (folder / "results" / "main_tasks.tsv").exists()


def test_a_new_folder_says_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _prepare(tmp_path / "new", 1) is False
    assert capsys.readouterr().out == ""
