"""Keyed tables: one row per fact, whichever run wrote it, and legitimately different facts kept."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pandas as pd
import pytest

from tables.tsv import TsvTable, count_records

COLUMNS = ("date_time", "assignment", "event", "comment")
KEY = ("assignment", "event", "comment")


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def row(time: str, assignment: str, event: str, comment: str = "") -> dict[str, object]:
    return {"date_time": time, "assignment": assignment, "event": event, "comment": comment}


def test_a_fact_decided_again_at_another_time_is_not_written_twice(tmp_path: Path) -> None:
    path = tmp_path / "decisions.tsv"
    TsvTable(path, COLUMNS, KEY).append([row("10:00", "a1", "ACCEPT"), row("10:00", "a2", "REJECT", "blurry")])
    # A later run (a fresh start) opens the table anew and decides the same facts at another time.
    again = TsvTable(path, COLUMNS, KEY)
    written = again.append([row("11:00", "a1", "ACCEPT"), row("11:00", "a2", "REJECT", "blurry"),
                            row("11:00", "a3", "ACCEPT")])
    assert written == 1
    frame = read(path)
    assert frame["assignment"].tolist() == ["a1", "a2", "a3"]
    assert frame["date_time"].tolist() == ["10:00", "10:00", "11:00"]  # the first writing is kept


def test_a_different_fact_on_the_same_assignment_is_kept(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "decisions.tsv", COLUMNS, KEY)
    table.append([row("10:00", "a1", "REJECT", "blurry")])
    assert table.append([row("12:00", "a1", "REVERSED to ACCEPT", "by a person")]) == 1
    assert table.append([row("12:00", "a1", "REJECT", "another reason")]) == 1
    assert len(read(table.path)) == 3


def test_a_batch_repeating_a_key_writes_it_once_and_append_once_reports_it(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", COLUMNS, KEY)
    assert table.append_once([row("1", "a", "E"), row("2", "a", "E")]) is True
    assert table.append_once([row("3", "a", "E")]) is False
    assert read(table.path)["date_time"].tolist() == ["1"]


def test_key_values_match_whatever_text_workers_typed(tmp_path: Path) -> None:
    hostile = ['tab\there', 'new\nline "quoted"', "=cmd", "nul\x00byte", "x" * 200_000]
    path = tmp_path / "t.tsv"
    TsvTable(path, COLUMNS, KEY).append([row("1", "a", "E", text) for text in hostile])
    assert TsvTable(path, COLUMNS, KEY).append([row("2", "a", "E", text) for text in hostile]) == 0
    assert len(read(path)) == len(hostile)


def test_key_fields_are_not_confused_by_where_one_ends(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", COLUMNS, KEY)
    table.append([row("1", "ab", "c")])
    assert table.append([row("1", "a", "bc")]) == 1


def test_an_unkeyed_table_appends_every_row(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", COLUMNS)
    assert table.append([row("1", "a", "E"), row("1", "a", "E")]) == 2
    assert len(read(table.path)) == 2


def test_a_key_column_the_table_lacks_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="nope"):
        TsvTable(tmp_path / "t.tsv", COLUMNS, ("assignment", "nope"))


def test_a_table_from_an_earlier_release_is_indexed_after_its_new_columns_are_added(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    TsvTable(path, COLUMNS[:3]).append([{"date_time": "1", "assignment": "a", "event": "E"}])
    table = TsvTable(path, COLUMNS, KEY)
    assert table.append([row("2", "a", "E", "")]) == 0  # the old row has an empty comment: the same fact
    assert table.append([row("2", "a", "E", "new")]) == 1


def another_owner() -> tuple[int, int]:
    """A uid and gid other than this process's that it may give a file (root: any; else another own group)."""
    if os.geteuid() == 0:
        return 4242, 4343
    others = [gid for gid in os.getgroups() if gid != os.getegid()]
    if not others:
        pytest.skip("not root and in no second group: no other owner or group to give a file")
    return os.geteuid(), others[0]


def test_adding_columns_keeps_the_owner_group_and_mode_of_the_table(tmp_path: Path) -> None:
    """Run as root beside the service user, an upgraded table must stay the service user's, or its appends fail."""
    path = tmp_path / "t.tsv"
    TsvTable(path, COLUMNS[:3]).append([{"date_time": "1", "assignment": "a", "event": "E"}])
    uid, gid = another_owner()
    os.chown(path, uid, gid)
    os.chmod(path, 0o640)
    # The first append adds the comment column (a rewrite through a temporary file), then appends.
    assert TsvTable(path, COLUMNS, KEY).append([row("2", "b", "E")]) == 1
    assert list(read(path).columns) == list(COLUMNS) and len(read(path)) == 2
    after = path.stat()
    assert (after.st_uid, after.st_gid, after.st_mode & 0o7777) == (uid, gid, 0o640)


def test_concurrent_appends_of_the_same_fact_write_it_once(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", COLUMNS, KEY)
    barrier = threading.Barrier(8)

    def write(i: int) -> None:
        barrier.wait()
        table.append([row(str(i), "a", "E"), row(str(i), f"own{i}", "E")])

    threads = [threading.Thread(target=write, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    frame = read(table.path)
    assert (frame["assignment"] == "a").sum() == 1 and len(frame) == 9


def test_a_large_table_is_indexed_once_quickly(tmp_path: Path) -> None:
    import time

    path = tmp_path / "answers.tsv"
    TsvTable(path, COLUMNS).append([row("t", f"a{i}", "E", f"c{i}") for i in range(200_000)])
    table = TsvTable(path, COLUMNS, KEY)
    started = time.monotonic()
    assert table.append([row("u", "a5", "E", "c5")]) == 0
    first = time.monotonic() - started
    started = time.monotonic()
    for i in range(100):  # later appends use the index in memory, not the file
        table.append([row("u", f"a{i}", "E", f"c{i}")])
    later = time.monotonic() - started
    assert first < 10 and later < first
    assert count_records(path) == 200_000


def test_count_records_reads_only(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    assert count_records(path) == 0 and not path.exists()
    TsvTable(path, COLUMNS).append([row("1", "a", "E", "multi\nline"), row("2", "b", "E")])
    assert count_records(path) == 2
