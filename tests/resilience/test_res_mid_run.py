"""The token revoked or a pool gone while the daemon runs: clear errors, the rest goes on, state intact."""

from __future__ import annotations

import asyncio

import pytest

from pipelines import open_engine
from tests.resilience.conftest import TOKEN, World


async def test_a_revoked_token_is_reported_per_pool_and_work_resumes_when_it_is_restored(
    world: World, capsys: pytest.CaptureFixture[str]
) -> None:
    pools = world.settings.pools()
    async with open_engine(world.settings) as daemon:
        await daemon.check_pools()
        await daemon.resume()
        for _ in range(100):  # until some work is under way
            await daemon.tick()
            if daemon.state.state.works:
                break
            await asyncio.sleep(0.2)
        under_way = set(daemon.state.state.works)
        assert under_way
        world.emu.token = "revoked"
        searched: set[str] = set()  # a pool with no work at its stage is searched only now and then
        for _ in range(3):
            due = {o.pool for o in daemon._due_observers()}
            summary = await daemon.tick()  # must not raise: the daemon keeps running
            assert summary.errors >= len(due) >= 1
            searched |= due
        assert set(daemon.state.state.works) >= under_way  # nothing dropped while refused
        world.emu.token = TOKEN  # a person stored a good token again (here: the server takes it back)
        decided = 0
        for _ in range(150):
            summary = await daemon.tick()
            decided += summary.decided
            if decided and not daemon.journal.pending():
                break
            await asyncio.sleep(0.2)
        assert decided > 0 and summary.errors == 0
    error_log = (world.folder / "logs" / "pipeline" / "error.log").read_text(encoding="utf-8")
    console = capsys.readouterr().err
    assert "pedestrian" in searched
    for name, pool_id in pools.items():
        if name not in searched:
            continue
        line = f"{name} pool {pool_id}: fetch failed: Toloka GET /assignments: HTTP 401 AUTHENTICATION_ERROR"
        assert line in error_log and line in console
    assert TOKEN not in error_log + console


async def test_a_pool_gone_mid_run_parks_its_tasks_and_the_other_pools_go_on(world: World) -> None:
    quality = world.settings.config.quality.pool_id
    async with open_engine(world.settings) as daemon:
        await daemon.check_pools()
        await daemon.resume()
        world.emu.store.pools.pop(quality)  # Toloka archives rather than deletes; a 404 is the worst case
        visit_decided = False
        for _ in range(150):
            await daemon.tick()
            visit_decided = daemon.state.stats.pool("visit").decisions != {}
            if visit_decided and daemon.parked:
                break
            await asyncio.sleep(0.2)
        assert visit_decided, "the visit pool stopped with the quality pool"
        parked = set(daemon.parked)
        assert parked and all("ENTITY_DOES_NOT_EXIST" in reason for reason in daemon.parked.values())
    async with open_engine(world.settings) as daemon:  # state intact: the held chains are still there
        assert parked <= {step.chain for step in daemon.journal.pending()}
    error_log = (world.folder / "logs" / "pipeline" / "error.log").read_text(encoding="utf-8")
    assert "held for a person" in error_log and "pool_id" in error_log
