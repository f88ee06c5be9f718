"""A dict that remembers which of its keys may have changed, so a checkpoint saves only those.

The daemon checkpoints its state every tick. Most of the state is a few large
mappings (undecided works, answers waiting for their task's overlap) of which
one tick changes a few entries. :class:`TrackedDict` names the entries that
may have changed since the checkpoint last took them
(:meth:`TrackedDict.take_changed`), and :mod:`engine.checkpoint` pickles those
and reuses the bytes it saved before for the rest.

What counts as a possible change, so that handlers need not say so themselves:

* every write (``d[k] = v``, ``del``, ``pop``, ``setdefault``, ``update``, ...);
* every read of one entry by key (``d[k]``, ``d.get(k)``): the value is
  mutable and the reader may change it in place.

Iterating (``values()``, ``items()``), testing membership or :meth:`TrackedDict.peek`
marks nothing: code that changes a value it found by walking the mapping calls
:meth:`TrackedDict.touch` for it. A missed mark is caught by the checkpoint's
own comparison when it next writes a base (see :mod:`engine.checkpoint`), and
fails the tests at once.

The checkpoint also keeps the order of the entries: the keys deleted and set
again since the last take (:attr:`take_changed`'s second set) have moved to the end.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar, overload

K = TypeVar("K")
V = TypeVar("V")
D = TypeVar("D")


def _new_uid() -> str:
    # Names the mapping in the checkpoint files; random so a mapping made after a restart
    # never takes the name of one saved before it.
    return os.urandom(8).hex()


class TrackedDict(dict[K, V]):
    """A ``dict`` that collects the keys written or read since :meth:`take_changed` last ran."""

    __slots__ = ("_changed", "_moved", "uid")

    def __init__(self, data: Mapping[K, V] | Iterable[tuple[K, V]] = (), /) -> None:
        super().__init__(data)
        self.uid = _new_uid()
        self._changed: set[K] = set(dict.keys(self))  # new: every entry is still unsaved
        # Keys deleted since the last take: one set again now stands at the end of the order,
        # which a checkpoint keeps (handlers walk the mapping in order; a restart must not change it).
        self._moved: set[K] = set()

    @classmethod
    def of(cls, data: Mapping[K, V]) -> TrackedDict[K, V]:
        """``data`` itself when it is tracked already; else a tracked copy (a plain dict built by hand or
        loaded from a checkpoint written before the tracking)."""
        return data if isinstance(data, TrackedDict) else cls(data)

    @classmethod
    def restored(cls, uid: str, data: Mapping[K, V]) -> TrackedDict[K, V]:
        """The mapping as a checkpoint saved it: its old name, nothing changed yet."""
        tracked: TrackedDict[K, V] = cls(data)
        tracked.uid = uid
        tracked._changed.clear()
        return tracked

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled whole (outside the checkpoint's incremental path): it loads as a new mapping.
        return (TrackedDict, (dict(self),))

    def touch(self, key: K) -> None:
        """Say that the value under ``key`` was changed in place."""
        self._changed.add(key)

    def give_back(self, changed: set[K], moved: set[K]) -> None:
        """Mark again what :meth:`take_changed` returned: a checkpoint took the marks and then failed."""
        self._changed |= changed
        self._moved |= moved

    def take_changed(self) -> tuple[set[K], set[K]]:
        """The keys marked since the last call (present or not), and those of them deleted meanwhile."""
        changed, moved = self._changed, self._moved
        self._changed, self._moved = set(), set()
        return changed, moved

    def __getitem__(self, key: K) -> V:
        value = dict.__getitem__(self, key)
        self._changed.add(key)
        return value

    @overload
    def get(self, key: K, default: None = None, /) -> V | None: ...
    @overload
    def get(self, key: K, default: V, /) -> V: ...
    @overload
    def get(self, key: K, default: D, /) -> V | D: ...

    def get(self, key: K, default: Any = None, /) -> Any:
        if key in self:
            self._changed.add(key)
            return dict.__getitem__(self, key)
        return default

    def peek(self, key: K) -> V | None:
        """The value under ``key`` (or None) without marking it: only for values never changed in place."""
        return dict.get(self, key)

    def __setitem__(self, key: K, value: V) -> None:
        dict.__setitem__(self, key, value)
        self._changed.add(key)

    def __delitem__(self, key: K) -> None:
        dict.__delitem__(self, key)
        self._changed.add(key)
        self._moved.add(key)

    def setdefault(self, key: K, default: V = None, /) -> V:  # type: ignore[assignment]
        self._changed.add(key)
        return dict.setdefault(self, key, default)

    @overload
    def pop(self, key: K, /) -> V: ...
    @overload
    def pop(self, key: K, default: V | D, /) -> V | D: ...

    def pop(self, key: K, *default: Any) -> Any:
        self._changed.add(key)
        self._moved.add(key)
        return dict.pop(self, key, *default)

    def popitem(self) -> tuple[K, V]:
        key, value = dict.popitem(self)
        self._changed.add(key)
        self._moved.add(key)
        return key, value

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> TrackedDict[K, V]:  # type: ignore[override,misc]
        self.update(other)
        return self

    def clear(self) -> None:
        self._changed.update(dict.keys(self))
        self._moved.update(dict.keys(self))
        dict.clear(self)
