"""TSV tables: hostile text round-trips through pandas, replays add nothing, torn tails are cut."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tables.tsv import TableError, TsvTable, clean

HOSTILE = [
    "tab\there",
    "new\nline",
    "windows\r\nline",
    "lone\rreturn",
    'quote " inside',
    '"starts with a quote',
    "=cmd|' /C calc'!A0",
    "+1+1",
    "-2",
    "@SUM(A1)",
    "Сходненская ул., 56 — кафе «Ромашка» 🍰",
    "",
    "trailing backslash \\",
    "x" * 20_000,
]


def read(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)


def test_hostile_worker_text_round_trips_through_pandas(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "decisions.tsv", ["id", "comment"])
    table.append([{"id": str(i), "comment": text} for i, text in enumerate(HOSTILE)])
    frame = read(table.path)
    assert list(frame.columns) == ["id", "comment"]
    assert frame["comment"].tolist() == HOSTILE
    assert len(frame) == len(HOSTILE)


def test_default_pandas_read_keeps_one_row_per_record(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", ["a", "b"])
    table.append([{"a": "x\ty", "b": "1"}, {"a": "p\nq", "b": "2"}])
    frame = pd.read_csv(table.path, sep="\t")
    assert frame.shape == (2, 2)
    assert frame["a"].tolist() == ["x\ty", "p\nq"]


def test_characters_no_tsv_can_hold_become_replacement_chars(tmp_path: Path) -> None:
    assert clean("a\x00b\ud800c") == "a\ufffdb\ufffdc"
    table = TsvTable(tmp_path / "t.tsv", ["a"])
    table.append([{"a": "nul\x00byte"}])
    assert read(table.path)["a"].tolist() == ["nul\ufffdbyte"]


def test_append_once_skips_a_replayed_batch(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", ["k", "v"])
    batch = [{"k": "1", "v": "multi\nline"}, {"k": "2", "v": "b"}]
    assert table.append_once(batch) is True
    table.append([{"k": "3", "v": "later"}])
    assert TsvTable(table.path, ["k", "v"]).append_once(batch) is False
    assert read(table.path)["k"].tolist() == ["1", "2", "3"]


def test_append_once_is_not_fooled_by_a_record_that_only_ends_the_same(tmp_path: Path) -> None:
    table = TsvTable(tmp_path / "t.tsv", ["k"])
    table.append([{"k": "a"}])
    # The record "a" is a suffix of the bytes of record "xa"? No: quoting keeps them distinct.
    assert table.append_once([{"k": "xa"}]) is True
    assert table.append_once([{"k": "a"}]) is False
    assert read(table.path)["k"].tolist() == ["a", "xa"]


def test_a_torn_record_is_cut_on_open_and_whole_records_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    table = TsvTable(path, ["k", "v"])
    table.append([{"k": "1", "v": "keep\nme"}])
    with path.open("ab") as handle:  # what a power loss mid-write could leave
        handle.write(b'"2"\t"half a field\n with a newline')
    TsvTable(path, ["k", "v"]).append_once([{"k": "3", "v": "after"}])
    assert read(path)[["k", "v"]].values.tolist() == [["1", "keep\nme"], ["3", "after"]]


def test_a_file_with_other_columns_is_refused_with_its_name(tmp_path: Path) -> None:
    path = tmp_path / "t.tsv"
    TsvTable(path, ["a", "b"]).append([{"a": "1"}])
    with pytest.raises(TableError, match=r"t\.tsv has other columns") as caught:
        TsvTable(path, ["a", "c"]).append([{"a": "1"}])
    assert caught.value.retryable is False  # a person moves the file aside or fixes the configuration


def test_unknown_column_is_a_programming_error(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="unknown columns"):
        TsvTable(tmp_path / "t.tsv", ["a"]).append([{"b": "1"}])


def test_an_unwritable_folder_gives_a_clear_error(tmp_path: Path) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the results folder should be")  # fails even for root
    with pytest.raises(TableError, match=r"cannot write .*results/t\.tsv") as caught:
        TsvTable(blocker / "t.tsv", ["a"]).append([{"a": "1"}])
    assert caught.value.retryable is False  # the next tick would meet the same file


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_is_not_retryable(tmp_path: Path) -> None:
    """A full disk waits for a person: TableError with retryable False, message kept.

    The table file is replaced by a symlink to /dev/full, whose every write fails in
    the kernel with ENOSPC: a real full-disk error through the real os.write, with no
    mount and no patching. (Only ``append`` here: reading /dev/full never ends, so the
    tail check of ``append_once`` cannot be pointed at it.)
    """
    path = tmp_path / "decisions.tsv"
    table = TsvTable(path, ["a"])
    table.append([{"a": "before"}])
    path.unlink()
    path.symlink_to("/dev/full")
    with pytest.raises(TableError, match=r"cannot write .*decisions\.tsv: No space left on device") as caught:
        table.append([{"a": "after"}])
    assert caught.value.retryable is False


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_full_disk_when_the_header_is_written_is_not_retryable(tmp_path: Path) -> None:
    """The first write of a new table (its header) meets ENOSPC from /dev/full too."""
    path = tmp_path / "answers.tsv"
    path.symlink_to("/dev/full")
    with pytest.raises(TableError, match="No space left on device") as caught:
        TsvTable(path, ["a"]).append_once([{"a": "1"}])
    assert caught.value.retryable is False


def test_concurrent_first_appends_write_one_header_and_every_row(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    for attempt in range(20):  # the race needs the file to be new: try it on many new files
        table = TsvTable(tmp_path / f"t{attempt}.tsv", ["k"])
        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(lambda n: table.append_once([{"k": str(n)}]), range(16)))
        frame = read(table.path)
        assert sorted(frame["k"].tolist(), key=int) == [str(n) for n in range(16)]
        assert table.path.read_text().count('"k"\n') == 1
