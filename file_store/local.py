"""The local folder backend: for the demo and development.

Objects are files under ``[FileStore] local_folder``; links are ``file://`` URLs. A
content type that differs from what the file name suggests (``0.jpg`` -> ``image/jpeg``)
is kept in a side file under ``.file_store/content-types/`` (no valid key starts with a
dot, so that folder never collides with an object); the usual case needs no side file.
Writes go to a temporary file that is then renamed, so a crash never leaves half a
photo under its final name. All disk work runs in worker threads; photo writes and copies
queue up and go several to a thread hop (:class:`_DiskQueue`). Disk errors are
retryable only when they are EAGAIN-like (:func:`common.errors.retryable_os_error`):
a full disk, a permission or a read-only folder waits for a person.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import functools
import itertools
import mimetypes
import os
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from stat import S_ISLNK, S_ISREG
from typing import TypeVar
from urllib.parse import quote_from_bytes

from common.errors import StorageError, retryable_os_error
from common.files import write_all
from file_store.base import Data, FileStore, ObjectInfo, iter_chunks

_META = Path(".file_store") / "content-types"
_T = TypeVar("_T")
_DEFAULT_TYPE = "application/octet-stream"


class LocalFileStore(FileStore):
    """A folder on this machine that behaves like a bucket."""

    backend = "local"

    def __init__(self, root: Path, *, concurrency: int) -> None:
        super().__init__(concurrency=concurrency)
        self._root = root  # absolute, so file:// links work from any working directory
        self._root_uri = root.as_uri().removesuffix("/")  # links are this plus the key, quoted as as_uri() would
        self._disk = _DiskQueue()

    def __repr__(self) -> str:
        return f"LocalFileStore({str(self._root)!r})"

    @classmethod
    async def open(cls, folder: Path, *, concurrency: int) -> LocalFileStore:
        """Create the folder if needed and return the store."""
        store = cls(await asyncio.to_thread(folder.resolve), concurrency=concurrency)
        try:
            await asyncio.to_thread((store._root / _META).mkdir, parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(
                f"cannot use local folder {str(store._root)!r} ({exc.strerror}): "
                f"fix [FileStore] local_folder in toloka.ini",
                retryable=retryable_os_error(exc),
            ) from None
        return store

    def _path(self, key: str) -> Path:
        # Keys are checked (no "..", no leading "/"), so this stays inside the folder. A
        # symlink placed inside it by the operator (say main/ on a bigger disk) is followed.
        return self._root / key

    def _meta(self, key: str) -> Path:
        return self._root / _META / key

    async def _put(self, key: str, data: Data, content_type: str) -> None:
        target, meta = self._path(key), self._meta(key)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)):
                # The common case, a photo already in memory: written with whatever else is queued.
                await self._disk.run(functools.partial(_put_bytes, target, bytes(data), meta, content_type))
                return
            await asyncio.to_thread(_set_type, meta, content_type, key)
            if isinstance(data, (Path, os.PathLike)):
                # The caller's own file: copied, never linked (the caller may rewrite it in place).
                await asyncio.to_thread(_copy_atomic, Path(data), target, link=False)
            else:
                await _write_atomic(target, iter_chunks(data))
        except OSError as exc:
            raise StorageError(
                f"cannot store {key!r} in {str(self._root)!r}: {exc.strerror} ({exc.filename})",
                retryable=retryable_os_error(exc),
            ) from None

    async def _copy(self, src_key: str, dst_key: str) -> None:
        paths = (self._path(src_key), self._path(dst_key), self._meta(src_key), self._meta(dst_key))
        try:
            await self._disk.run(functools.partial(_copy_with_type, *paths))
        except _NoSuchObject:
            raise StorageError(f"cannot copy {src_key!r}: no such object in {str(self._root)!r}") from None
        except OSError as exc:  # the target's side: a full disk, a folder that is a dangling symlink, ...
            raise StorageError(
                f"cannot copy {src_key!r} to {dst_key!r}: {exc.strerror} ({exc.filename})",
                retryable=retryable_os_error(exc),
            ) from None

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
            content_type = _guess_type(key)
        return ObjectInfo(size=stat.st_size, content_type=content_type)

    async def _link(self, key: str, valid_days: int | None) -> str:  # file:// links never expire
        # The same text as self._path(key).as_uri(), without building a Path per link (one per photo per task).
        return f"{self._root_uri}/{quote_from_bytes(os.fsencode(key))}"

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
        """No client and no open files between operations: only let a queued write finish."""
        await self._disk.drained()


class _DiskQueue:
    """Small blocking disk jobs, run in worker-thread hops of several jobs, one hop at a time.

    A photo write is a handful of system calls; a thread hop of its own costs more CPU than
    they do (a worker woken, a future handed back to the loop), and a worker making system
    calls while the loop is busy fights it for the GIL at every one of them. Jobs queued while
    a hop runs go together in the next one: under load the hops carry several photos each,
    and a lone photo still goes at once. Each caller waits for its own job and gets its own
    exception; a failing job does not stop the others.
    """

    def __init__(self) -> None:
        self._queued: list[tuple[Callable[[], None], asyncio.Future[None]]] = []
        self._runner: asyncio.Task[None] | None = None
        self.hops = 0  # thread hops so far (the tests read it)

    async def run(self, job: Callable[[], None]) -> None:
        """Run ``job`` in a worker thread with whatever else is queued; raise what it raised."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queued.append((job, done))
        if self._runner is None:
            self._runner = asyncio.create_task(self._drain())
        # A caller cancelled here does not withdraw its job: it may be running already, and
        # every job is a write that a repeat would redo identically.
        await done

    async def drained(self) -> None:
        """Return once nothing is queued or running."""
        while self._runner is not None:
            await asyncio.shield(self._runner)

    async def _drain(self) -> None:
        batch: list[tuple[Callable[[], None], asyncio.Future[None]]] = []
        try:
            while self._queued:
                batch, self._queued = self._queued, []
                self.hops += 1
                errors = await asyncio.to_thread(_run_jobs, [job for job, _ in batch])
                for (_, done), error in zip(batch, errors, strict=True):
                    if done.done():  # its caller was cancelled
                        continue
                    if error is None:
                        done.set_result(None)
                    else:
                        done.set_exception(error)
                batch = []
        except BaseException as exc:  # cancelled at shutdown: no caller may wait for ever
            for _, done in [*batch, *self._queued]:
                if not done.done():
                    if isinstance(exc, Exception):
                        done.set_exception(exc)
                    else:
                        done.cancel()
            self._queued = []
            raise
        finally:
            self._runner = None


