"""The effect journal: every external effect is durably *pending* before it runs, *done* after.

The protocol the engine uses (``engine/ticker.py``), in this order each tick:

1. :meth:`Journal.stage` adds the tick's decided effects to the pending set in
   memory only (an effect whose key is already pending or done is skipped: a
   replayed decision is neither lost nor doubled);
2. :meth:`Journal.snapshot` is taken in the same synchronous step as the rest of
   the state, and the checkpoint is written atomically: the pending effects
   become durable *together with* the decisions and cursors behind them;
3. :meth:`Journal.compact` then drops every line up to the snapshot's ``seq``;
4. the executor runs the pending effects and :meth:`Journal.mark_done` appends
   one ``done`` line per finished effect (one write and one ``fsync`` per run of the chains,
   and one per batch Toloka answered);
5. the next checkpoint carries the smaller pending set, and compacts again.

The snapshot's ``effects`` is one :class:`~common.tracked.TrackedDict` that the
journal keeps in step with its pending set at each :meth:`Journal.snapshot`, so a
checkpoint writes only the effects added or done since the one before: during a
backlog hundreds of effects wait for their turn, and each tick would otherwise
pickle all of them again.

Why stage and not write pending lines first: pending lines written ahead of
the checkpoint outlive a crash without the decisions that made them; a restart
would run them, compact their keys away, and decide the re-delivered events
again, writing every table row of that tick twice (found by tools/soak.py).
:meth:`Journal.record` (pending lines with one ``fsync`` before anything runs)
is the protocol for a caller that does not checkpoint its decisions first; the
engine does not use it.

On disk: ``saves/journal.jsonl`` is append-only; each line is
``<crc32 hex> <json>\\n`` with ``{"seq": n, "op": "pending", "key": k, "effect": {...}}``
or ``{"seq": n, "op": "done", "key": k}``; ``seq`` grows by one per line. A done line
may carry ``"learned": {name: text}``: what the effect told the pipeline that exists
nowhere else (a stored photo's measurements, Toloka's refusal, the status that overtook
a reject); :meth:`Journal.learned` hands it back after a restart. On
start, :meth:`Journal.open` takes the snapshot from the checkpoint and replays
the lines after its ``seq``: :meth:`Journal.pending` is what must be executed
again (idempotently), and a ``done`` line after the snapshot tells the engine an
effect finished after the last checkpoint (``Engine.recount_after_restart``
counts its money once). A torn last line (a crash mid-append) is cut off; a bad
line anywhere else, or a gap in ``seq``, stops start-up with :class:`StateError`.

Keys come from :mod:`engine.actions` records (``effect.key``). Methods block on
disk I/O; the engine calls them through ``asyncio.to_thread`` (an internal lock
makes that safe).
"""

from __future__ import annotations

import logging
import os
import stat
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, is_dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from common.errors import StateError
from common.files import write_all
from common.tracked import TrackedDict
from engine import actions
from engine.durable import (
    atomic_write,
    crc_entry,
    crc_line,
    ensure_private_folder,
    open_private,
    read_crc_lines,
    refuse_shared_file,
)

log = logging.getLogger(__name__)

DEFAULT_NAME = "journal.jsonl"
Effect = Any  # an engine.actions record: a frozen dataclass with a ``key`` property


@dataclass(frozen=True, slots=True)
class JournalSnapshot:
    """What the checkpoint keeps of the journal: effects not yet done (key -> effect, oldest first), and
    the last seq covered.

    ``effects`` is tracked: the journal updates the same mapping at each snapshot, so the
    checkpoint saves only what changed since the last one (see the module docstring).
    """

    seq: int = 0
    effects: TrackedDict[str, Effect] = field(default_factory=TrackedDict)

    @classmethod
    def of(cls, seq: int, pending: Iterable[Effect]) -> JournalSnapshot:
        """A snapshot of ``pending`` (oldest first) in a new mapping."""
        return cls(seq, _by_key(pending))

    @property
    def pending(self) -> tuple[Effect, ...]:
        """The effects not yet done, oldest first."""
        return tuple(self.effects.values())

    def __setstate__(self, state: Any) -> None:
        # A checkpoint written before the tracking holds (seq, a tuple of effects).
        seq, effects = state
        object.__setattr__(self, "seq", seq)
        object.__setattr__(self, "effects", effects if isinstance(effects, TrackedDict) else _by_key(effects))


def _by_key(effects: Iterable[Effect]) -> TrackedDict[str, Effect]:
    return TrackedDict((effect.key, effect) for effect in effects)


