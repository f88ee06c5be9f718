"""Local-folder behaviour: file:// links, atomic writes, a clear error for a bad folder."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import StorageError
from file_store import load_file_store_settings, make_key, open_file_store
from fs_helpers import ini_text, parse


async def test_links_are_file_urls_inside_the_folder(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    key = make_key("main", "a b", "ä.jpg")
    await store.put(key, b"x", "image/jpeg")
    link = await store.link(key)
    assert link.startswith("file://")
    assert link.endswith("/main/a%20b/%C3%A4.jpg")
    assert link == (tmp_path / "store-0" / "main" / "a b" / "ä.jpg").resolve().as_uri()  # what a reader opens
    assert (tmp_path / "store-0" / "main" / "a b" / "ä.jpg").read_bytes() == b"x"


async def test_no_temporary_files_are_left(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    await store.put("tmp/a.jpg", b"1", "image/jpeg")
    await store.copy("tmp/a.jpg", "main/a.jpg")
    names = sorted(p.name for p in (tmp_path / "store-0").rglob("*") if p.is_file())
    assert names == ["a.jpg", "a.jpg"]  # image/jpeg is what .jpg implies: no side files


async def test_unusual_content_types_are_recorded_and_follow_copies(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    await store.put("tmp/a.jpg", b"1", "image/webp")
    await store.copy("tmp/a.jpg", "main/a.jpg")
    assert (await store.info("main/a.jpg")).content_type == "image/webp"
    await store.put("tmp/a.jpg", b"2", "image/jpeg")  # back to the usual type: the record goes
    await store.copy("tmp/a.jpg", "main/a.jpg")
    assert (await store.info("main/a.jpg")).content_type == "image/jpeg"
    assert (await store.info("tmp/a.jpg")).content_type == "image/jpeg"


async def test_folder_that_is_a_file_names_the_setting(tmp_path: Path) -> None:
    blocker = tmp_path / "photos"
    blocker.write_text("not a folder")
    settings = load_file_store_settings(parse(ini_text("local", folder=blocker)))
    with pytest.raises(StorageError, match=r"fix \[FileStore\] local_folder in toloka.ini") as caught:
        await open_file_store(settings)
    assert caught.value.retryable is False
