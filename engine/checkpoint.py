"""The daemon's state on disk: a base file and an append-only log in ``saves/``.

Files (format version 2)::

    checkpoint.pkl                 PEDESTRIAN-PIPELINE-CHECKPOINT 2 <length> <sha256>\\n<payload>
    checkpoint.pkl.<sha16>.log     records appended since that base: <length> <sha256>\\n<payload> ...

Most of the state is a few large mappings of which one tick changes a few entries
(:class:`common.tracked.TrackedDict`). They are saved entry by entry: the base holds
every entry's pickle, and each tick appends one record with the rest of the state and
only the entries marked as changed. When the log has grown past the base, the next
checkpoint writes a new base from the bytes kept in memory (after pickling the unmarked
entries again, once, to check them) and starts a new log named after it. Entries keep
the mapping's order. So a tick's cost follows what it changed, not
the whole state.

Rules:

* A checkpoint is one ``fsync``'d append (or one atomic base replacement), and a
  restart sees the last complete record: a record torn by ``kill -9`` is the
  unfinished checkpoint, ignored; the effects it would have listed never ran. A bad
  record followed by a sound one is damage, not a tear, and stops start-up.
  The first checkpoint after a start always writes a new base, so nothing is ever
  appended after a torn tail.
* A new base's log is created before the base that names it, and old logs are
  removed after: a crash between leaves either the old pair or the new one. A base
  whose log is missing (a person deleted it) stops start-up: the log holds the
  latest ticks, and resuming from the older base would repeat them.
* An entry changed without being marked would be saved stale: each new base first
  pickles every entry again and compares; a difference is logged as an error and
  saved. ``PIPELINE_VERIFY_CHECKPOINTS=1`` (the tests) compares on every checkpoint
  and raises :class:`StateError` instead.
* Only plain data goes in: builtins, ``Decimal``, ``datetime``, ``UUID``, paths,
  a few ``collections`` types, and classes from the project's own packages
  (dataclasses, enums). Anything else (a client, a session, a logger, a
  :class:`~common.secrets.Secret`) makes :meth:`CheckpointStore.encode` raise
  :class:`StateError`. Loading uses the same allow-list, so a checkpoint can
  never make the daemon import or call anything else.
* Files are 0600 in a 0700 folder, and one writable by group or others is refused:
  unpickling a file someone else can write is running their code.
* A missing base means "first start". A truncated, corrupt, unreadable or
  unknown-version file stops start-up with :class:`StateError` naming the file,
  and the file is left where it is. Nothing is reset silently. A version 1 file
  (one whole pickle, written by earlier releases) still loads.

Pickle on the event-loop thread (:meth:`CheckpointStore.encode`, consistent with the
state in memory), write in a worker thread (``await asyncio.to_thread(store.write, encoded)``).
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import pickle
import re
import stat
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import StateError
from common.files import write_all
from common.secrets import Secret
from common.tracked import TrackedDict
from engine.durable import atomic_write, ensure_private_folder, open_private, refuse_shared_file

FORMAT_VERSION = 2
WHOLE_VERSION = 1  # one whole pickle: what releases before the log wrote (still read)
MAGIC = b"PEDESTRIAN-PIPELINE-CHECKPOINT"
DEFAULT_NAME = "checkpoint.pkl"
# The engine's packages whose classes may appear in a checkpoint (a pipeline adds its own).
DEFAULT_PACKAGES = ("engine", "toloka_client", "file_store", "tables")
# Standard-library classes that are plain data.
SAFE_GLOBALS = frozenset(
    {
        ("builtins", "set"), ("builtins", "frozenset"), ("builtins", "bytearray"), ("builtins", "complex"),
        ("builtins", "range"), ("builtins", "slice"),
        ("datetime", "datetime"), ("datetime", "date"), ("datetime", "time"), ("datetime", "timedelta"),
        ("datetime", "timezone"),
        ("decimal", "Decimal"),
        ("uuid", "UUID"), ("uuid", "SafeUUID"),
        ("collections", "OrderedDict"), ("collections", "deque"), ("collections", "Counter"),
        ("pathlib", "PurePosixPath"), ("pathlib", "PosixPath"),
        ("copyreg", "_reconstructor"),
        ("common.tracked", "TrackedDict"),
    }
)
_MAX_HEADER = 256


def _allowed(module: str, name: str, packages: tuple[str, ...]) -> bool:
    if (module, name) in SAFE_GLOBALS:
        return True
    return any(module == pkg or module.startswith(pkg + ".") for pkg in packages)


class _PlainPickler(pickle.Pickler):
    """Refuses anything that is not plain data (see the module rules)."""

    def __init__(self, file: io.BytesIO, packages: tuple[str, ...]) -> None:
        super().__init__(file, protocol=5)
        self._packages = packages
        # Classes already checked: the check runs once per class, not once per object
        # (a checkpoint holds thousands of instances of a dozen classes).
        self._checked: set[type] = set()

    def reducer_override(self, obj: Any) -> Any:
        # Called for every instance pickled: the common case (a class seen before) is one set lookup.
        target = type(obj)
        if target in self._checked:
            return NotImplemented
        if target is type or isinstance(obj, type):  # a class itself is pickled by its name: check the class
            target = obj
            if target in self._checked:
                return NotImplemented
        if issubclass(target, Secret):
            raise StateError(f"a Secret ({getattr(obj, 'name', '?')!r}) must not be saved in a checkpoint")
        module, name = target.__module__, target.__qualname__
        if not _allowed(module, name, self._packages):
            raise StateError(f"checkpoint state must be plain data, found {module}.{name}")
        self._checked.add(target)
        return NotImplemented


Aliases = Mapping[tuple[str, str], tuple[str, str]]


class _PlainUnpickler(pickle.Unpickler):
    """Builds only allow-listed classes; anything else is a corrupt or foreign checkpoint.

    ``aliases`` maps a class path an older release pickled to where it lives now
    (e.g. ``engine.daemon.Stats`` -> ``engine.accounting.Stats``).
    """

    def __init__(self, file: io.BytesIO, packages: tuple[str, ...], aliases: Aliases) -> None:
        super().__init__(file)
        self._packages = packages
        self._aliases = aliases

    def find_class(self, module: str, name: str) -> Any:
        module, name = self._aliases.get((module, name), (module, name))
        if not _allowed(module, name, self._packages):
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}")
        return super().find_class(module, name)


def encode_checkpoint(state: Any, packages: Iterable[str] = DEFAULT_PACKAGES) -> bytes:
    """One whole file (format version 1): header plus pickle of ``state``; :class:`StateError` if not plain data."""
    return _framed(_dump(state, packages), WHOLE_VERSION)


def decode_checkpoint(
    data: bytes, path: Path, packages: Iterable[str] = DEFAULT_PACKAGES, aliases: Aliases | None = None
) -> Any:
    """The state in one file: a version 1 file, or a version 2 base without its log."""
    version, payload, _ = _payload(data, path)
    unpickle = _Loader(path, tuple(packages), aliases or {})
    if version == WHOLE_VERSION:
        return unpickle.whole(payload)
    main, tables = unpickle.base(payload)
    return unpickle.state(main, tables)


def _advice(path: Path) -> str:
    return f"the file was left in place; restore a backup or move {path} away to start afresh"


def _framed(payload: bytes, version: int) -> bytes:
    digest = hashlib.sha256(payload).hexdigest()
    return b"%s %d %d %s\n" % (MAGIC, version, len(payload), digest.encode()) + payload


def _pickle_into(pickler: pickle.Pickler, obj: Any) -> None:
    """``pickler.dump(obj)``; whatever cannot be pickled is a :class:`StateError`."""
    try:
        pickler.dump(obj)
    except StateError:
        raise
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise StateError(f"checkpoint state cannot be pickled: {exc}") from None


def _dump(obj: Any, packages: Iterable[str]) -> bytes:
    buffer = io.BytesIO()
    _pickle_into(_PlainPickler(buffer, tuple(packages)), obj)
    return buffer.getvalue()


def _payload(data: bytes, path: Path) -> tuple[int, bytes, str]:
    """The verified payload of a base (or version 1) file, its format version and its sha256."""
    advice = _advice(path)
    end = data.find(b"\n", 0, _MAX_HEADER)
    fields = data[:end].split(b" ") if end >= 0 else []
    if len(fields) != 4 or fields[0] != MAGIC:
        raise StateError(f"checkpoint {path} is corrupt or not a checkpoint (bad header); {advice}")
    try:
        version, length = int(fields[1]), int(fields[2])
    except ValueError:
        raise StateError(f"checkpoint {path} is corrupt (bad header); {advice}") from None
    if version not in (WHOLE_VERSION, FORMAT_VERSION):
        raise StateError(
            f"checkpoint {path} has format version {version}; this program reads version {FORMAT_VERSION} "
            f"(and {WHOLE_VERSION}); {advice}"
        )
    payload = data[end + 1 :]
    if len(payload) != length:
        raise StateError(
            f"checkpoint {path} is truncated or corrupt ({len(payload)} of {length} payload bytes); {advice}"
        )
    if hashlib.sha256(payload).hexdigest().encode() != fields[3]:
        raise StateError(f"checkpoint {path} is corrupt (checksum mismatch); {advice}")
    return version, payload, fields[3].decode()


# -- the base and its log --------------------------------------------------------------

_TRACKED = "tracked"
# The log may grow to the base's size (and at least this) before the next base is written.
_LOG_MIN_BYTES = 256 * 1024
VERIFY_ENV = "PIPELINE_VERIFY_CHECKPOINTS"
log = logging.getLogger(__name__)

# uid -> key -> the pickle of that entry, as the files hold it.
Tables = dict[str, dict[Any, bytes]]
# uid -> (entries set or changed, keys removed): what one record changes. Removed None: the
# mapping is new to the files, and its entries replace any table of that name.
Changes = dict[str, tuple[dict[Any, bytes], list[Any] | None]]


class _MainPickler(_PlainPickler):
    """Pickles the state with each :class:`TrackedDict` left out, as a reference to its entries."""

    def __init__(self, file: io.BytesIO, packages: tuple[str, ...]) -> None:
        super().__init__(file, packages)
        self.tracked: dict[str, TrackedDict[Any, Any]] = {}

    def persistent_id(self, obj: Any) -> Any:
        if type(obj) is TrackedDict:
            self.tracked[obj.uid] = obj
            return (_TRACKED, obj.uid)
        return None


class _EntryPickler:
    """Pickles one entry at a time (each loads alone), checking classes once per class."""

    def __init__(self, packages: tuple[str, ...]) -> None:
        self._buffer = io.BytesIO()
        self._pickler = _PlainPickler(self._buffer, packages)

    def __call__(self, value: Any) -> bytes:
        try:
            _pickle_into(self._pickler, value)
        finally:
            self._pickler.clear_memo()
        data = self._buffer.getvalue()
        self._buffer.seek(0)
        self._buffer.truncate()
        return data


class _Loader:
    """Unpickles the files' parts with the allow-list; every problem is a StateError naming ``path``."""

    def __init__(self, path: Path, packages: tuple[str, ...], aliases: Aliases) -> None:
        self.path, self.packages, self.aliases = path, packages, aliases

    def _load(self, data: bytes, what: str, unpickler: _PlainUnpickler | None = None) -> Any:
        try:
            return (unpickler or _PlainUnpickler(io.BytesIO(data), self.packages, self.aliases)).load()
        except StateError:
            raise
        except Exception as exc:  # unpickling can raise almost anything
            raise StateError(
                f"checkpoint {self.path} cannot be loaded ({what}: {type(exc).__name__}: {exc}); was the code "
                f"changed incompatibly? {_advice(self.path)}"
            ) from None

    def whole(self, payload: bytes) -> Any:
        return self._load(payload, "state")

    def base(self, payload: bytes) -> tuple[bytes, Tables]:
        main, tables = self._load(payload, "base")
        if not isinstance(main, bytes) or not isinstance(tables, dict):
            raise StateError(f"checkpoint {self.path} is corrupt (not a base); {_advice(self.path)}")
        return main, tables

    def record(self, payload: bytes, log_path: Path) -> tuple[bytes, Changes]:
        main, changes = self._load(payload, f"a record of {log_path.name}")
        if not isinstance(main, bytes) or not isinstance(changes, dict):
            raise StateError(f"checkpoint log {log_path} is corrupt (not a record); {_advice(log_path)}")
        return main, changes

    def entry(self, data: bytes) -> Any:
        return self._load(data, "entry")

    def state(self, main: bytes, tables: Tables) -> Any:
        built: dict[str, TrackedDict[Any, Any]] = {}

        def tracked(pid: Any) -> TrackedDict[Any, Any]:
            if not (isinstance(pid, tuple) and len(pid) == 2 and pid[0] == _TRACKED and pid[1] in tables):
                raise pickle.UnpicklingError(f"unknown reference {pid!r}")
            uid = pid[1]
            if uid not in built:
                entries = {key: self._load(data, f"entry {key!r}") for key, data in tables[uid].items()}
                built[uid] = TrackedDict.restored(uid, entries)
            return built[uid]

        unpickler = _PlainUnpickler(io.BytesIO(main), self.packages, self.aliases)
        unpickler.persistent_load = tracked  # type: ignore[method-assign]
        return self._load(main, "state", unpickler)