# --- JSON form of effect records --------------------------------------------------------
# Tagged, so it round-trips exactly without knowing field types: {"$a": class, "f": fields},
# {"$d": "0.05"} for Decimal, {"$t": [...]} for tuples, {"$m": {...}} for a dict whose keys
# could be mistaken for tags. Only classes defined in engine.actions are rebuilt.


def encode_value(value: Any) -> Any:
    """JSON-ready form of an effect record or any value inside one."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, Decimal):
        return {"$d": str(value)}
    if isinstance(value, tuple):
        return {"$t": [encode_value(item) for item in value]}
    if isinstance(value, list):
        return [encode_value(item) for item in value]
    if isinstance(value, dict):
        body = {_need_str_key(k): encode_value(v) for k, v in value.items()}
        return {"$m": body} if any(k.startswith("$") for k in body) else body
    if is_dataclass(value) and not isinstance(value, type) and type(value).__module__ == actions.__name__:
        return {"$a": type(value).__name__, "f": {f.name: encode_value(getattr(value, f.name)) for f in fields(value)}}
    raise TypeError(f"cannot journal a {type(value).__module__}.{type(value).__qualname__}")


def decode_value(data: Any) -> Any:
    """Inverse of :func:`encode_value`; ``ValueError`` on anything it did not write."""
    if isinstance(data, list):
        return [decode_value(item) for item in data]
    if not isinstance(data, dict):
        return data
    if len(data) == 1 and "$d" in data:
        return Decimal(data["$d"])
    if len(data) == 1 and "$t" in data:
        return tuple(decode_value(item) for item in data["$t"])
    if len(data) == 1 and "$m" in data:
        return {k: decode_value(v) for k, v in data["$m"].items()}
    if set(data) == {"$a", "f"}:
        cls = getattr(actions, str(data["$a"]), None)
        if not (isinstance(cls, type) and is_dataclass(cls) and cls.__module__ == actions.__name__):
            raise ValueError(f"unknown effect type {data['$a']!r}")
        try:
            return cls(**{k: decode_value(v) for k, v in data["f"].items()})
        except TypeError as exc:
            raise ValueError(f"fields of {data['$a']} do not match: {exc}") from None
    if any(k.startswith("$") for k in data):
        raise ValueError(f"unknown tag in {sorted(data)}")
    return {k: decode_value(v) for k, v in data.items()}


def _need_str_key(key: object) -> str:
    if not isinstance(key, str):
        raise TypeError(f"dict keys in effects must be strings, got {key!r}")
    return key


def _parse(raw: bytes) -> dict[str, Any] | None:
    """The entry of one line (without its newline), or None if it is damaged or not a journal entry."""
    entry = crc_entry(raw)
    if entry is None or entry.get("op") not in ("pending", "done"):
        return None
    if not isinstance(entry.get("seq"), int) or not isinstance(entry.get("key"), str):
        return None
    return entry


def _text_record(value: Any) -> bool:
    """Is ``value`` a record a done line may carry as ``learned``: names mapped to text?"""
    return isinstance(value, Mapping) and all(isinstance(k, str) and isinstance(v, str) for k, v in value.items())


class Journal:
    """Pending and recently done effects, mirrored in an fsync'ed append-only file."""

    def __init__(self, path: Path, snapshot: JournalSnapshot) -> None:
        """Use :meth:`open`; this only sets up empty bookkeeping."""
        self.path = path
        self._lock = threading.Lock()
        self._seq = snapshot.seq
        # Kept equal to _pending at each snapshot(), and only there (so on the caller's thread). A
        # copy under the snapshot's name: the checkpoint holds exactly these entries under it.
        self._view: TrackedDict[str, Effect] = TrackedDict.restored(snapshot.effects.uid, snapshot.effects)
        self._pending: dict[str, Effect] = dict(snapshot.effects)
        self._done: dict[str, int] = {}  # key -> seq of its done line, until compaction
        self._learned: dict[str, dict[str, str]] = {}  # key -> what its done line carries, until compaction
        self._tail: list[tuple[int, bytes]] = []  # lines with seq > last compaction
        self._fd: int | None = None

    # --- opening and replay ------------------------------------------------------------

    @classmethod
    def open(cls, folder: Path, snapshot: JournalSnapshot | None = None, name: str = DEFAULT_NAME) -> Journal:
        """Open ``<folder>/<name>`` and replay what the checkpoint's ``snapshot`` does not cover."""
        folder = ensure_private_folder(folder)
        journal = cls(folder / name, snapshot or JournalSnapshot())
        journal._replay(snapshot.seq if snapshot else 0)
        journal._fd = open_private(journal.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
        return journal

    def _replay(self, covered: int) -> None:
        try:
            with open(self.path, "rb") as handle:
                info = os.fstat(handle.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise StateError(f"journal {self.path} is not a regular file; it was left in place")
                refuse_shared_file(self.path, info)
                data = handle.read()
        except FileNotFoundError:
            return
        except OSError as exc:
            raise StateError(f"cannot read journal {self.path}: {exc.strerror or exc}; it was left in place") from None
        found = read_crc_lines(data, _parse)
        if found.damaged is not None:
            raise StateError(
                f"journal {self.path} line {found.damaged} is corrupt; it was left in place "
                f"(move saves/ away to start afresh, which may repeat work)"
            )
        expected = None
        for number, raw, entry in found.entries:
            self._apply(entry, raw, covered, expected, number)
            expected = entry["seq"] + 1
        if found.tail is not None:
            # A crash mid-append: a damaged last line (a power cut), or an unfinished one.
            self._cut(found.good_end, "a damaged last line" if found.tail == "damaged" else "an unfinished last line")

    def _apply(self, entry: dict[str, Any], raw: bytes, covered: int, expected: int | None, number: int) -> None:
        seq = entry["seq"]
        if expected is not None and seq != expected:
            raise StateError(
                f"journal {self.path} line {number}: entry {seq} follows {expected - 1}; it was left in place"
            )
        if seq <= covered:
            return  # already compacted into the checkpoint
        if seq != self._seq + 1:
            raise StateError(
                f"journal {self.path} continues at entry {seq} but the checkpoint covers entries up to "
                f"{covered}: entries are missing (was the checkpoint replaced or deleted?); both files were "
                f"left in place (move saves/ away to start afresh, which may repeat work)"
            )
        self._seq = seq
        self._tail.append((seq, raw + b"\n"))
        key = entry["key"]
        if entry["op"] == "done":
            learned = entry.get("learned", {})
            if not _text_record(learned):
                raise StateError(f"journal {self.path} line {number}: bad learned record {learned!r:.80}; "
                                 f"it was left in place")
            self._pending.pop(key, None)
            self._done[key] = seq
            if learned:
                self._learned[key] = learned
            return
        try:
            effect = decode_value(entry["effect"])
        except (ValueError, KeyError, TypeError) as exc:
            raise StateError(f"journal {self.path} line {number}: bad effect record ({exc})") from None
        if key not in self._done:
            self._pending[key] = effect

    def _cut(self, offset: int, what: str) -> None:
        log.warning("journal %s ends with %s (a crash mid-write); cutting it off", self.path, what)
        try:
            os.truncate(self.path, offset)
        except OSError as exc:
            raise StateError(f"cannot repair journal {self.path}: {exc.strerror or exc}") from None

    # --- the running protocol ------------------------------------------------------------

    def record(self, effects: Iterable[Effect]) -> list[Effect]:
        """Durably mark ``effects`` pending; returns the ones that were not known yet.

        Effects whose key is already pending or done (a replayed decision) are
        skipped. Nothing is returned before the lines are fsync'ed.
        """
        with self._lock:
            fresh: list[Effect] = []
            chunk: list[bytes] = []
            seq = self._seq
            staged: dict[str, Effect] = {}
            for effect in effects:
                key = effect.key
                known = self._pending.get(key, staged.get(key))
                if known is not None or key in self._done:
                    if known is not None and encode_value(known) != encode_value(effect):
                        log.warning("effect %s decided again with different content; keeping the first", key)
                    continue
                seq += 1
                line = crc_line({"seq": seq, "op": "pending", "key": key, "effect": encode_value(effect)})
                chunk.append(line)
                staged[key] = effect
                fresh.append(effect)
            if chunk:
                self._append(chunk, first_seq=self._seq + 1)
                self._pending.update(staged)
                self._seq = seq
            return fresh

    def stage(self, effects: Iterable[Effect]) -> list[Effect]:
        """Add ``effects`` to the pending set without writing a line; returns the ones not known yet.

        For a caller that checkpoints (state plus :meth:`snapshot`) before it executes
        anything, as the daemon's tick does: the effects then become durable in the same
        atomic write as the decisions and cursors behind them. Pending lines written
        ahead of that checkpoint outlive a crash without those decisions; a restart runs
        them, compacts their keys away, and then decides the re-delivered events again,
        so every table row of that tick is written twice (found by tools/soak.py).
        """
        with self._lock:
            fresh: list[Effect] = []
            for effect in effects:
                key = effect.key
                known = self._pending.get(key)
                if known is not None or key in self._done:
                    if known is not None and encode_value(known) != encode_value(effect):
                        log.warning("effect %s decided again with different content; keeping the first", key)
                    continue
                self._pending[key] = effect
                fresh.append(effect)
            return fresh

    def mark_done(self, done: Iterable[Effect | str], learned: Mapping[str, Mapping[str, str]] | None = None) -> None:
        """Durably mark effects (or keys) done; unknown or already-done keys are ignored.

        ``learned`` (key -> name -> text) goes on the done lines of those keys, so that
        it outlives a crash before the next checkpoint (see :meth:`learned`).
        """
        learned = learned or {}
        for key, record in learned.items():  # checked here: a bad record would stop every later start-up
            if not _text_record(record):
                raise TypeError(f"learned record of {key!r} must map names to text, got {record!r:.80}")
        with self._lock:
            chunk: list[bytes] = []
            seq = self._seq
            keys: dict[str, None] = {}
            carried: dict[str, dict[str, str]] = {}
            for item in done:
                key = item if isinstance(item, str) else item.key
                if key not in self._pending or key in keys:
                    continue
                seq += 1
                entry: dict[str, Any] = {"seq": seq, "op": "done", "key": key}
                if learned.get(key):
                    entry["learned"] = carried[key] = dict(learned[key])
                chunk.append(crc_line(entry))
                keys[key] = None
            if not chunk:
                return
            self._append(chunk, first_seq=self._seq + 1)
            for offset, key in enumerate(keys, start=1):
                del self._pending[key]
                self._done[key] = self._seq + offset
            self._learned.update(carried)
            self._seq = seq

    def _append(self, chunk: list[bytes], first_seq: int) -> None:
        if self._fd is None:
            raise StateError(f"journal {self.path} is closed")
        data = b"".join(chunk)
        try:
            write_all(self._fd, data)
            os.fsync(self._fd)
        except OSError as exc:
            raise StateError(f"cannot write journal {self.path}: {exc.strerror or exc}") from None
        self._tail.extend((first_seq + i, line) for i, line in enumerate(chunk))

    def pending(self) -> list[Effect]:
        """Effects recorded and not yet done, oldest first (to execute, or re-execute after a restart)."""
        with self._lock:
            return list(self._pending.values())

    def status(self, key: str) -> str | None:
        """``"pending"``, ``"done"`` (since the last compaction) or None."""
        with self._lock:
            if key in self._pending:
                return "pending"
            return "done" if key in self._done else None

    def learned(self, key: str) -> dict[str, str]:
        """What the done line of ``key`` carries (empty if nothing, or once compacted into a checkpoint)."""
        with self._lock:
            return dict(self._learned.get(key, {}))

    @property
    def seq(self) -> int:
        """Number of the last journal entry written."""
        return self._seq

    def snapshot(self) -> JournalSnapshot:
        """Plain data for the checkpoint; take it together with the state it belongs to.

        Its ``effects`` is the same mapping every time, brought up to date here: an effect done
        since the last snapshot leaves it, a new one is added at the end, so its order stays the
        pending order. It changes at the next call only: encode the checkpoint before that, and
        call this on the thread that encodes (the loop), since readers of the mapping take no lock.
        """
        with self._lock:
            view, pending = self._view, self._pending
            stale = [key for key, effect in view.items() if pending.get(key) is not effect]
            if any(key in pending for key in stale):
                # An effect a replay read again from its line replaced the one of the checkpoint, in
                # place: rebuilt, so that the mapping keeps the pending order exactly.
                view.clear()
                view.update(pending)
            else:
                for key in stale:
                    del view[key]
                if len(view) < len(pending):  # what is left of the view is pending's oldest, in order
                    for key, effect in pending.items():
                        if key not in view:
                            view[key] = effect
            return JournalSnapshot(self._seq, view)

    def compact(self, snapshot: JournalSnapshot) -> None:
        """Forget everything ``snapshot`` covers; call once its checkpoint is on disk."""
        with self._lock:
            if self._fd is None:
                raise StateError(f"journal {self.path} is closed")
            kept = [(seq, line) for seq, line in self._tail if seq > snapshot.seq]
            try:
                if kept:
                    atomic_write(self.path, b"".join(line for _, line in kept))
                else:
                    # Nothing after the snapshot: an empty journal; truncating in place is atomic enough.
                    os.ftruncate(self._fd, 0)
                    os.fsync(self._fd)
                fd = open_private(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT) if kept else None
            except OSError as exc:
                raise StateError(f"cannot compact journal {self.path}: {exc.strerror or exc}") from None
            if fd is not None:
                os.close(self._fd)
                self._fd = fd
            self._tail = kept
            self._done = {key: seq for key, seq in self._done.items() if seq > snapshot.seq}
            self._learned = {key: record for key, record in self._learned.items() if key in self._done}

    def close(self) -> None:
        """Close the file; the journal object cannot be used afterwards."""
        with self._lock:
            if self._fd is not None:
                os.close(self._fd)
                self._fd = None

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
