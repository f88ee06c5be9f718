"""The local folder backend: for the demo and development.

Objects are files under ``[FileStore] local_folder``; links are ``file://`` URLs. The
content type of each object is kept in a side file under ``.file_store/content-types/``
(no valid key starts with a dot, so this folder can never collide with an object).
Writes go to a temporary file that is then renamed, so a crash never leaves half a
photo under its final name. All disk work runs in worker threads.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from stat import S_ISREG

from engine.errors import StorageError
from file_store.base import Data, FileStore, ObjectInfo, iter_chunks

_META = Path(".file_store") / "content-types"
_DEFAULT_TYPE = "application/octet-stream"


class LocalFileStore(FileStore):
    """A folder on this machine that behaves like a bucket."""

    backend = "local"

    def __init__(self, folder: Path, *, concurrency: int) -> None:
        super().__init__(concurrency=concurrency)
        self._root = folder.resolve()

    def __repr__(self) -> str:
        return f"LocalFileStore({str(self._root)!r})"

    @classmethod
    async def open(cls, folder: Path, *, concurrency: int) -> LocalFileStore:
        """Create the folder if needed and return the store."""
        store = cls(folder, concurrency=concurrency)
        try:
            await asyncio.to_thread((store._root / _META).mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot use local folder {str(store._root)!r} ({exc.strerror}): "
                f"fix [FileStore] local_folder in toloka.ini"
            ) from None
        return store

    def _path(self, key: str) -> Path:
        path = self._root / key
        # Keys are already checked; this also refuses symlinked folders pointing elsewhere.
        if not path.resolve().is_relative_to(self._root):
            raise StorageError(f"key {key!r} resolves outside the local folder {str(self._root)!r}")
        return path

    def _meta(self, key: str) -> Path:
        return self._root / _META / key

    async def _put(self, key: str, data: Data, content_type: str) -> None:
        target = self._path(key)
        try:
            await _write_atomic(self._meta(key), _single(content_type.encode("utf-8")))
            await _write_atomic(target, iter_chunks(data))
        except OSError as exc:
            raise StorageError(f"cannot write {str(target)!r}: {exc.strerror}") from None

    async def _copy(self, src_key: str, dst_key: str) -> None:
        source, target = self._path(src_key), self._path(dst_key)
        try:
            await asyncio.to_thread(_copy_atomic, self._meta(src_key), self._meta(dst_key), missing_ok=True)
            await asyncio.to_thread(_copy_atomic, source, target, missing_ok=False)
        except FileNotFoundError:
            raise StorageError(f"cannot copy {src_key!r}: no such object in {str(self._root)!r}") from None
        except OSError as exc:
            raise StorageError(f"cannot copy {src_key!r} to {dst_key!r}: {exc.strerror}") from None

    async def _info(self, key: str) -> ObjectInfo | None:
        return await asyncio.to_thread(self._info_sync, key)

    def _info_sync(self, key: str) -> ObjectInfo | None:
        try:
            stat = self._path(key).stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not S_ISREG(stat.st_mode):  # a folder is not an object
            return None
        try:
            content_type = self._meta(key).read_text(encoding="utf-8")
        except FileNotFoundError:
            content_type = _DEFAULT_TYPE
        return ObjectInfo(size=stat.st_size, content_type=content_type)

    async def _link(self, key: str) -> str:
        return self._path(key).as_uri()

    async def _list_folders(self, prefix: str) -> list[str]:
        folder = self._root / prefix if prefix else self._root

        def scan() -> list[str]:
            try:
                entries = list(os.scandir(folder))
            except (FileNotFoundError, NotADirectoryError):
                return []
            return [f"{prefix}{e.name}/" for e in entries if e.is_dir() and not e.name.startswith(".")]

        return await asyncio.to_thread(scan)

    async def _close(self) -> None:
        """Nothing to close: no client, no open files between operations."""


async def _single(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _write_atomic(target: Path, chunks: AsyncIterator[bytes]) -> None:
    """Stream ``chunks`` into a temporary file beside ``target``, then rename it into place."""
    await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
    fd, tmp_name = await asyncio.to_thread(tempfile.mkstemp, dir=target.parent, prefix=".", suffix=".part")
    handle = os.fdopen(fd, "wb")
    try:
        try:
            async for chunk in chunks:
                await asyncio.to_thread(handle.write, chunk)
        finally:
            await asyncio.to_thread(handle.close)
        await asyncio.to_thread(os.replace, tmp_name, target)
    except BaseException:
        await asyncio.to_thread(_unlink_quietly, tmp_name)
        raise


def _copy_atomic(source: Path, target: Path, *, missing_ok: bool) -> None:
    if missing_ok and not source.exists():
        return
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=".", suffix=".part")
    os.close(fd)
    try:
        shutil.copyfile(source, tmp_name)
        os.replace(tmp_name, target)
    except BaseException:
        _unlink_quietly(tmp_name)
        raise


def _unlink_quietly(name: str) -> None:
    # Removes only our own temporary file, never a stored object.
    try:
        os.unlink(name)
    except FileNotFoundError:
        pass
