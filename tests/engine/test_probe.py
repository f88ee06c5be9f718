"""The photo store probe and its outage windows (engine/probe.py, the tick's part in engine/ticker.py).

The probe runs against real stores: a local folder, and moto's S3 server behind
tests/file_store/fs_proxy.py's proxy, which stalls (``delay``), fails (503) or goes
away on purpose. Nothing of aiohttp or the SDK is mocked. The windows are checked
with an injected clock, and an engine ticks offline (no Toloka) against the store.
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from probe_world import Clock, offline_engine, s3_store, spec

from engine.probe import PROBE_KEY, PROBE_PHOTO, ProbeResult, StoreProbe, record_probe, without_query
from engine.spec import Batch, Context, Decision, Outage
from engine.state import checkpoint_store, load_state
from file_store.local import LocalFileStore
from file_store.testing import MotoServer, start_moto
from tests.file_store.fs_helpers import S3_KEY_ID
from tests.file_store.fs_proxy import FlakyProxy
from toloka_client.records import Assignment

T0 = datetime(2026, 5, 1, 12, 0, 0)
MINUTE = timedelta(minutes=1)
FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "v2-before-outages" / "checkpoint.pkl"
STALL_S = 2.0  # the proxy holds every request this long ...
TIMEOUT_S = 0.5  # ... and the probe gives up after this


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    yield server
    server.stop()


def quick(store: Any) -> StoreProbe:
    return StoreProbe(store, timeout_s=TIMEOUT_S, write_timeout_s=TIMEOUT_S)


def assert_no_secret(text: str) -> None:
    assert "?" not in text and "X-Amz" not in text and "Signature" not in text and S3_KEY_ID not in text, text


# -- the probe -------------------------------------------------------------------------


async def test_local_store_probe_writes_the_photo_links_it_and_reads_it_back(tmp_path: Path) -> None:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=4)
    result = await StoreProbe(store).check(T0)
    assert result == ProbeResult(True, T0, "links serve the probe photo")
    assert (tmp_path / "photos" / PROBE_KEY).read_bytes() == PROBE_PHOTO
    info = await store.info(PROBE_KEY)
    assert info is not None and info.content_type == "image/jpeg" and info.size == len(PROBE_PHOTO)
    assert PROBE_PHOTO.startswith(b"\xff\xd8\xff") and PROBE_PHOTO.endswith(b"\xff\xd9")  # a JPEG


async def test_local_store_that_cannot_serve_fails_the_probe_with_the_reason(tmp_path: Path) -> None:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=4)
    (tmp_path / "photos" / "probe").write_text("a file where the probe's folder should be")
    result = await StoreProbe(store).check(T0)
    assert not result.ok and result.at == T0
    assert "cannot read" in result.detail and "daemon-probe.jpg" in result.detail
    assert "writing it failed too" in result.detail  # the put failed as well, and said so


async def test_local_store_serving_other_bytes_fails_the_probe(tmp_path: Path) -> None:
    store = await LocalFileStore.open(tmp_path / "photos", concurrency=4)
    probe = StoreProbe(store)
    assert (await probe.check(T0)).ok
    target = tmp_path / "photos" / PROBE_KEY
    target.unlink()
    target.mkdir()  # now neither written nor read: a folder in its place
    result = await probe.check(T0 + MINUTE)
    assert not result.ok and "cannot read" in result.detail


async def test_s3_probe_fetches_the_presigned_link_and_keeps_its_query_out(moto: MotoServer) -> None:
    async with s3_store(moto.endpoint) as store:
        link = await store.link(PROBE_KEY)
        assert "X-Amz-Signature" in link and S3_KEY_ID in link  # credentials are in the query string
        result = await quick(store).check(T0)
        assert result == ProbeResult(True, T0, "links serve the probe photo")
        info = await store.info(PROBE_KEY)
        assert info is not None and info.content_type == "image/jpeg"


async def test_stalled_s3_fails_the_probe_within_its_timeouts_then_recovers(moto: MotoServer) -> None:
    async with FlakyProxy(moto.endpoint) as proxy, s3_store(proxy.url) as store:
        probe = quick(store)
        assert (await probe.check(T0)).ok
        proxy.delay = STALL_S
        started = time.monotonic()
        result = await probe.check(T0 + MINUTE)
        took = time.monotonic() - started
        assert not result.ok and result.at == T0 + MINUTE
        assert "no answer within 0.5 s" in result.detail and "took more than 0.5 s" in result.detail
        assert took < STALL_S, took  # the probe does not wait for the store
        assert_no_secret(result.detail)
        assert proxy.url in result.detail  # the link without its query: where a checker's browser went
        proxy.delay = 0.0
        # The stalled write still runs alone: this probe does not start another, yet its link serves.
        result = await probe.check(T0 + 2 * MINUTE)
        assert result.ok and "previous write of the probe photo has not finished" in result.detail
        await _wait_for(lambda: proxy.in_flight == 0, STALL_S + 2)
        assert await probe.check(T0 + 3 * MINUTE) == ProbeResult(True, T0 + 3 * MINUTE, "links serve the probe photo")


async def test_s3_answering_503_fails_the_probe(moto: MotoServer) -> None:
    async with FlakyProxy(moto.endpoint) as proxy, s3_store(proxy.url) as store:
        # Not about timeouts: a loaded CI machine once took over 0.5 s to pass the 503 on, and the
        # probe reported "no answer" instead.
        probe = StoreProbe(store, timeout_s=10, write_timeout_s=10)
        proxy.fail_next(10)
        result = await probe.check(T0)
        assert not result.ok and "answered HTTP 503" in result.detail
        assert_no_secret(result.detail)
        proxy.fail_next(0)
        assert (await probe.check(T0 + MINUTE)).ok


async def test_s3_gone_fails_the_probe_and_no_vendor_error_escapes(moto: MotoServer) -> None:
    proxy = await FlakyProxy(moto.endpoint).__aenter__()
    listening = True
    try:
        async with s3_store(proxy.url) as store:
            probe = quick(store)
            assert (await probe.check(T0)).ok
            listening = False
            await proxy.__aexit__(None, None, None)  # the store's address: nothing listens there any more
            result = await probe.check(T0 + MINUTE)
            assert not result.ok and "GET http://127.0.0.1:" in result.detail and "failed" in result.detail
            assert_no_secret(result.detail)
    finally:
        if listening:  # a failure above must not leave the proxy's sockets to warn in the next test
            await proxy.__aexit__(None, None, None)


def test_without_query_cuts_every_urls_query_and_fragment() -> None:
    text = ("GET https://b.s3.amazonaws.com/k/0.jpg?X-Amz-Credential=AKIA%2Fx&X-Amz-Signature=ab failed: "
            "url=URL('https://acc.blob.core.windows.net/c/k.jpg?sv=2024&sig=s3cr3t') file:///tmp/a.jpg#x")
    cut = without_query(text)
    assert cut == ("GET https://b.s3.amazonaws.com/k/0.jpg failed: "
                   "url=URL('https://acc.blob.core.windows.net/c/k.jpg') file:///tmp/a.jpg")


# -- outage windows --------------------------------------------------------------------


def ok(at: datetime) -> ProbeResult:
    return ProbeResult(True, at, "links serve the probe photo")


def bad(at: datetime, detail: str = "GET http://s3/b/probe/daemon-probe.jpg: no answer within 5 s") -> ProbeResult:
    return ProbeResult(False, at, detail)


def test_a_failure_opens_a_window_at_the_last_success_later_ones_extend_it_a_success_closes_it() -> None:
    first = record_probe([], None, ok(T0))
    assert first.outages == [] and first.ok_at == T0 and first.opened is None
    opened = record_probe(first.outages, first.ok_at, bad(T0 + MINUTE))
    window = Outage(T0, None, bad(T0).detail)  # from the last success: links may have failed right after it
    assert opened.outages == [window] and opened.opened == window and opened.ok_at == T0
    extended = record_probe(opened.outages, opened.ok_at, bad(T0 + 2 * MINUTE, "answered HTTP 503"))
    assert extended.outages == [Outage(T0, None, "answered HTTP 503")]  # same start, the latest reason
    assert extended.opened is None and extended.closed is None
    closed = record_probe(extended.outages, extended.ok_at, ok(T0 + 3 * MINUTE))
    assert closed.outages == [Outage(T0, T0 + 3 * MINUTE, "answered HTTP 503")] and closed.closed == closed.outages[0]
    assert closed.ok_at == T0 + 3 * MINUTE
    again = record_probe(closed.outages, closed.ok_at, bad(T0 + 10 * MINUTE))
    assert again.outages[-1] == Outage(T0 + 3 * MINUTE, None, bad(T0).detail)  # the next one starts anew
    assert len(again.outages) == 2 and again.outages[0].end == T0 + 3 * MINUTE


def test_with_no_success_known_a_window_starts_at_the_failure() -> None:
    change = record_probe([], None, bad(T0))
    assert change.outages == [Outage(T0, None, bad(T0).detail)] and change.ok_at is None


def test_windows_are_kept_a_day_and_fifty_at_most_an_open_one_always() -> None:
    old = [Outage(T0 - timedelta(hours=30), T0 - timedelta(hours=25), "old"),
           Outage(T0 - timedelta(hours=23), T0 - timedelta(hours=22), "recent")]
    change = record_probe(old, T0 - MINUTE, ok(T0))
    assert [w.detail for w in change.outages] == ["recent"]
    many = [Outage(T0 - timedelta(minutes=100 - i), T0 - timedelta(minutes=99 - i), str(i)) for i in range(60)]
    many.append(Outage(T0 - timedelta(hours=40), None, "open for long"))
    change = record_probe(many, None, bad(T0, "still"))
    assert len(change.outages) == 50 and change.outages[-1] == Outage(T0 - timedelta(hours=40), None, "still")
    assert change.outages[0].detail == "11"  # the oldest closed ones went
    assert Outage(T0, None, "").covers(T0 + timedelta(days=3)) and not Outage(T0, T0 + MINUTE, "").covers(T0 - MINUTE)


# -- the engine ------------------------------------------------------------------------


async def test_engine_tick_opens_reports_once_closes_and_checkpoints_an_outage(
    moto: MotoServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock(T0)
    async with FlakyProxy(moto.endpoint) as proxy, s3_store(proxy.url) as store:
        engine = offline_engine(tmp_path, store, clock)
        assert engine.probe is not None
        engine.probe = quick(store)
        await engine.tick()
        assert engine.state.outages == [] and engine.state.probe_ok_at == T0

        proxy.delay = STALL_S
        with caplog.at_level(logging.WARNING, logger="pipeline"):
            for minute in (1, 2):
                clock.now = T0 + minute * MINUTE
                summary = await engine.tick()
                assert summary.errors == (1 if minute == 1 else 0)  # reported once per window
        [window] = engine.state.outages
        assert window.start == T0 and window.end is None and "no answer within" in window.detail
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1, [r.getMessage() for r in errors]
        message = errors[0].getMessage()
        assert message.startswith("photo store: links do not serve since 2026-05-01 12:00:00: GET http")
        assert message.endswith("negative answers from this window will be voided and asked again")
        assert_no_secret(message)
        assert [e.kind for e in engine.recent_errors] == ["photo store outage"]
        assert engine.state.stats.pools["files"].errors == 1

        proxy.delay = 0.0
        caplog.clear()
        clock.now = T0 + 3 * MINUTE
        with caplog.at_level(logging.WARNING, logger="pipeline"):
            await engine.tick()
        assert engine.state.outages == [Outage(T0, T0 + 3 * MINUTE, window.detail)]
        [warning] = [r for r in caplog.records if r.name == "pipeline"]
        assert warning.levelno == logging.WARNING
        assert "links serve again since 2026-05-01 12:03:00" in warning.getMessage()
        engine.journal.close()
        await _wait_for(lambda: proxy.in_flight == 0, STALL_S + 2)

    checkpoints = checkpoint_store(tmp_path / "saves", spec())
    saved, found = load_state(checkpoints, spec(), T0)
    assert found and saved.outages == [Outage(T0, T0 + 3 * MINUTE, window.detail)]
    assert saved.probe_ok_at == T0 + 3 * MINUTE
    raw = (tmp_path / "saves" / "checkpoint.pkl").read_bytes()
    assert S3_KEY_ID.encode() not in raw and b"X-Amz" not in raw


async def test_a_window_open_at_a_restart_is_reported_again_and_closes_when_links_serve(tmp_path: Path,
                                                                                    caplog: pytest.LogCaptureFixture
                                                                                    ) -> None:
    photos = tmp_path / "photos"
    store = await LocalFileStore.open(photos, concurrency=4)
    clock = Clock(T0)
    first = offline_engine(tmp_path, store, clock)
    await first.tick()
    (photos / PROBE_KEY).unlink()
    (photos / "probe").rmdir()
    (photos / "probe").write_text("in the way")
    clock.now = T0 + MINUTE
    await first.tick()
    assert first.state.outages == [Outage(T0, None, first.state.outages[0].detail)]
    first.journal.close()

    clock.now = T0 + 2 * MINUTE
    second = offline_engine(tmp_path, store, clock)  # a restart: the open window comes from the checkpoint
    with caplog.at_level(logging.ERROR, logger="pipeline"):
        assert (await second.tick()).errors == 1
    assert "since 2026-05-01 12:00:00" in caplog.text
    (photos / "probe").unlink()
    clock.now = T0 + 3 * MINUTE
    await second.tick()
    assert second.state.outages[-1].end == T0 + 3 * MINUTE and second.last_probe == ok(T0 + 3 * MINUTE)
    second.journal.close()


async def test_handlers_see_the_windows_in_their_context(tmp_path: Path) -> None:
    seen: list[Context[None]] = []

    def handler(state: dict[str, Any], batch: Batch, ctx: Context[None]) -> Decision:
        seen.append(ctx)
        return Decision()

    engine = offline_engine(tmp_path, None, Clock(T0), spec(handler))
    windows = [Outage(T0 - 2 * MINUTE, T0 - MINUTE, "earlier"), Outage(T0 - MINUTE / 2, None, "now")]
    engine.state.outages = list(windows)
    assignment = Assignment.from_json({"id": "a1", "pool_id": "p1", "status": "ACCEPTED", "reward": "0.01"})
    batch = Batch("checks", "p1", "accepted", (assignment,))
    decisions, failed = engine._decide_all({"checks": (None, batch)}, T0)  # type: ignore[dict-item]
    assert not failed and list(decisions) == ["checks"]
    assert seen[0].outages == tuple(windows) and seen[0].now == T0
    assert Context(None, {}, T0).outages == ()  # the default, for contexts built elsewhere
    engine.journal.close()


async def test_an_engine_without_a_file_store_skips_the_probe(tmp_path: Path) -> None:
    engine = offline_engine(tmp_path, None, Clock(T0))
    assert engine.probe is None
    summary = await engine.tick()
    assert summary.errors == 0 and engine.state.outages == [] and engine.last_probe is None
    engine.journal.close()


# -- an older checkpoint ---------------------------------------------------------------


async def test_a_checkpoint_from_before_the_probe_loads_with_no_outages_and_keeps_them_after(tmp_path: Path) -> None:
    saves = tmp_path / "saves"
    saves.mkdir(mode=0o700)
    shutil.copy(FIXTURE, saves / "checkpoint.pkl")
    os.chmod(saves / "checkpoint.pkl", 0o600)
    checkpoints = checkpoint_store(saves, spec())
    assert b"outages" not in (saves / "checkpoint.pkl").read_bytes()  # written before the field existed
    state, found = load_state(checkpoints, spec(), T0)
    assert found and state.outages == [] and state.probe_ok_at is None
    assert state.state == {"seen": 3} and state.stats.ticks == 7 and state.stats.reward_money == Decimal("1.25")
    assert list(state.reviews) == ["a1"] and state.refused == {"overlap:t1:5": "pool closed"}

    store = await LocalFileStore.open(tmp_path / "photos", concurrency=4)
    (tmp_path / "photos" / "probe").write_text("in the way")
    engine = offline_engine(tmp_path, store, Clock(T0))
    await engine.tick()
    engine.journal.close()
    again, _ = load_state(checkpoint_store(saves, spec()), spec(), T0)
    assert [(w.start, w.end) for w in again.outages] == [(T0, None)] and again.stats.reward_money == Decimal("1.25")


async def _wait_for(check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)
