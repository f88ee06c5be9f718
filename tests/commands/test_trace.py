"""``python pipeline.py trace``: a real organization of a finished demo run, traced from the files alone."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import keyring
import pytest
from commands_run import REPORTS, editable_copy, finished_run, tsv

import demo
from engine.trace import read_rows
from tables.tsv import TsvTable
from tools.harness import run_pipeline, truth

LINE = re.compile(r"^  (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d)  (\w+)\s+(.*)$")


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def trace(folder: Path, query: str) -> tuple[int, str, str]:
    done = run_pipeline(folder, "trace", "--config", str(folder / "toloka.ini"), query, timeout=60)
    return done.returncode, done.stdout, done.stderr


def accepted_one(folder: Path) -> str:
    """An organization accepted at the relevance check after more than one answer on some task."""
    main = tsv(folder / "results" / "main_tasks.tsv")
    return str(main["pedestrian_assignment_id"].iloc[0])


def test_trace_prints_every_answer_with_worker_skill_and_confidence_and_every_decision_in_time_order(
    folder: Path,
) -> None:
    unit = accepted_one(folder)
    code, out, err = trace(folder, unit)
    assert code == 0, err
    answers = tsv(folder / "logs" / "answers.tsv")
    answers = answers[answers["pedestrian_assignment_id"] == unit]
    decisions = tsv(folder / "logs" / "decisions.tsv")
    decisions = decisions[decisions["pedestrian_assignment_id"] == unit]
    assert len(answers) >= 3 and len(decisions) >= 4  # visit, quality and relevance answers; several decisions
    path = [LINE.match(line) for line in out.split("Path (UTC, oldest first):\n", 1)[1].splitlines()]
    lines = [(m.group(1), m.group(2), m.group(3)) for m in path if m]
    assert [t for t, _, _ in lines] == sorted(t for t, _, _ in lines), "not in time order"

    answer_lines = [text for _, kind, text in lines if kind == "answer"]
    assert len(answer_lines) == len(answers)
    for row in answers.itertuples():
        wanted = (f"task {row.task}", f"by worker {row.worker} (skill {row.skill}, assignment {row.assignment_id})",
                  f"verdict confidence {row.confidence}", repr(row.label))
        assert any(all(w in text for w in wanted) for text in answer_lines), row
    aggregates = [text for _, kind, text in lines if kind == "aggregate"]
    assert len(aggregates) == answers["task"].nunique()
    for task, rows in answers.groupby("task"):
        first = rows.iloc[0]
        assert any(f"task {task}" in a and f"verdict {first.result!r}, confidence {first.confidence} from "
                   f"{len(rows)} answers" in a for a in aggregates), task

    decision_lines = [text for _, kind, text in lines if kind == "decision"]
    assert len(decision_lines) == len(decisions)
    for text, row in zip(decision_lines, decisions.itertuples(), strict=True):  # file order is time order
        assert text.startswith(f"{row.handler}: {row.event}") and text.endswith(row.comment), (text, row)
    assert decision_lines[0].startswith("pedestrian: submit")
    assert any("ACCEPT assignment" in text for text in decision_lines)
    assert any(kind == "result" and "main_tasks.tsv" in text for _, kind, text in lines)
    # Its photos: the links the checkers saw and the kept result links.
    for url in set(answers["url"]) - {""}:
        assert url in out
    assert "(result)  file://" in out


def test_a_checking_task_or_a_checkers_assignment_finds_the_same_organization(folder: Path) -> None:
    answers = tsv(folder / "logs" / "answers.tsv")
    row = answers[answers["handler"] == "quality"].iloc[0]
    by_unit = trace(folder, row["pedestrian_assignment_id"])
    assert by_unit[0] == 0
    assert trace(folder, row["task"]) == by_unit
    assert trace(folder, row["assignment_id"]) == by_unit


def test_a_rejected_organization_shows_the_reason(folder: Path) -> None:
    decisions = tsv(folder / "logs" / "decisions.tsv")
    rejected = decisions[decisions["event"] == "REJECT assignment"].iloc[0]
    code, out, _ = trace(folder, rejected["name"])
    assert code == 0
    assert f"{rejected['handler']}: REJECT assignment: {rejected['comment']}" in out
    assert "main_tasks.tsv" not in out


def test_several_matches_are_listed_and_nothing_is_traced(folder: Path) -> None:
    decisions = tsv(folder / "logs" / "decisions.tsv")
    street = decisions[decisions["address"].str.contains("Street")]
    expected = set(street["pedestrian_assignment_id"])
    assert len(expected) >= 2
    code, out, _ = trace(folder, "street")  # case does not matter
    assert code == 1
    assert out.startswith(f"{len(expected)} pedestrian assignments match 'street'")
    assert {line.split()[0] for line in out.splitlines()[1:]} == expected
    assert "Path" not in out


def test_nothing_found_and_a_bad_config_are_one_clear_line(folder: Path, tmp_path: Path) -> None:
    code, out, err = trace(folder, "no such organization anywhere")
    assert (code, out) == (1, "")
    assert err.startswith("pipeline: trace: nothing in ") and "'no such organization anywhere'" in err
    done = run_pipeline(folder, "trace", "--config", str(tmp_path / "missing.ini"), "x")
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().count("\n") == 0 and "missing.ini" in done.stderr


def test_a_table_the_daemon_is_writing_is_read_without_its_unfinished_record(tmp_path: Path) -> None:
    path = tmp_path / "decisions.tsv"
    path.write_text('"date_time"\t"comment"\n"2026-01-01 00:00:00"\t"two\nlines"\n"2026-01-01 00:00:01"\t"half')
    rows, note = read_rows(path)
    assert rows == [{"date_time": "2026-01-01 00:00:00", "comment": "two\nlines"}]
    assert note is not None and "unfinished last record" in note
    assert read_rows(tmp_path / "absent.tsv") == ([], None)


def test_the_demo_summary_names_the_organizations_decided_differently_and_why(folder: Path) -> None:
    report = REPORTS[folder]
    expected = truth(folder / "emulator.sqlite", "assignment")
    decisions = tsv(folder / "logs" / "decisions.tsv")
    made = dict.fromkeys(decisions[decisions["event"] == "REJECT assignment"]["pedestrian_assignment_id"], "reject")
    made.update(dict.fromkeys(tsv(folder / "results" / "main_tasks.tsv")["pedestrian_assignment_id"], "accept"))
    made.update(dict.fromkeys(tsv(folder / "results" / "no_org.tsv")["pedestrian_assignment_id"], "no_org"))
    wrong = sorted(pa for pa, doc in expected.items() if made.get(pa) != doc["expected"])
    assert len(wrong) == report["score"]["decided"] - report["score"]["exact"]
    summary = demo.render(report, folder, 1.0, False)
    if not wrong:
        assert "Decided differently" not in summary
        return
    part = summary.split("Decided differently from the truth, and why:\n", 1)[1].split("\n\n", 1)[0]
    blocks = re.split(r"\n(?=  \S)", part)  # an organization's line, then its indented reasons
    assert len(blocks) == len(wrong)
    for pa, block in zip(wrong, sorted(blocks, key=lambda b: b.rsplit(" ", 1)[1]), strict=True):
        mine = decisions[decisions["pedestrian_assignment_id"] == pa]
        final = mine[mine["event"].isin(["ACCEPT assignment", "REJECT assignment"])].iloc[-1]
        assert block.lstrip().startswith(f"{final['name']}, {final['address']}: expected {expected[pa]['expected']}, "
                                         f"decided {made[pa]}")
        assert f"truth: {expected[pa]['kind']} pedestrian" in block
        assert f"pipeline: {final['handler']} {final['event']}" in block and final["comment"] in block
        assert block.endswith(f"the whole path: python pipeline.py trace {pa}")
        assert trace(folder, pa)[0] == 0


def test_workers_text_cannot_drive_the_terminal(folder: Path, tmp_path: Path) -> None:
    config = editable_copy(folder, tmp_path, "logs")
    logs = tmp_path / "logs"
    decisions = tsv(logs / "decisions.tsv")
    row = decisions.iloc[-1].to_dict()
    # A long name, so that it is the label the trace shows (the fullest one the rows give).
    row.update(name="Evil\x1b[2J Corporation of a rather long name", comment="line one\nline two\x07")
    TsvTable(logs / "decisions.tsv", list(decisions.columns)).append([row])
    done = run_pipeline(tmp_path, "trace", "--config", str(config), "Evil", timeout=60)
    assert done.returncode == 0, done.stderr
    assert "\x1b" not in done.stdout and "\x07" not in done.stdout
    assert done.stdout.startswith("Evil\\x1b[2J Corporation of a rather long name, ")
    assert "line one\\nline two\\x07" in done.stdout


def test_the_find_items_pipeline_declares_its_own_trace(tmp_path: Path) -> None:
    """The same command on the other pipeline: its tables and links come from its own declaration."""
    previous = keyring.get_keyring()
    keyring.set_keyring(demo.FolderKeyring(tmp_path / "keyring"))
    try:
        assert asyncio.run(demo.rehearse_find_items(tmp_path, seed=3, speed=240.0, period_s=1)) is not None
    finally:
        keyring.set_keyring(previous)
    verified = tsv(tmp_path / "results" / "verified_links.tsv").iloc[0]
    code, out, err = trace(tmp_path, verified["assignment_id"])
    assert code == 0, err
    answers = tsv(tmp_path / "logs" / "answers.tsv")
    answers = answers[answers["subject"] == verified["assignment_id"]]
    assert len(answers) >= 1
    for row in answers.itertuples():
        assert f"by worker {row.worker} (skill {row.skill}, assignment {row.assignment_id})" in out
    assert f"verdict {verified['verdict']!r}, confidence {verified['confidence']}" in out
    assert f"image  {verified['image']}" in out and f"found link  {verified['link']}" in out
    image = verified["image"].rsplit("/", 1)[1]
    code, out, _ = trace(tmp_path, image)
    assert code == 1 and "find_items assignments match" in out


def test_a_reader_that_stops_reading_ends_it_quietly(folder: Path) -> None:
    """``trace ID | head -1``: the reader is gone before the path is printed; exit 141 as SIGPIPE, no traceback."""
    import os
    import subprocess
    import sys

    from tools.harness import REPO, keyring_env

    read_end, write_end = os.pipe()
    os.close(read_end)  # as head, once it has its line
    try:
        done = subprocess.run([sys.executable, "pipeline.py", "trace", "--config", str(folder / "toloka.ini"),
                               accepted_one(folder)], cwd=REPO, env=keyring_env(folder), stdout=write_end,
                              stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert (done.returncode, done.stderr) == (141, "")
    assert trace(folder, accepted_one(folder))[0] == 0  # with a reader, the same trace prints and exits 0