def _run_jobs(jobs: list[Callable[[], None]]) -> list[Exception | None]:
    """Run every job in order (in a worker thread); each one's exception, or None."""
    errors: list[Exception | None] = []
    for job in jobs:
        try:
            job()
        except Exception as exc:  # the caller of that job raises it; the next job still runs
            errors.append(exc)
        else:
            errors.append(None)
    return errors


def _guess_type(key: str) -> str:
    return mimetypes.guess_type(key, strict=False)[0] or _DEFAULT_TYPE


def _set_type(meta: Path, content_type: str, key: str) -> None:
    """Record ``content_type`` unless the name already implies it (then drop a stale record)."""
    if content_type == _guess_type(key):
        _unlink_quietly(meta)
    else:
        _write_bytes_atomic(meta, content_type.encode("utf-8"))


def _put_bytes(target: Path, body: bytes, meta: Path, content_type: str) -> None:
    # The type goes first, so an object that exists always has the right type.
    _set_type(meta, content_type, target.name)
    _write_bytes_atomic(target, body)


def _write_bytes_atomic(target: Path, body: bytes) -> None:
    """A temporary file beside ``target``, then a rename: readers never see half a file."""
    fd, tmp_name = _temporary_beside(target)
    try:
        try:  # plain os.write: a buffered file object would add three system calls per photo
            write_all(fd, body)
        finally:
            os.close(fd)
        os.replace(tmp_name, target)
    except BaseException:
        _unlink_quietly(tmp_name)
        raise


class _NoSuchObject(FileNotFoundError):
    """The object to copy is not there (any other missing file is a problem of the target's side)."""


def _copy_with_type(source: Path, target: Path, source_meta: Path, target_meta: Path) -> None:
    source = _regular_file(source)
    if source_meta.exists():
        _copy_atomic(source_meta, target_meta, link=True)
    else:
        _unlink_quietly(target_meta)
    _copy_atomic(source, target, link=True)


def _regular_file(path: Path) -> Path:
    """``path``, or the file its symlink points to; :class:`_NoSuchObject` if that is not a regular file.

    link(2) does not follow a symlink given as its source: linked as it is, a relative one
    would dangle under its new name.
    """
    try:
        mode = os.lstat(path).st_mode
        if S_ISLNK(mode):
            path = Path(os.path.realpath(path))
            mode = os.stat(path).st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise _NoSuchObject(errno.ENOENT, "no such object", str(path)) from None
    if not S_ISREG(mode):  # a folder is not an object
        raise _NoSuchObject(errno.ENOENT, "no such object", str(path))
    return path


async def _write_atomic(target: Path, chunks: AsyncIterator[bytes]) -> None:
    """Stream ``chunks`` into a temporary file beside ``target``, then rename it into place."""
    fd, tmp_name = await _new_temporary(target)
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


async def _new_temporary(target: Path) -> tuple[int, str]:
    """:func:`_temporary_beside` in a worker thread; a caller cancelled meanwhile leaves nothing behind.

    Cancelling the wait does not stop the thread: without this, the file it then makes
    would stay open and on disk, with no one left to remove it.
    """
    making = asyncio.ensure_future(asyncio.to_thread(_temporary_beside, target))
    try:
        return await asyncio.shield(making)
    except asyncio.CancelledError:
        making.add_done_callback(_discard_unused)
        raise