@dataclass(frozen=True, slots=True)
class Encoded:
    """One checkpoint, ready to write: a new base, or one record to append to the current log."""

    base: bool
    data: bytes

    def __len__(self) -> int:
        return len(self.data)


def _log_path(base: Path, payload_digest: str) -> Path:
    return base.with_name(f"{base.name}.{payload_digest[:16]}.log")


def log_files(base: Path) -> list[Path]:
    """The logs beside the base ``base`` (one, or two for an instant while a new base is written)."""
    return sorted(base.parent.glob(f"{base.name}.*.log"))


def _read_private(path: Path, what: str) -> tuple[bytes, float] | None:
    """A regular, owner-only file's bytes and modification time; None when it does not exist."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StateError(f"cannot read {what} {path}: {exc.strerror or exc}; the file was left in place") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise StateError(f"{what} {path} is not a regular file; the file was left in place")
        refuse_shared_file(path, info)
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(), info.st_mtime
    except OSError as exc:
        raise StateError(f"cannot read {what} {path}: {exc.strerror or exc}; the file was left in place") from None
    finally:
        os.close(fd)


_RECORD_HEADER = re.compile(rb"(\d{1,12}) ([0-9a-f]{64})\n")


def _record_at(data: bytes, at: int) -> tuple[bytes, int] | None:
    """The record starting at ``at`` and where the next one starts; None if it is not whole and sound."""
    header = _RECORD_HEADER.match(data, at)
    if header is None:
        return None
    start = header.end()
    payload = data[start : start + int(header[1])]
    if len(payload) != int(header[1]) or hashlib.sha256(payload).hexdigest().encode() != header[2]:
        return None
    return payload, start + len(payload)


def _records(data: bytes, path: Path) -> list[bytes]:
    """The complete records of a log; a torn last one (a checkpoint cut short by a kill) is dropped.

    Only the last append can be torn: nothing is appended after a start until a new base.
    So a bad record followed by any sound one is damage, never a tear, and stops start-up.
    """
    records: list[bytes] = []
    at = 0
    while at < len(data):
        found = _record_at(data, at)
        if found is None:
            if any(_record_at(data, later.start()) for later in _RECORD_HEADER.finditer(data, at + 1)):
                raise StateError(f"checkpoint log {path} is corrupt at byte {at}; {_advice(path)}")
            break  # the torn tail: the checkpoint that never finished
        records.append(found[0])
        at = found[1]
    return records


class CheckpointStore:
    """The checkpoint files in ``<folder>``: load once at start, save after each tick.

    Keeps in memory what the files hold (the last state's pickle and every tracked
    entry's bytes): a new base is written from it, and :meth:`restore` rebuilds the
    last checkpointed state from it when a handler fails half-way.
    """

    def __init__(
        self,
        folder: Path,
        name: str = DEFAULT_NAME,
        *,
        packages: Iterable[str] = DEFAULT_PACKAGES,
        aliases: Aliases | None = None,
        verify: bool | None = None,
    ) -> None:
        self.folder = Path(folder).absolute()
        self.path = self.folder / name
        self.packages = tuple(packages)
        self.aliases: Aliases = dict(aliases or {})
        self.verify = os.environ.get(VERIFY_ENV) == "1" if verify is None else verify
        # When the loaded checkpoint was written (the files' modification time, naive UTC), for the
        # start-up line "resumed from the checkpoint of ..."; None until load() found one.
        self.saved_at: datetime | None = None
        self._main: bytes | None = None  # the last encoded state, its tracked mappings left out
        self._tables: Tables = {}
        self._log: Path | None = None  # the log of the base on disk
        self._base_size = 0
        self._log_size = 0
        # The memory is ahead of the files (a start, a failed or skipped write): the next write is a base.
        self._ahead = True

    def _loader(self) -> _Loader:
        return _Loader(self.path, self.packages, self.aliases)

    # -- reading ------------------------------------------------------------------------

    def load(self) -> Any | None:
        """The saved state, or None when there is no checkpoint yet (first start); sets :attr:`saved_at`."""
        ensure_private_folder(self.folder)
        found = _read_private(self.path, "checkpoint")
        if found is None:
            return None
        data, mtime = found
        version, payload, digest = _payload(data, self.path)
        loader = self._loader()
        if version == WHOLE_VERSION:
            state = loader.whole(payload)
            self._main, self._tables = None, {}
        else:
            main, tables = loader.base(payload)
            log_path = _log_path(self.path, digest)
            logged = _read_private(log_path, "checkpoint log")
            if logged is None:
                raise StateError(
                    f"checkpoint log {log_path} is missing: it holds the ticks saved after {self.path}, and "
                    f"resuming without them would repeat them; the files were left in place; restore the log "
                    f"from a backup, or move {self.folder} away to start afresh"
                )
            records, mtime = _records(logged[0], log_path), max(mtime, logged[1])
            for record in records:
                main, changes = loader.record(record, log_path)
                for uid, (changed, removed) in changes.items():
                    if removed is None:
                        tables[uid] = {}
                    table = tables.setdefault(uid, {})
                    for key in removed or ():  # first: a key removed and set again goes to the end
                        table.pop(key, None)
                    table.update(changed)
            state = loader.state(main, tables)
            self._main, self._tables = main, tables
        self._ahead = True
        self.saved_at = datetime.fromtimestamp(mtime, UTC).replace(tzinfo=None)
        return state

    def restore(self) -> Any:
        """The state as last encoded (:meth:`encode`), built again from its bytes."""
        if self._main is None:
            raise StateError("no checkpoint was encoded yet: nothing to restore")
        return self._loader().state(self._main, self._tables)

    # -- writing ------------------------------------------------------------------------

    def encode(self, state: Any) -> Encoded:
        """Pickle what changed in ``state`` now (call on the thread that owns the state)."""
        buffer = io.BytesIO()
        pickler = _MainPickler(buffer, self.packages)
        _pickle_into(pickler, state)
        main = buffer.getvalue()
        entry = _EntryPickler(self.packages)
        tables: Tables = {}
        changes: Changes = {}
        marks: dict[str, set[Any]] = {}
        taken: dict[str, tuple[set[Any], set[Any]]] = {}
        try:
            for uid, tracked in pickler.tracked.items():
                taken[uid] = tracked.take_changed()
                marks[uid], tables[uid], change = self._changes(uid, tracked, *taken[uid], entry)
                if change is not None:
                    changes[uid] = change
            record = _dump((main, changes), self.packages)
            base = self._ahead or self._log_size + len(record) > max(self._base_size, _LOG_MIN_BYTES)
            if base and not self.verify:
                # The safety net for an entry changed in place without a mark: compare every entry once per base.
                for uid, tracked in pickler.tracked.items():
                    self._compare(tracked, tables[uid], marks[uid], entry, strict=False)
        except BaseException:
            for uid, (changed, moved) in taken.items():
                pickler.tracked[uid].give_back(changed, moved)  # nothing was saved: every mark still stands
            raise
        self._main, self._tables, self._ahead = main, tables, True
        if base:
            return Encoded(True, _framed(_dump((main, tables), self.packages), FORMAT_VERSION))
        digest = hashlib.sha256(record).hexdigest()
        return Encoded(False, b"%d %s\n" % (len(record), digest.encode()) + record)

    def _changes(self, uid: str, tracked: TrackedDict[Any, Any], marked: set[Any], moved: set[Any],
                 entry: _EntryPickler
                 ) -> tuple[set[Any], dict[Any, bytes], tuple[dict[Any, bytes], list[Any] | None] | None]:
        """One mapping's marked keys, its table after this save (a copy), and what a record must say.

        ``marked`` and ``moved`` are what :meth:`TrackedDict.take_changed` returned.

        The table keeps the mapping's order: an entry changed in place keeps its place, a new
        one (or one deleted and set again) goes to the end, in the mapping's order. A record's
        removals are applied before its entries, so loading rebuilds that order.
        """
        saved = self._tables.get(uid)
        if saved is None:  # a mapping the files do not hold yet: every entry
            marked = set(dict.keys(tracked))
        elif self.verify:
            self._compare(tracked, saved, marked, entry, strict=True)
        table = dict(saved or {})  # a copy: the memory changes only once the whole state is pickled
        changed: dict[Any, bytes] = {}
        removed: list[Any] = []
        appended: set[Any] = set()
        for key in marked:
            if key in tracked and key in table and key not in moved:
                data = entry(dict.__getitem__(tracked, key))
                if table[key] != data:
                    table[key] = changed[key] = data
                continue
            if key in table:
                del table[key]
                removed.append(key)
            if key in tracked:
                appended.add(key)
        if appended:
            for key in dict.keys(tracked) if len(appended) > 1 else appended:
                if key in appended:
                    table[key] = changed[key] = entry(dict.__getitem__(tracked, key))
        if saved is None:
            return marked, table, (changed, None)  # all of it, replacing a table of that name
        return marked, table, (changed, removed) if changed or removed else None

    def _compare(self, tracked: TrackedDict[Any, Any], table: dict[Any, bytes], marked: set[Any],
                 entry: _EntryPickler, *, strict: bool) -> None:
        """Pickle the unmarked entries again: one whose value differs from its saved bytes changed without a mark.

        Equal values can pickle to other bytes (a string shared with an attribute name before a
        restart is a copy after it), so a byte difference is settled by loading the saved bytes.
        """
        loader = self._loader()
        stale: list[Any] = []
        for key in dict.keys(tracked):
            if key in marked:
                continue
            value = dict.__getitem__(tracked, key)
            data = entry(value)
            saved = table.get(key)
            if saved == data:
                continue
            if saved is not None and loader.entry(saved) == value:
                table[key] = data  # the same value: keep the bytes this process makes for it
                continue
            stale.append(key)
        if not stale:
            return
        message = (f"checkpoint: {len(stale)} entries of a tracked mapping changed without being marked "
                   f"(first: {stale[0]!r}); a handler changes a value it did not read by key or touch")
        if strict:
            raise StateError(message)
        log.error("%s; saved now", message)
        for key in stale:
            table[key] = entry(dict.__getitem__(tracked, key))

    def write(self, encoded: Encoded) -> int:
        """Write ``encoded`` (blocking; use a worker thread). Returns the files' size in bytes."""
        ensure_private_folder(self.folder)
        try:
            if encoded.base:
                self._write_base(encoded.data)
            else:
                if self._log is None:  # pragma: no cover - encode() gives a base until one was written
                    raise StateError("a checkpoint record needs a base written before it")
                fd = open_private(self._log, os.O_WRONLY | os.O_APPEND)
                try:
                    write_all(fd, encoded.data)
                    os.fsync(fd)
                finally:
                    os.close(fd)
                self._log_size += len(encoded.data)
        except OSError as exc:
            raise StateError(f"cannot write checkpoint {self.path}: {exc.strerror or exc}") from None
        self._ahead = False
        return self._base_size + self._log_size

    def _write_base(self, data: bytes) -> None:
        # The new log first, then the base naming it, then the old logs go: a crash between any two
        # steps leaves a base with its own log.
        log_path = _log_path(self.path, data[: data.index(b"\n")].split(b" ")[3].decode())
        fd = open_private(log_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        atomic_write(self.path, data)  # also flushes the folder, with the new log's entry
        for old in log_files(self.path):
            if old != log_path:
                old.unlink(missing_ok=True)
        self._log, self._base_size, self._log_size = log_path, len(data), 0

    def save(self, state: Any) -> int:
        """:meth:`encode` then :meth:`write`; returns the files' size in bytes."""
        return self.write(self.encode(state))
