"""The retention listing: old tmp/<date>/ folders are listed, nothing is deleted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from file_store import load_file_store_settings, open_file_store
from file_store.retention import main, old_tmp_folders
from fs_helpers import ini_text, parse


def test_old_tmp_folders_lists_only_dated_folders_past_the_cutoff() -> None:
    folders = ["tmp/2026-10-01/", "tmp/2026-11-21/", "tmp/2026-10-22/", "tmp/2026-10-23/", "tmp/notes/",
               "tmp/2026-1-1/", "main/2026-01-01/", "tmp/2026-02-30/"]  # fmt: skip
    assert old_tmp_folders(folders, date(2026, 11, 22), keep_days=30) == ["tmp/2026-10-01/", "tmp/2026-10-22/"]
    assert old_tmp_folders(folders, date(2026, 11, 22), keep_days=0) == [
        "tmp/2026-10-01/", "tmp/2026-10-22/", "tmp/2026-10-23/", "tmp/2026-11-21/",
    ]  # fmt: skip


async def test_command_lists_old_folders_of_the_configured_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "toloka.ini"
    config.write_text(ini_text("local", folder=tmp_path / "photos"), encoding="utf-8")
    async with await open_file_store(load_file_store_settings(parse(config.read_text()))) as store:
        for day in ["2026-09-30", "2026-11-20"]:
            await store.put(f"tmp/{day}/a1/imgs_facade/0.jpg", b"x", "image/jpeg")
        await store.put("main/a1/imgs_facade/0.jpg", b"x", "image/jpeg")
    # main() runs its own event loop, so it goes to a thread here.
    import asyncio

    status = await asyncio.to_thread(main, ["--config", str(config), "--keep-days", "7", "--today", "2026-11-22"])
    out, err = capsys.readouterr()
    assert status == 0
    assert out.splitlines() == ["tmp/2026-09-30/"]
    assert "nothing was deleted" in err
    assert (tmp_path / "photos" / "tmp" / "2026-09-30" / "a1" / "imgs_facade" / "0.jpg").exists()


def test_command_reports_config_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "toloka.ini"
    config.write_text(ini_text("local", FileStore__backend="tape"), encoding="utf-8")
    assert main(["--config", str(config)]) == 1
    assert "[FileStore] backend" in capsys.readouterr().err
