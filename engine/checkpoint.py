"""The daemon's state on disk: one pickled checkpoint file in ``saves/``, written atomically.

File layout (format version 1)::

    PEDESTRIAN-PIPELINE-CHECKPOINT <version> <payload length> <sha256 of payload>\\n
    <payload: pickle protocol 5 of the state>

Rules:

* Writes are atomic (:func:`engine.durable.atomic_write`): a reader, or a restart
  after ``kill -9``, sees the old file or the new one, never a mix.
* Only plain data goes in: builtins, ``Decimal``, ``datetime``, ``UUID``, paths,
  a few ``collections`` types, and classes from the project's own packages
  (dataclasses, enums). Anything else (a client, a session, a logger, a
  :class:`~common.secrets.Secret`) makes :meth:`CheckpointStore.encode` raise
  :class:`StateError`. Loading uses the same allow-list, so a checkpoint can
  never make the daemon import or call anything else.
* The file is 0600 in a 0700 folder, and one writable by group or others is
  refused: unpickling a file someone else can write is running their code.
* A missing file means "first start". A truncated, corrupt, unreadable or
  unknown-version file stops start-up with :class:`StateError` naming the file,
  and the file is left where it is. Nothing is reset silently.

Pickle on the event-loop thread (:meth:`CheckpointStore.encode`, fast and
consistent with the state in memory), write in a worker thread
(``await asyncio.to_thread(store.write, data)``).
"""

from __future__ import annotations

import hashlib
import io
import os
import pickle
import stat
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common.errors import StateError
from common.secrets import Secret
from engine.durable import atomic_write, ensure_private_folder, refuse_shared_file

FORMAT_VERSION = 1
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
    """Header plus pickle of ``state``; :class:`StateError` if it is not plain data."""
    buffer = io.BytesIO()
    try:
        _PlainPickler(buffer, tuple(packages)).dump(state)
    except StateError:
        raise
    except (pickle.PicklingError, TypeError, AttributeError, RecursionError) as exc:
        raise StateError(f"checkpoint state cannot be pickled: {exc}") from None
    payload = buffer.getvalue()
    digest = hashlib.sha256(payload).hexdigest()
    header = b"%s %d %d %s\n" % (MAGIC, FORMAT_VERSION, len(payload), digest.encode())
    return header + payload


def decode_checkpoint(
    data: bytes, path: Path, packages: Iterable[str] = DEFAULT_PACKAGES, aliases: Aliases | None = None
) -> Any:
    """Inverse of :func:`encode_checkpoint`; every problem is a :class:`StateError` naming ``path``."""
    advice = f"the file was left in place; restore a backup or move {path} away to start afresh"
    end = data.find(b"\n", 0, _MAX_HEADER)
    fields = data[:end].split(b" ") if end >= 0 else []
    if len(fields) != 4 or fields[0] != MAGIC:
        raise StateError(f"checkpoint {path} is corrupt or not a checkpoint (bad header); {advice}")
    try:
        version, length = int(fields[1]), int(fields[2])
    except ValueError:
        raise StateError(f"checkpoint {path} is corrupt (bad header); {advice}") from None
    if version != FORMAT_VERSION:
        raise StateError(
            f"checkpoint {path} has format version {version}; this program reads version {FORMAT_VERSION}; "
            f"{advice}"
        )
    payload = data[end + 1 :]
    if len(payload) != length:
        raise StateError(
            f"checkpoint {path} is truncated or corrupt ({len(payload)} of {length} payload bytes); {advice}"
        )
    if hashlib.sha256(payload).hexdigest().encode() != fields[3]:
        raise StateError(f"checkpoint {path} is corrupt (checksum mismatch); {advice}")
    try:
        return _PlainUnpickler(io.BytesIO(payload), tuple(packages), aliases or {}).load()
    except Exception as exc:  # unpickling can raise almost anything
        raise StateError(
            f"checkpoint {path} cannot be loaded ({type(exc).__name__}: {exc}); was the code changed "
            f"incompatibly? {advice}"
        ) from None


class CheckpointStore:
    """The checkpoint file ``<folder>/<name>``: load once at start, save after each tick."""

    def __init__(
        self,
        folder: Path,
        name: str = DEFAULT_NAME,
        *,
        packages: Iterable[str] = DEFAULT_PACKAGES,
        aliases: Aliases | None = None,
    ) -> None:
        self.folder = Path(folder).absolute()
        self.path = self.folder / name
        self.packages = tuple(packages)
        self.aliases: Aliases = dict(aliases or {})
        # When the loaded checkpoint was written (the file's modification time, naive UTC), for the
        # start-up line "resumed from the checkpoint of ..."; None until load() found one.
        self.saved_at: datetime | None = None

    def load(self) -> Any | None:
        """The saved state, or None when there is no checkpoint yet (first start); sets :attr:`saved_at`."""
        ensure_private_folder(self.folder)
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC | os.O_NOFOLLOW)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StateError(
                f"cannot read checkpoint {self.path}: {exc.strerror or exc}; the file was left in place"
            ) from None
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise StateError(f"checkpoint {self.path} is not a regular file; the file was left in place")
            refuse_shared_file(self.path, info)
            with os.fdopen(fd, "rb", closefd=False) as handle:
                data = handle.read()
            saved_at = datetime.fromtimestamp(info.st_mtime, UTC).replace(tzinfo=None)
        except OSError as exc:
            raise StateError(
                f"cannot read checkpoint {self.path}: {exc.strerror or exc}; the file was left in place"
            ) from None
        finally:
            os.close(fd)
        state = decode_checkpoint(data, self.path, self.packages, self.aliases)
        self.saved_at = saved_at
        return state

    def decode(self, data: bytes) -> Any:
        """Inverse of :meth:`encode` (the engine restores its pipeline state from the last checkpoint)."""
        return decode_checkpoint(data, self.path, self.packages, self.aliases)

    def encode(self, state: Any) -> bytes:
        """Pickle ``state`` now (call on the thread that owns the state)."""
        return encode_checkpoint(state, self.packages)

    def write(self, data: bytes) -> int:
        """Atomically replace the checkpoint with ``data`` (blocking; use a worker thread). Returns its size."""
        ensure_private_folder(self.folder)
        try:
            atomic_write(self.path, data)
        except OSError as exc:
            raise StateError(f"cannot write checkpoint {self.path}: {exc.strerror or exc}") from None
        return len(data)

    def save(self, state: Any) -> int:
        """:meth:`encode` then :meth:`write`; returns the file size in bytes."""
        return self.write(self.encode(state))
