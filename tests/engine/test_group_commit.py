"""engine/group_commit.py: callers that come together share a write; each hears of its own outcome."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

import pytest

from engine.group_commit import GroupCommit


async def test_callers_that_queue_while_a_write_runs_share_the_next_write() -> None:
    gate = threading.Event()
    writes: list[list[int]] = []

    def write(items: Sequence[int]) -> None:
        gate.wait(5)  # the first write is slow: everyone else queues up behind it
        writes.append(list(items))

    commit: GroupCommit[int] = GroupCommit(write)
    first = asyncio.create_task(commit.add([0]))
    await asyncio.sleep(0.05)
    others = [asyncio.create_task(commit.add([n, n + 100])) for n in range(1, 6)]
    await asyncio.sleep(0.05)
    gate.set()
    await asyncio.gather(first, *others)
    assert writes == [[0], [1, 101, 2, 102, 3, 103, 4, 104, 5, 105]]


async def test_every_caller_of_a_failed_write_gets_its_error_and_the_next_write_goes_on() -> None:
    calls: list[list[str]] = []

    def write(items: Sequence[str]) -> None:
        calls.append(list(items))
        if "bad" in items:
            raise OSError(28, "No space left on device")

    commit: GroupCommit[str] = GroupCommit(write)
    results = await asyncio.gather(commit.add(["bad"]), commit.add(["a"]), return_exceptions=True)
    assert all(isinstance(r, OSError) for r in results)  # both rode the same write
    await commit.add(["good"])
    assert calls[-1] == ["good"]


async def test_a_cancelled_caller_does_not_stop_the_write() -> None:
    written: list[str] = []
    started = threading.Event()
    release = threading.Event()

    def write(items: Sequence[str]) -> None:
        started.set()
        release.wait(5)
        written.extend(items)

    commit: GroupCommit[str] = GroupCommit(write)
    caller = asyncio.create_task(commit.add(["x"]))
    await asyncio.to_thread(started.wait, 5)
    caller.cancel()
    with pytest.raises(asyncio.CancelledError):
        await caller
    release.set()
    await commit.add(["y"])
    assert written == ["x", "y"]
