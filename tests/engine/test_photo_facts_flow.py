"""Photo facts through the engine: ChainResult.facts -> EngineState.facts -> Context.facts -> acknowledged.

An offline engine (tests/engine/probe_world.py: real checkpoint and journal, no
Toloka) with an executor stand-in that reports what a real StorePhoto reports.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from probe_world import Clock, offline_engine, spec

from engine import ticker
from engine.actions import Action, AppendRows, RaiseOverlap, SetStatus, Step, StorePhoto
from engine.executor import ChainResult
from engine.spec import Batch, Context, Decision
from engine.state import checkpoint_store, load_state

T0 = datetime(2026, 5, 1, 12, 0, 0)
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v2-before-outages" / "checkpoint.pkl"


class StoringExecutor:
    """Runs every chain to its end; a StorePhoto reports facts ``facts:<key>``, as a first download would."""

    store = None

    async def run_chains(self, chains: Mapping[str, Sequence[Action]],
                         on_chain_end: Callable[[str, ChainResult], Awaitable[None]],
                         *, gate: Callable[[Action], bool] | None = None,
                         batching: object = None) -> dict[str, ChainResult]:
        results = {}
        for chain, actions in chains.items():
            result = ChainResult(done=list(actions),
                                 facts={a.key: f"facts:{a.dst_key}" for a in actions if isinstance(a, StorePhoto)})
            await on_chain_end(chain, result)
            results[chain] = result
        return results


def recording(seen: list[Context[None]], acknowledge: Callable[[Context[None]], list[str]]) -> Any:
    def handler(state: dict[str, Any], batch: Batch, ctx: Context[None]) -> Decision:
        seen.append(ctx)
        return Decision(acknowledged=acknowledge(ctx))

    return handler


async def test_facts_of_stored_photos_are_kept_checkpointed_and_handed_on_until_acknowledged(tmp_path: Path) -> None:
    seen: list[Context[None]] = []
    pipeline = spec(recording(seen, lambda ctx: [k for k in ctx.facts if k.endswith("a.jpg")]))
    engine = offline_engine(tmp_path, None, Clock(T0), pipeline)
    engine.executor = StoringExecutor()  # type: ignore[assignment]
    engine.journal.stage([Step("pa1", StorePhoto("att-a", "tmp/a.jpg")), Step("pa1", StorePhoto("att-b", "tmp/b.jpg")),
                          Step("pa1", AppendRows("decisions", "pa1/x", ({"event": "x"},)))])
    await engine.execute_pending()
    assert engine.state.facts == {"store:tmp/a.jpg": "facts:tmp/a.jpg", "store:tmp/b.jpg": "facts:tmp/b.jpg"}
    await engine.checkpoint()
    engine.journal.close()

    again = offline_engine(tmp_path, None, Clock(T0), pipeline)  # a restart keeps what no handler took yet
    assert again.state.facts == engine.state.facts
    empty = Batch("checks", "p1", "accepted", ())
    decisions, failed = again._decide_all({"checks": (None, empty)}, T0)  # type: ignore[dict-item]
    assert not failed and seen[0].facts == engine.state.facts  # called although nothing new came
    assert decisions["checks"].acknowledged == ["store:tmp/a.jpg"]
    assert again.state.facts == {"store:tmp/b.jpg": "facts:tmp/b.jpg"}
    again.journal.close()


async def test_with_no_facts_and_nothing_new_no_handler_is_called(tmp_path: Path) -> None:
    seen: list[Context[None]] = []
    engine = offline_engine(tmp_path, None, Clock(T0), spec(recording(seen, lambda ctx: [])))
    decisions, _ = engine._decide_all({"checks": (None, Batch("checks", "p1", "accepted", ()))}, T0)  # type: ignore[dict-item]
    assert seen == [] and decisions["checks"] == Decision()
    assert Context(None, {}, T0).facts == {}  # the default, for contexts built elsewhere
    engine.journal.close()


async def test_unread_facts_are_bounded_oldest_first(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(ticker, "MAX_FACTS", 3)
    engine = offline_engine(tmp_path, None, Clock(T0))
    engine.state.facts = {"store:old": "0"}
    with caplog.at_level(logging.WARNING, logger="pipeline"):
        engine._keep_facts({f"store:{n}": str(n) for n in range(4)})
    assert list(engine.state.facts) == ["store:1", "store:2", "store:3"]
    assert "2 left unread were dropped" in caplog.text
    engine.journal.close()


def test_a_checkpoint_from_before_the_facts_loads_with_none(tmp_path: Path) -> None:
    saves = tmp_path / "saves"
    saves.mkdir(mode=0o700)
    shutil.copy(FIXTURE, saves / "checkpoint.pkl")
    os.chmod(saves / "checkpoint.pkl", 0o600)
    assert b"facts" not in (saves / "checkpoint.pkl").read_bytes()
    state, found = load_state(checkpoint_store(saves, spec()), spec(), T0)
    assert found and state.facts == {} and state.refused == {"overlap:t1:5": "pool closed"}


class TellingExecutor(StoringExecutor):
    """Also reports Toloka's refusal of every RaiseOverlap and an auto-accept that overtook every reject."""

    async def run_chains(self, chains: Mapping[str, Sequence[Action]],
                         on_chain_end: Callable[[str, ChainResult], Awaitable[None]],
                         *, gate: Callable[[Action], bool] | None = None,
                         batching: object = None) -> dict[str, ChainResult]:
        async def telling(chain: str, result: ChainResult) -> None:
            result.refused.update({a.key: "pool closed" for a in result.done if isinstance(a, RaiseOverlap)})
            result.overtaken.update({a.key: "ACCEPTED" for a in result.done
                                     if isinstance(a, SetStatus) and a.status == "REJECTED"})
            await on_chain_end(chain, result)

        return await super().run_chains(chains, telling, gate=gate, batching=batching)


