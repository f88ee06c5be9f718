"""Local-folder behaviour: file:// links, atomic writes, a clear error for a bad folder."""

from __future__ import annotations

import asyncio
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


async def test_puts_made_together_share_thread_hops(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    bodies = {f"tmp/day/a{n}/imgs_menu/0.jpg": b"\xff\xd8" + bytes([n]) * 100 for n in range(30)}
    await asyncio.gather(*(store.put(key, body, "image/jpeg") for key, body in bodies.items()))
    for key, body in bodies.items():
        assert (tmp_path / "store-0" / key).read_bytes() == body
    # 30 writes made at once: a hop each would be 30. The store's 16 slots let 16 in first, and the
    # rest follow as those finish, so a few hops carry them all.
    assert 1 <= store._disk.hops < 10


async def test_a_failing_write_fails_its_own_put_only(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    await store.put("x", b"a file where a folder is needed", "application/octet-stream")
    good = [f"main/{n}.jpg" for n in range(5)]
    results = await asyncio.gather(store.put("x/0.jpg", b"photo", "image/jpeg"),
                                   *(store.put(key, b"photo", "image/jpeg") for key in good), return_exceptions=True)
    assert isinstance(results[0], StorageError) and "x/0.jpg" in str(results[0])
    assert results[1:] == [None] * len(good)
    assert all((tmp_path / "store-0" / key).read_bytes() == b"photo" for key in good)


async def test_a_put_cancelled_in_the_queue_still_lands_before_the_store_closes(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    put = asyncio.create_task(store.put("tmp/a.jpg", b"photo", "image/jpeg"))
    await asyncio.sleep(0)  # the put is queued, its hop not started
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put
    await store.aclose()  # waits for the queue: the write was not withdrawn (a repeat would redo it identically)
    assert (tmp_path / "store-0" / "tmp" / "a.jpg").read_bytes() == b"photo"


async def test_a_copy_is_a_hard_link_that_a_later_put_does_not_change(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("local")
    await store.put("tmp/day/a1/imgs_menu/0.jpg", b"first", "image/jpeg")
    await store.copy("tmp/day/a1/imgs_menu/0.jpg", "main/a1/imgs_menu/0.jpg")
    source, copy = tmp_path / "store-0" / "tmp/day/a1/imgs_menu/0.jpg", tmp_path / "store-0" / "main/a1/imgs_menu/0.jpg"
    assert copy.stat().st_ino == source.stat().st_ino  # no bytes copied
    await store.put("tmp/day/a1/imgs_menu/0.jpg", b"second", "image/jpeg")  # a rename: the copy keeps its file
    assert copy.read_bytes() == b"first"
    assert source.read_bytes() == b"second"
    source.unlink()  # the tmp/ photo cleaned up: the copy stays
    assert copy.read_bytes() == b"first"
    assert (await store.info("main/a1/imgs_menu/0.jpg")).size == len(b"first")


@pytest.mark.skipif(
    not Path("/dev/shm").is_dir() or Path("/dev/shm").stat().st_dev == Path("/tmp").stat().st_dev,
    reason="needs /dev/shm on another file system than /tmp (a Linux container or machine has it)",
)
async def test_a_copy_onto_another_disk_copies_the_bytes(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The operator put main/ on another disk with a symlink: a link cannot cross it (EXDEV).
    import tempfile

    store = await make_store("local")
    with tempfile.TemporaryDirectory(dir="/dev/shm") as other_disk:
        (tmp_path / "store-0" / "main").symlink_to(other_disk)
        await store.put("tmp/a.jpg", b"photo", "image/webp")
        await store.copy("tmp/a.jpg", "main/x/a.jpg")
        copied = Path(other_disk) / "x" / "a.jpg"
        assert copied.read_bytes() == b"photo"
        assert copied.stat().st_dev != (tmp_path / "store-0" / "tmp" / "a.jpg").stat().st_dev
        assert (await store.info("main/x/a.jpg")).content_type == "image/webp"
        assert [p.name for p in Path(other_disk).rglob("*") if p.is_file()] == ["a.jpg"]  # no temporary left


async def test_a_temporary_name_taken_already_is_passed_over(  # type: ignore[no-untyped-def]
    make_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import itertools

    from file_store import local

    store = await make_store("local")
    folder = tmp_path / "store-0" / "tmp"
    folder.mkdir()
    monkeypatch.setattr(local, "_temporary_numbers", itertools.count())
    # The put's numbers 0 and 1 are taken (it gets 2), then the copy's 3 and 4 (it gets 5).
    taken = [("a.jpg", 0), ("a.jpg", 1), ("b.jpg", 3), ("b.jpg", 4)]
    leftovers = [folder / f".{name}.{local._PROCESS_TAG}-{n}.part" for name, n in taken]
    for leftover in leftovers:
        leftover.write_bytes(b"half a photo")
    await store.put("tmp/a.jpg", b"whole", "image/jpeg")
    await store.copy("tmp/a.jpg", "tmp/b.jpg")
    assert (folder / "a.jpg").read_bytes() == (folder / "b.jpg").read_bytes() == b"whole"
    assert all(leftover.read_bytes() == b"half a photo" for leftover in leftovers)  # not ours to take
    assert next(local._temporary_numbers) == 6  # each went past its taken numbers, one by one


async def test_a_file_put_by_path_is_copied_not_linked(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The caller's own file: if it were linked, rewriting it in place would change the object.
    store = await make_store("local")
    mine = tmp_path / "upload.jpg"
    mine.write_bytes(b"original")
    await store.put("main/upload.jpg", mine, "image/jpeg")
    stored = tmp_path / "store-0" / "main" / "upload.jpg"
    assert stored.stat().st_ino != mine.stat().st_ino
    with mine.open("r+b") as handle:
        handle.write(b"HALF")
    assert stored.read_bytes() == b"original"


async def test_a_copy_of_a_symlinked_object_is_the_file_it_points_to(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # link(2) does not follow its source: a relative symlink linked as it is would dangle in main/.
    store = await make_store("local")
    await store.put("tmp/real.jpg", b"photo", "image/jpeg")
    (tmp_path / "store-0" / "tmp" / "alias.jpg").symlink_to("real.jpg")
    await store.copy("tmp/alias.jpg", "main/x/a.jpg")
    copied = tmp_path / "store-0" / "main" / "x" / "a.jpg"
    assert not copied.is_symlink()
    assert copied.read_bytes() == b"photo"
    assert (await store.info("main/x/a.jpg")) is not None


async def test_a_copy_into_a_missing_disk_names_the_target_not_a_missing_object(  # type: ignore[no-untyped-def]
    make_store, tmp_path: Path
) -> None:
    # main/ is a symlink to a disk that is not mounted: the photo is there, its destination is not.
    store = await make_store("local")
    await store.put("tmp/a.jpg", b"photo", "image/jpeg")
    (tmp_path / "store-0" / "main").symlink_to(tmp_path / "unmounted" / "main")
    with pytest.raises(StorageError) as caught:
        await store.copy("tmp/a.jpg", "main/x/a.jpg")
    assert "no such object" not in str(caught.value)
    assert "'main/x/a.jpg'" in str(caught.value)
    with pytest.raises(StorageError, match="no such object"):
        await store.copy("tmp/gone.jpg", "main/x/a.jpg")


async def test_a_copy_replayed_after_a_crash_leaves_no_temporary_file(make_store, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    # The second copy finds main/ already a link to the same file: rename(2) then does nothing.
    store = await make_store("local")
    await store.put("tmp/a.jpg", b"photo", "image/jpeg")
    await store.copy("tmp/a.jpg", "main/a.jpg")
    await store.copy("tmp/a.jpg", "main/a.jpg")
    await store.copy("main/a.jpg", "main/a.jpg")  # onto itself: the same case
    names = sorted(p.name for p in (tmp_path / "store-0").rglob("*") if p.is_file())
    assert names == ["a.jpg", "a.jpg"]
    assert (tmp_path / "store-0" / "main" / "a.jpg").read_bytes() == b"photo"


async def test_a_streamed_put_cancelled_while_its_file_is_made_leaves_nothing(  # type: ignore[no-untyped-def]
    make_store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from file_store import local

    store = await make_store("local")
    started, release = threading.Event(), threading.Event()
    real = local._temporary_beside

    def slow(target: Path) -> tuple[int, str]:  # holds the worker thread until the put is cancelled
        started.set()
        release.wait(10)
        return real(target)

    monkeypatch.setattr(local, "_temporary_beside", slow)

    async def stream():  # type: ignore[no-untyped-def]
        yield b"never written"

    put = asyncio.create_task(store.put("tmp/streamed.jpg", stream(), "image/jpeg"))
    assert await asyncio.to_thread(started.wait, 10)
    put.cancel()
    with pytest.raises(asyncio.CancelledError):
        await put
    release.set()  # the thread now makes its file: it must be closed and removed
    folder = tmp_path / "store-0" / "tmp"
    for _ in range(200):
        await asyncio.sleep(0.01)
        if folder.is_dir() and not any(folder.iterdir()):
            break
    assert folder.is_dir() and list(folder.iterdir()) == []
