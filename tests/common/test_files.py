"""write_text_atomically: the whole new text or the old file, never half, and no temp file left behind."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from common.files import write_text_atomically


def test_it_creates_the_folder_and_replaces_the_file_whole(tmp_path: Path) -> None:
    target = tmp_path / "new" / "toloka.ini"
    write_text_atomically(target, "[Pipeline]\nperiod_seconds = 60\n")
    assert target.read_text(encoding="utf-8") == "[Pipeline]\nperiod_seconds = 60\n"
    write_text_atomically(target, "é\n", newline="")
    assert target.read_bytes() == "é\n".encode()
    assert stat.S_IMODE(target.stat().st_mode) & 0o077 == 0  # the temp file's private mode is kept
    assert sorted(p.name for p in target.parent.iterdir()) == ["toloka.ini"]


def test_a_failed_write_leaves_the_old_file_and_no_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "orgs.tsv"
    target.write_text("name\nold\n", encoding="utf-8")
    with pytest.raises(UnicodeEncodeError):
        write_text_atomically(target, "name\n\ud800\n")  # a lone surrogate: not UTF-8
    assert target.read_text(encoding="utf-8") == "name\nold\n"
    assert [p.name for p in tmp_path.iterdir()] == ["orgs.tsv"]