async def test_what_effects_tell_the_handlers_outlives_a_crash_before_the_next_checkpoint(tmp_path: Path) -> None:
    """Facts, refusals and auto-accepts ride on the effects' done journal lines: a tick writes no
    second checkpoint for them, and a restart from the checkpoint before the effects has them all."""
    engine = offline_engine(tmp_path, None, Clock(T0))
    engine.executor = TellingExecutor()  # type: ignore[assignment]
    engine.journal.stage([
        Step("pa1", StorePhoto("att-a", "tmp/a.jpg")),
        Step("pa1", RaiseOverlap("p1", "t1", 5)),
        Step("pa2", SetStatus("a2", "REJECTED", "no")),
        Step("pa3", AppendRows("decisions", "pa3/x", ({"event": "x"},))),
    ])
    engine._due_observers = lambda: []  # type: ignore[method-assign]  # a tick that finds nothing new
    writes: list[bytes] = []
    write = engine.checkpoints.write
    engine.checkpoints.write = lambda data: writes.append(data) or write(data)  # type: ignore[method-assign]
    await engine.tick()  # checkpoints what it staged, then runs the effects
    assert engine.state.facts == {"store:tmp/a.jpg": "facts:tmp/a.jpg"}
    assert engine.state.refused == {"overlap:t1:5": "pool closed"}
    assert (engine.state.stats.accepted, engine.state.stats.rejected) == (1, 0)
    assert len(writes) == 1  # before the effects only: none after them for what they told
    engine.journal.close()  # a kill -9 here

    again = offline_engine(tmp_path, None, Clock(T0))
    assert again.state.facts == {} and again.state.refused == {}  # the checkpoint is from before the effects
    assert again.recount_after_restart() == 4
    assert again.state.facts == engine.state.facts
    assert again.state.refused == engine.state.refused
    assert (again.state.stats.accepted, again.state.stats.rejected) == (1, 0)  # the reject was overtaken
    assert again.journal.pending() == []
    await again.checkpoint()  # compacts the done lines: what they told now lives in the checkpoint
    assert again.journal.learned("store:tmp/a.jpg") == {}
    again.journal.close()
    third = offline_engine(tmp_path, None, Clock(T0))
    assert third.recount_after_restart() == 0 and third.state.facts == engine.state.facts
    third.journal.close()
