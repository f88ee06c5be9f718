"""The one async interface every file store implements, and helpers they share.

A store keeps photos under deterministic keys (see :mod:`file_store.keys`) and never
deletes anything ("no delete politics"). The public methods here check keys, bound the
number of operations in flight, and delegate to the backend's ``_put``/``_copy``/...
methods, which translate vendor exceptions into :class:`~common.errors.StorageError`.
"""

from __future__ import annotations

import abc
import asyncio
import os
from collections.abc import AsyncGenerator, AsyncIterable, AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import ClassVar, Self, TypeAlias

from common.errors import MissingObjectError, StorageError, retryable_os_error
from file_store.keys import check_key, check_prefix

#: What ``put`` accepts: bytes in memory, an async stream of chunks, or a file path.
Data: TypeAlias = bytes | bytearray | memoryview | AsyncIterable[bytes] | Path

#: Chunk size used when reading a file from disk (in a worker thread).
FILE_CHUNK = 1024 * 1024


@dataclass(frozen=True)
class ObjectInfo:
    """What a store knows about one stored object."""

    size: int
    content_type: str


class FileStore(abc.ABC):
    """Async photo store: put, server-side copy, exists/info, links, folder listing.

    Use it as an async context manager (or call :meth:`aclose`); SDK clients are created
    once when the store is opened and closed here. At most ``concurrency`` operations run
    at once; callers may fire as many as they like with ``asyncio.gather``.
    """

    backend: ClassVar[str]

    def __init__(self, *, concurrency: int) -> None:
        self._limit = asyncio.Semaphore(concurrency)
        self._closed = False

    async def put(self, key: str, data: Data, content_type: str) -> None:
        """Store ``data`` under ``key`` (overwriting: a replay writes the same bytes)."""
        check_key(key)
        if not content_type or any(c in content_type for c in "\r\n"):
            raise StorageError(f"put {key!r}: content type must be a non-empty single line")
        source = _Source(data)
        async with self._operation():
            try:
                await self._put(key, source.data, content_type)
            except StorageError:
                if source.error is not None:
                    # The caller's stream failed (e.g. a download broke), not the store: say so.
                    raise source.error from None
                raise

    async def copy(self, src_key: str, dst_key: str) -> None:
        """Server-side copy; bytes and content type are kept. Repeating it is harmless."""
        check_key(src_key)
        check_key(dst_key)
        async with self._operation():
            await self._copy(src_key, dst_key)

    async def info(self, key: str) -> ObjectInfo | None:
        """Size and content type of ``key``, or ``None`` when there is no such object."""
        check_key(key)
        async with self._operation():
            return await self._info(key)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""
        return await self.info(key) is not None

    async def link(self, key: str, *, valid_days: int | None = None) -> str:
        """A URL a worker's browser can open, valid for ``valid_days`` (default: the configured time).

        Local ``file://`` links and public S3 links do not expire; ``valid_days`` changes nothing there.
        """
        check_key(key)
        async with self._operation():
            return await self._link(key, valid_days)

    async def link_existing(self, key: str, *, valid_days: int | None = None) -> str:
        """A fresh link to an object that must exist (:class:`MissingObjectError` otherwise).

        For links written into results long after the photo was stored (``pipeline.py relink``),
        where a link to nothing must be reported, not written. A miss is only called missing
        after the key's folder was listed: S3 answers a look-up in a bucket that does not exist
        with the same bare 404 as a missing object, and that mistake must stop the caller
        (a plain :class:`StorageError` naming the bucket), not mark every photo missing.
        """
        if not await self.exists(key):
            await self.list_folders(key.rsplit("/", 1)[0] + "/" if "/" in key else "")
            raise MissingObjectError(f"no object {key!r} in the {self.backend} file store")
        return await self.link(key, valid_days=valid_days)

    async def list_folders(self, prefix: str = "") -> list[str]:
        """Sub-folders directly under ``prefix`` (``""`` or ``"a/b/"``), sorted, each ending in ``/``."""
        check_prefix(prefix)
        async with self._operation():
            return sorted(await self._list_folders(prefix))

    async def aclose(self) -> None:
        """Close the SDK clients; safe to call twice."""
        if not self._closed:
            self._closed = True
            await self._close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    def _operation(self) -> asyncio.Semaphore:
        if self._closed:
            raise StorageError(f"the {self.backend} file store is already closed")
        return self._limit

    @abc.abstractmethod
    async def _put(self, key: str, data: Data, content_type: str) -> None: ...

    @abc.abstractmethod
    async def _copy(self, src_key: str, dst_key: str) -> None: ...

    @abc.abstractmethod
    async def _info(self, key: str) -> ObjectInfo | None: ...

    @abc.abstractmethod
    async def _link(self, key: str, valid_days: int | None) -> str: ...

    @abc.abstractmethod
    async def _list_folders(self, prefix: str) -> list[str]: ...

    @abc.abstractmethod
    async def _close(self) -> None: ...


class _Source:
    """Wraps an async stream given to ``put`` to remember an error raised by the stream itself."""

    def __init__(self, data: Data) -> None:
        self.error: BaseException | None = None
        self.data: Data = data
        if not isinstance(data, (bytes, bytearray, memoryview, Path, os.PathLike)):
            self.data = self._guard(data)

    async def _guard(self, stream: AsyncIterable[bytes]) -> AsyncIterator[bytes]:
        try:
            async for chunk in stream:
                yield chunk
        except Exception as exc:
            self.error = exc
            raise


async def iter_file(path: Path, chunk_size: int = FILE_CHUNK) -> AsyncGenerator[bytes, None]:
    """Read ``path`` chunk by chunk in a worker thread (the event loop never blocks on disk)."""
    try:
        handle = await asyncio.to_thread(open, path, "rb")
    except OSError as exc:
        raise StorageError(
            f"cannot read {str(path)!r} to upload it: {exc.strerror}", retryable=retryable_os_error(exc)
        ) from None
    try:
        while chunk := await asyncio.to_thread(handle.read, chunk_size):
            yield chunk
    finally:
        await asyncio.to_thread(handle.close)


async def iter_chunks(data: Data) -> AsyncGenerator[bytes, None]:
    """Any accepted ``data`` as an async stream of byte chunks."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
    elif isinstance(data, (Path, os.PathLike)):
        async for chunk in iter_file(Path(data)):
            yield chunk
    else:
        async for chunk in data:
            yield bytes(chunk)


async def iter_parts(data: Data, part_size: int) -> AsyncGenerator[bytes, None]:
    """Regroup ``data`` into parts of exactly ``part_size`` bytes (the last may be shorter).

    At most one part plus one incoming chunk is held in memory, whatever the total size.
    """
    if isinstance(data, (bytes, bytearray, memoryview)):
        view = memoryview(data)
        for start in range(0, max(len(view), 1), part_size):
            yield bytes(view[start : start + part_size])
        return
    buffer = bytearray()
    sent = False
    async for chunk in iter_chunks(data):
        buffer += chunk
        while len(buffer) >= part_size:
            yield bytes(buffer[:part_size])
            del buffer[:part_size]
            sent = True
    if buffer or not sent:
        yield bytes(buffer)