def _discard_unused(making: asyncio.Future[tuple[int, str]]) -> None:
    if making.cancelled() or making.exception() is not None:
        return
    fd, name = making.result()
    try:  # a close and an unlink: a worker's job, not the loop's
        _ = asyncio.get_running_loop().run_in_executor(None, _close_and_unlink, fd, name)
    except RuntimeError:  # the loop's executor is shut down already (the process is stopping)
        _close_and_unlink(fd, name)


def _close_and_unlink(fd: int, name: str) -> None:
    os.close(fd)
    _unlink_quietly(name)


def _temporary_beside(target: Path) -> tuple[int, str]:
    """A new temporary file in ``target``'s folder (created if missing): (open descriptor, name).

    The name is this process's id and tag and a counter (:func:`_temporary_name`), not a
    random one per file: ``tempfile.mkstemp`` draws and formats a random name and builds
    paths per call, which cost more than the ``open`` itself at one photo per call.
    """
    return _beside(target, _create)


def _create(name: str) -> int:
    return os.open(name, _CREATE, 0o600)


_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC | os.O_NOFOLLOW
_temporary_numbers = itertools.count()
_PROCESS_TAG = f"{os.getpid()}-{os.urandom(4).hex()}"


def _beside(target: Path, make: Callable[[str], _T]) -> tuple[_T, str]:
    """``make`` a new temporary name in ``target``'s folder (created if missing): (what it returned, the name).

    ``make`` must refuse a name that exists (``FileExistsError``, as ``O_EXCL`` and link(2)
    do); such a name is passed over for the next number.
    """
    for _ in range(100):
        name = _temporary_name(target)
        try:
            return make(name), name
        except FileExistsError:
            continue
        except FileNotFoundError:  # a new folder: made once, then the same name again
            os.makedirs(target.parent, exist_ok=True)
            try:
                return make(name), name
            except FileExistsError:
                continue
    raise FileExistsError(errno.EEXIST, "no free temporary name", str(target.parent))


def _temporary_name(target: Path) -> str:
    # A dot first, as before: no key starts with one, so a leftover is never taken for an object.
    # next() on a count is atomic under the GIL: worker threads never get the same number. The
    # random part tells apart two processes with one id (a container's pid 1 and an operator's
    # command in another container, sharing the folder).
    return f"{target.parent}/.{target.name}.{_PROCESS_TAG}-{next(_temporary_numbers)}.part"


def _copy_atomic(source: Path, target: Path, *, link: bool) -> None:
    """``target`` becomes a copy of ``source`` in one rename; with ``link``, a hard link where the disk allows.

    Objects of the store are only ever replaced by a rename, never written in place, so two
    names of one file can never drift apart: a link is a copy that costs two system calls
    and no bytes. Across disks (an operator's symlinked folder) or on a file system without
    links, the bytes are copied. A file from outside the store (``put`` of a ``Path``) is
    always copied: its owner may rewrite it in place.
    """
    name = _linked_beside(source, target) if link else None
    if name is None:
        name = _copied_beside(source, target)
    try:
        os.replace(name, target)
    finally:
        # Also after a successful rename: when ``target`` already is a link to the same file (a
        # replayed copy, a key copied onto itself) rename(2) succeeds doing nothing, and the
        # temporary name would stay behind. The name is this process's alone (see
        # _temporary_name), so no other writer can have taken it in between.
        _unlink_quietly(name)


def _linked_beside(source: Path, target: Path) -> str | None:
    """A new hard link to ``source`` beside ``target``, or None where this disk cannot link the two."""
    try:
        return _beside(target, functools.partial(os.link, source))[1]
    except FileNotFoundError:
        if not source.exists():  # gone since it was looked at
            raise _NoSuchObject(errno.ENOENT, "no such object", str(source)) from None
        raise
    except OSError as exc:
        if exc.errno in _NO_LINKS:
            return None
        raise


def _copied_beside(source: Path, target: Path) -> str:
    """A new temporary copy of ``source``'s bytes beside ``target``: its name."""
    fd, name = _temporary_beside(target)
    os.close(fd)
    try:
        shutil.copyfile(source, name)
    except BaseException:
        _unlink_quietly(name)
        raise
    return name


# Errors that mean "this disk does not link these two names", not "this copy cannot be made":
# another file system, no hard links at all, too many links to one file.
_NO_LINKS = frozenset({errno.EXDEV, errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK, errno.ENOSYS})


def _unlink_quietly(name: str | Path) -> None:
    # Removes only our own temporary or content-type side files, never a stored object.
    with contextlib.suppress(FileNotFoundError):
        os.unlink(name)
