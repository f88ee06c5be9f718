"""engine/intake.py: the record of sent batches survives torn writes and refuses damage; rows read as written."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from common.errors import StateError
from engine.intake import (
    IntakeError,
    IntakeRecord,
    IntakeSpec,
    Unit,
    _chunks,
    check_rows,
    read_sheet,
    task_bytes,
)


def _task(n: int) -> dict[str, object]:
    return {"pool_id": "7", "input_values": {"name": f"org {n}"}, "overlap": 1}


def test_begun_and_finished_batches_come_back_and_refused_items_stay_unsent(tmp_path: Path) -> None:
    record = IntakeRecord.open(tmp_path, "7")
    first = record.begin(["a", "b", "c"], [_task(1), _task(2), _task(3)])
    record.finish(first, {1: "input_values.name: required"})
    second = record.begin(["d"], [_task(4)])
    again = IntakeRecord.open(tmp_path, "7")
    assert again.sent == {"a", "c", "d"}
    assert list(again.open_batches) == [second.seq] and again.open_batches[second.seq] == second
    assert (tmp_path / "intake-7.jsonl").stat().st_mode & 0o077 == 0
    # The next batch gets the next place, so its operation_id differs even for the same keys.
    retry = again.begin(["a", "b", "c"], [_task(1), _task(2), _task(3)])
    assert retry.seq == 3 and retry.operation_id != first.operation_id


def test_the_operation_id_is_fixed_by_the_batch(tmp_path: Path) -> None:
    one = IntakeRecord.open(tmp_path / "one", "7").begin(["a", "b"], [_task(1), _task(2)])
    two = IntakeRecord.open(tmp_path / "two", "7").begin(["a", "b"], [_task(1), _task(2)])
    other = IntakeRecord.open(tmp_path / "three", "7").begin(["a", "c"], [_task(1), _task(3)])
    assert one.operation_id == two.operation_id != other.operation_id


def test_a_torn_last_line_is_cut_off_and_appending_goes_on(tmp_path: Path) -> None:
    record = IntakeRecord.open(tmp_path, "7")
    record.finish(record.begin(["a"], [_task(1)]), {})
    path = tmp_path / "intake-7.jsonl"
    whole = path.read_bytes()
    with path.open("ab") as handle:
        handle.write(b'0badc0de {"seq":2,"op":"beg')  # a kill in the middle of an append
    again = IntakeRecord.open(tmp_path, "7")
    assert path.read_bytes() == whole and again.sent == {"a"} and not again.open_batches
    again.begin(["b"], [_task(2)])
    assert IntakeRecord.open(tmp_path, "7").sent == {"a", "b"}


def test_a_damaged_line_before_the_end_stops_with_the_file_named(tmp_path: Path) -> None:
    record = IntakeRecord.open(tmp_path, "7")
    record.finish(record.begin(["a"], [_task(1)]), {})
    record.begin(["b"], [_task(2)])
    path = tmp_path / "intake-7.jsonl"
    lines = path.read_bytes().split(b"\n")
    lines[0] = lines[0].replace(b'"a"', b'"z"')
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(StateError, match=r"intake-7\.jsonl: line 1 is damaged"):
        IntakeRecord.open(tmp_path, "7")


def test_a_record_others_may_write_is_refused(tmp_path: Path) -> None:
    IntakeRecord.open(tmp_path, "7").begin(["a"], [_task(1)])
    os.chmod(tmp_path / "intake-7.jsonl", 0o666)
    with pytest.raises(StateError, match="writable by group or others"):
        IntakeRecord.open(tmp_path, "7")


def _spec() -> IntakeSpec:
    def read(row: object) -> Unit | str:
        assert isinstance(row, dict)
        return Unit(dict(row), (row["id"].strip(),)) if row["id"].strip() else "missing id"
    return IntakeSpec(pool="p", columns=("id",), optional=("note",), read=read, same="same id")


def test_rows_keep_their_starting_line_across_quoted_newlines_and_bad_quotes(tmp_path: Path) -> None:
    path = tmp_path / "work.tsv"
    path.write_text('id\tnote\n1\t"two\nlines"\n\n"2" x\tbad quote\n3\t\n1\tagain\n\t4\n5\t\t\n', encoding="utf-8")
    checked = check_rows(read_sheet(path), _spec())
    assert [g.line for g in checked.good] == [2, 6, 9]
    assert checked.refused == [
        f"{path}:5: a cell that starts with a quote goes on after its closing quote (quote the whole cell, "
        'inner quotes doubled: "a ""b"" c")',
        f"{path}:7: duplicate of line 2 (same id)",
        f"{path}:8: missing id",
    ]
    assert checked.good[0].input_values == {"id": "1", "note": "two\nlines"}


def test_an_unknown_column_is_a_note_and_a_duplicate_header_refuses_the_file(tmp_path: Path) -> None:
    path = tmp_path / "work.csv"
    path.write_text("id,colour\n1,red\n", encoding="utf-8")
    checked = check_rows(read_sheet(path), _spec())
    assert checked.notes == [
        f"{path}:1: column 'colour' is not an input of the p pool's tasks; its values are not sent"]
    assert checked.good[0].input_values == {"id": "1"}
    path.write_text("id;id\n1;2\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="column 'id' appears twice"):
        read_sheet(path)
    path.write_text("\n\n", encoding="utf-8")
    with pytest.raises(IntakeError, match="empty file"):
        read_sheet(path)


@pytest.mark.parametrize("text", [",,,\n,,,\n", ";;\n", " , ,\n\n,\n"])
def test_a_csv_of_separators_only_is_an_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "blank.csv"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(IntakeError) as err:
        read_sheet(path)
    assert err.value.lines == (f"{path}: empty file: expected a header line naming the columns",)


def test_batches_end_at_the_byte_limit_as_well_as_the_row_limit() -> None:
    rows = [object()] * 7
    tasks = [{"input_values": {"note": "x" * 100}} for _ in range(6)] + [{"input_values": {"note": "x" * 1000}}]
    one = task_bytes(tasks[0])
    slices = list(_chunks(rows, tasks, 4, 3 * one))  # type: ignore[arg-type]
    assert slices == [(0, 3), (3, 6), (6, 7)]  # 3 fit the bytes; the big last row goes alone
    assert list(_chunks(rows, tasks, 2, 10**9)) == [(0, 2), (2, 4), (4, 6), (6, 7)]  # type: ignore[arg-type]
    assert list(_chunks(rows, tasks, 5, 10)) == [(i, i + 1) for i in range(7)]  # type: ignore[arg-type]


def test_a_read_only_record_creates_nothing_and_cuts_nothing(tmp_path: Path) -> None:
    absent = IntakeRecord.open(tmp_path / "saves", "7", read_only=True)
    assert not (tmp_path / "saves").exists() and absent.sent == set() and not absent.open_batches
    record = IntakeRecord.open(tmp_path, "7")
    record.begin(["a"], [_task(1)])
    path = tmp_path / "intake-7.jsonl"
    with path.open("ab") as handle:
        handle.write(b'0badc0de {"seq":2,"op":"beg')
    torn = path.read_bytes()
    again = IntakeRecord.open(tmp_path, "7", read_only=True)
    assert again.sent == {"a"} and list(again.open_batches) == [1] and path.read_bytes() == torn
