"""An offline engine for the photo store probe tests: a real store, checkpoint and journal, no Toloka.

The pipeline declared here has one pool and observers only when a test asks
for them, so a tick reaches neither Toloka nor the network except the store.
Imported by tests/engine/test_probe.py and tests/status/test_status_photo_store.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from common.secrets import Secret
from engine.config import PipelineSettings, SecretNames, Settings, TolokaSettings
from engine.executor import Executor
from engine.journal import Journal
from engine.spec import Batch, Context, Decision, ObserverSpec, PipelineSpec
from engine.state import checkpoint_store, load_state
from engine.ticker import Engine
from file_store import FileStore, load_file_store_settings, open_file_store
from tests.file_store.fs_helpers import SECRETS, create_bucket, ini_text, parse, unique_name

POOL = "checks"
POOL_ID = "p1"


def spec(handler: Callable[[dict[str, Any], Batch, Context[None]], Decision] | None = None) -> PipelineSpec[None, Any]:
    """A pipeline named ``probe_test`` whose state is a plain dict; one observer if ``handler`` is given."""
    observers = () if handler is None else (ObserverSpec(POOL, event=lambda c: "accepted", handler=handler),)
    return PipelineSpec(
        name="probe_test", title="photo store probe tests", sections={}, parse_config=lambda cfg: None,
        pools=lambda c: {POOL: POOL_ID}, observers=observers, new_state=dict, tables=lambda c: {},
    )


def settings(folder: Path) -> Settings[None]:
    return Settings(
        source=folder / "toloka.ini", definition="probe_test", secrets=SecretNames("toloka_token"),
        toloka=TolokaSettings("http://127.0.0.1:9", "http://127.0.0.1:9", 5.0, 0.0),
        pipeline=PipelineSettings(
            period_s=60.0, stop_when_pools_closed=False, log_level="INFO", results_folder=folder / "results",
            saves_folder=folder / "saves", logs_folder=folder / "logs", concurrency=4, auto_accept_warning_hours=12.0,
        ),
        config=None, pool_ids={POOL: POOL_ID},
    )


class Clock:
    """The engine's clock, set by the test."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def offline_engine(
    folder: Path, store: FileStore | None, clock: Clock, pipeline: PipelineSpec[None, Any] | None = None
) -> Engine[None, Any]:
    """An engine on ``folder/saves`` as a start-up builds it; no Toloka client (nothing may call it)."""
    declared = pipeline or spec()
    checkpoints = checkpoint_store(folder / "saves", declared)
    state, _ = load_state(checkpoints, declared, clock())
    journal = Journal.open(folder / "saves", state.journal)
    executor = Executor(None, store, {}, max_photo_bytes=1, concurrency=2, clock=clock)  # type: ignore[arg-type]
    return Engine(declared, settings(folder), None, executor, checkpoints, journal, state,  # type: ignore[arg-type]
                  clock=clock)


@asynccontextmanager
async def s3_store(endpoint: str) -> AsyncIterator[FileStore]:
    """An S3 store on a new bucket at ``endpoint`` (moto, or a proxy in front of it); one SDK attempt."""
    bucket = unique_name("probe")
    await create_bucket(endpoint, bucket)
    text = ini_text("s3", s3_url=endpoint, bucket=bucket, FileStore__max_attempts="1", FileStore__timeout_seconds="2")
    settings = load_file_store_settings(parse(text))
    store = await open_file_store(settings, secrets=lambda name: Secret(name, SECRETS[name]))
    try:
        yield store
    finally:
        await store.aclose()
