"""Group commit: many callers' items written by as few (fsync'ed) writes as the callers allow.

Chains end and append at about the same moment (they go on together after a
batch). Each would pay a thread hop, a write and an fsync of its own; here one
drain task writes whatever has queued up in one call, then the next lot. Each
caller returns once its items are written, or gets the error of the write that
carried them. A caller cancelled meanwhile does not stop the write (as a thread
already writing would not stop either).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    """Calls ``write(items)`` in a worker thread for the items of every caller that queued meanwhile."""

    def __init__(self, write: Callable[[Sequence[T]], object]) -> None:
        self._write = write
        self._queue: list[tuple[Sequence[T], asyncio.Future[None]]] = []
        self._drainer: asyncio.Task[None] | None = None

    async def add(self, items: Sequence[T]) -> None:
        """Return once ``items`` are written (with those of whoever came at the same time)."""
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queue.append((items, done))
        if self._drainer is None or self._drainer.done():
            self._drainer = asyncio.create_task(self._drain())
        await done

    async def _drain(self) -> None:
        while self._queue:
            group, self._queue = self._queue, []
            try:
                await asyncio.to_thread(self._write, [item for items, _ in group for item in items])
            except Exception as exc:  # every caller of this write hears of its failure
                for _, waiter in group:
                    if not waiter.done():
                        waiter.set_exception(exc)
            else:
                for _, waiter in group:
                    if not waiter.done():
                        waiter.set_result(None)
