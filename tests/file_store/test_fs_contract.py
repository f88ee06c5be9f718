"""The contract every file store keeps, run against local, moto's S3 and Azurite.

Links are fetched for real (aiohttp for http links, the file for file:// links) and the
bytes compared, so a passing test means a worker's browser would see the photo.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from common.errors import StorageError
from file_store import FileStore, InvalidKeyError, ObjectInfo, make_key
from fs_helpers import fetch, photo


async def test_put_bytes_then_link_serves_same_bytes_and_type(store: FileStore) -> None:
    key = make_key("tmp", "2026-11-22", "a1", "imgs_facade", "0.jpg")
    data = photo(200_000, seed=1)
    await store.put(key, data, "image/jpeg")
    status, body, content_type = await fetch(await store.link(key), store, key)
    assert (status, body, content_type) == (200, data, "image/jpeg")


async def test_put_stream_and_path(store: FileStore, tmp_path: Path) -> None:
    data = photo(300_001, seed=2)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 65_536):
            yield data[start : start + 65_536]

    source = tmp_path / "upload.png"
    source.write_bytes(data[::-1])
    await store.put("tmp/stream.jpg", chunks(), "image/jpeg")
    await store.put("tmp/file.png", source, "image/png")
    assert (await fetch(await store.link("tmp/stream.jpg"), store, "tmp/stream.jpg"))[1] == data
    assert await fetch(await store.link("tmp/file.png"), store, "tmp/file.png") == (200, data[::-1], "image/png")


@pytest.mark.parametrize("size", [10, 3 * 1024 * 1024])
async def test_failed_stream_raises_its_own_error_and_stores_nothing(store: FileStore, size: int) -> None:
    async def broken() -> AsyncIterator[bytes]:
        yield b"h" * size
        raise ConnectionResetError("download from Toloka broke")

    with pytest.raises(ConnectionResetError, match="download from Toloka broke"):
        await store.put("tmp/broken.jpg", broken(), "image/jpeg")
    assert not await store.exists("tmp/broken.jpg")


async def test_put_overwrites(store: FileStore) -> None:
    await store.put("tmp/x.jpg", b"first", "image/jpeg")
    await store.put("tmp/x.jpg", b"second", "image/png")
    assert await store.info("tmp/x.jpg") == ObjectInfo(size=6, content_type="image/png")
    await store.put("tmp/x.jpg", b"third!!", "image/jpeg")
    assert await store.info("tmp/x.jpg") == ObjectInfo(size=7, content_type="image/jpeg")


async def test_empty_object(store: FileStore) -> None:
    await store.put("tmp/empty.txt", b"", "text/plain")
    assert await store.info("tmp/empty.txt") == ObjectInfo(size=0, content_type="text/plain")


async def test_copy_keeps_bytes_and_content_type_and_is_idempotent(store: FileStore) -> None:
    src = make_key("tmp", "2026-11-22", "a1", "imgs_menu", "1.jpg")
    dst = make_key("main_bonus", "a1", "imgs_menu", "1.jpg")
    data = photo(120_000, seed=3)
    await store.put(src, data, "image/webp")
    await store.copy(src, dst)
    await store.copy(src, dst)  # a replay after a crash
    assert await store.info(dst) == ObjectInfo(size=len(data), content_type="image/webp")
    assert await fetch(await store.link(dst), store, dst) == (200, data, "image/webp")
    assert await store.exists(src), "copy never removes the source"


async def test_copy_of_missing_source_is_a_storage_error(store: FileStore) -> None:
    with pytest.raises(StorageError, match="tmp/nothing.jpg") as caught:
        await store.copy("tmp/nothing.jpg", "main/nothing.jpg")
    assert caught.value.retryable is False  # no such object: trying again cannot help
    assert not await store.exists("main/nothing.jpg")


async def test_exists_and_info(store: FileStore) -> None:
    assert not await store.exists("tmp/a.jpg")
    assert await store.info("tmp/a.jpg") is None
    await store.put("tmp/a.jpg", b"abc", "image/jpeg")
    assert await store.exists("tmp/a.jpg")
    assert not await store.exists("tmp/a.jp")
    assert not await store.exists("tmp")  # a folder is not an object


@pytest.mark.parametrize(
    "parts",
    [
        ("main", "Кафе «Ромашка»", "photo 1+2 ä.jpg"),
        ("main", "a/../../etc", "passwd"),
        ("main", "100% real", "?#&=.jpg"),
        ("main", "tab\there", "new\nline\u202e.jpg"),
    ],
)
async def test_hostile_names_round_trip(store: FileStore, parts: tuple[str, ...]) -> None:
    key = make_key(*parts)
    data = photo(5_000, seed=len(key))
    await store.put(key, data, "image/jpeg")
    assert await fetch(await store.link(key), store, key) == (200, data, "image/jpeg")
    assert await store.list_folders("main/") == [key.rsplit("/", 1)[0] + "/"]


async def test_list_folders(store: FileStore) -> None:
    for key in ["tmp/2026-11-01/a/0.jpg", "tmp/2026-11-01/b/0.jpg", "tmp/2026-11-02/a/0.jpg", "main/a/0.jpg"]:
        await store.put(key, b"x", "image/jpeg")
    await store.put("tmp/loose.jpg", b"x", "image/jpeg")
    assert await store.list_folders("") == ["main/", "tmp/"]
    assert await store.list_folders("tmp/") == ["tmp/2026-11-01/", "tmp/2026-11-02/"]
    assert await store.list_folders("nothing/") == []


@pytest.mark.parametrize("key", ["", "/tmp/a.jpg", "tmp/../a.jpg", "tmp//a.jpg", "tmp/a\\b", "tmp/\x00", "tmp/.hidden"])
async def test_unsafe_keys_are_refused_before_any_io(store: FileStore, key: str) -> None:
    with pytest.raises(InvalidKeyError) as caught:
        await store.put(key, b"x", "image/jpeg")
    assert caught.value.retryable is False
    with pytest.raises(InvalidKeyError):
        await store.copy("tmp/a.jpg", key)
    with pytest.raises(InvalidKeyError):
        await store.link(key)


async def test_many_concurrent_operations(store: FileStore) -> None:
    keys = [make_key("tmp", "bulk", f"{n}.jpg") for n in range(40)]
    await asyncio.gather(*(store.put(key, photo(2_000, n), "image/jpeg") for n, key in enumerate(keys)))
    await asyncio.gather(*(store.copy(key, key.replace("tmp/", "main/")) for key in keys))
    infos = await asyncio.gather(*(store.info(key.replace("tmp/", "main/")) for key in keys))
    assert infos == [ObjectInfo(2_000, "image/jpeg")] * len(keys)


async def test_closed_store_refuses_work(store: FileStore) -> None:
    await store.aclose()
    await store.aclose()  # twice is fine
    with pytest.raises(StorageError, match="closed") as caught:
        await store.put("tmp/a.jpg", b"x", "image/jpeg")
    assert caught.value.retryable is False


async def test_repr_and_errors_hold_no_secret(store: FileStore) -> None:
    from fs_helpers import SECRETS

    with pytest.raises(StorageError) as caught:
        await store.copy("tmp/missing.jpg", "main/missing.jpg")
    texts = [repr(store), str(store), str(caught.value), repr(caught.value), await store.link("tmp/a.jpg")]
    for secret in SECRETS.values():
        # The S3 key id is public by design in a presigned URL (X-Amz-Credential); the secret never is.
        checked = texts if secret != SECRETS["s3_key_id"] else texts[:-1]
        assert not any(secret in text for text in checked)
