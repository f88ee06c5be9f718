"""S3 unreachable for a while, API faults and DEBUG logging: photo work waits, secrets stay secret.

The daemon stores photos in moto's S3 server, reached through a TCP switch the
test can turn off (connections refused and cut, as when the network or the
service is down). While it is off, photo chains fail and are retried; no visit
task may exist for a photo that was not stored. Once it is on again the work
resumes. The run logs at DEBUG with API faults injected, and afterwards no
log, TSV, checkpoint or journal holds the Toloka token or the S3 secret key.
"""

from __future__ import annotations

import asyncio
import re
import configparser
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import unquote, urlparse

import boto3
import keyring
import pytest

from emulator.faults import FaultConfig
from pipelines import load_settings
from pipelines import open_engine
from file_store.testing import MotoServer, start_moto
from tests.resilience.conftest import TOKEN, World

KEY_ID = "AKIARESILIENCEKEYID1"
SECRET_KEY = "s3-secret-access-key-never-in-a-file-0123456789"
BUCKET = "resilience-photos"


class Switch:
    """A TCP forwarder on 127.0.0.1 in its own thread and loop; ``up = False`` refuses and cuts connections."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.up = True
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._writers: set[asyncio.StreamWriter] = set()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Switch:
        self._thread.start()
        self._ready.wait(10)
        return self

    def __exit__(self, *exc: object) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def set(self, up: bool) -> None:
        self.up = up
        if not up:
            self._loop.call_soon_threadsafe(self._cut)

    def _cut(self) -> None:
        for writer in list(self._writers):
            writer.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._handle, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()
        self._cut()
        pending = asyncio.all_tasks(self._loop)
        for task in pending:
            task.cancel()
        self._loop.run_until_complete(asyncio.gather(*pending, server.wait_closed(), return_exceptions=True))
        self._loop.close()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if not self.up:
            writer.close()
            return
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (OSError, ConnectionError):
                pass
            finally:
                sink.close()
                self._writers.discard(sink)

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    try:
        yield server
    finally:
        server.stop()


def use_s3(config: Path, url: str) -> None:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(config, encoding="utf-8")
    cfg["FileStore"].update(backend="s3", max_attempts="2", timeout_seconds="3")
    cfg["S3"].update(bucket_name=BUCKET, url=url, region="us-east-1", addressing_style="path", links="presigned")
    cfg["Pipeline"]["log_level"] = "DEBUG"
    with config.open("w", encoding="utf-8") as handle:
        cfg.write(handle)


def photo_links(store: object, pool_id: str) -> list[str]:
    """Every link into the bucket in the input of the pool's tasks (the photos checkers are shown)."""
    found: list[str] = []
    for task in store.tasks.values():  # type: ignore[attr-defined]
        if task["pool_id"] != pool_id:
            continue
        for value in task["input_values"].values():
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, str) and item.startswith("http") and f"/{BUCKET}/" in item:
                    found.append(item)
    return found


def key_id_outside_links(folder: Path) -> list[str]:
    """Files under ``folder`` that hold the S3 key id anywhere but inside a presigned link's credential."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file():
            text = re.sub(r"X-Amz-Credential=[^&\s\"]*", "", path.read_text(encoding="utf-8", errors="replace"))
            if KEY_ID in text:
                found.append(str(path))
    return found


def secret_hits(folder: Path, *secrets: str) -> list[str]:
    """Files under ``folder`` that contain any of ``secrets`` (the keyring and the emulator's database aside)."""
    found = []
    for path in folder.rglob("*"):
        if path.is_file() and "keyring" not in path.parts and not path.name.startswith("emu.sqlite"):
            data = path.read_bytes()
            found += [f"{path}: {s[:6]}..." for s in secrets if s.encode() in data]
    return found


async def test_photo_work_waits_for_storage_and_no_secret_reaches_a_file(world: World, moto: MotoServer) -> None:
    boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="x",
                 aws_secret_access_key="x").create_bucket(Bucket=BUCKET)
    keyring.set_password("TOLOKA", "s3_key_id", KEY_ID)
    keyring.set_password("TOLOKA", "s3_access_key", SECRET_KEY)
    pedestrian_pool, visit_pool = world.settings.config.pedestrian.pool_id, world.settings.config.visit.pool_id
    store = world.emu.store
    with Switch(int(moto.endpoint.rsplit(":", 1)[1])) as switch:
        use_s3(world.folder / "toloka.ini", f"http://127.0.0.1:{switch.port}")
        settings = load_settings(world.folder / "toloka.ini")
        world.emu.faults.set(FaultConfig.from_dict({"rate_500": 0.1, "rate_503": 0.05, "drop_after_write_rate": 0.1}))
        async with open_engine(settings) as daemon:
            await daemon.check_pools()
            await daemon.resume()
            switch.set(False)  # after start-up, which checks the bucket (and stops with a message if it cannot)
            for _ in range(100):  # storage down: pedestrian work arrives, photos cannot be stored
                await daemon.tick()
                if len(daemon.state.state.works) >= 3 and daemon.state.stats.ticks >= 5:
                    break
                await asyncio.sleep(0.2)
            assert len(daemon.state.state.works) >= 3, "no pedestrian work arrived"
            links_made_while_down = photo_links(store, visit_pool)
            assert links_made_while_down == [], "a visit task links photos that were not stored"
            assert daemon.journal.pending(), "the photo work was dropped instead of waiting"

            switch.set(True)
            for _ in range(300):  # storage back: the same work goes on to final decisions
                await daemon.tick()
                finals = [a for a in store.assignments(pool_id=pedestrian_pool) if a["status"] in ("ACCEPTED", "REJECTED")]
                if len(finals) >= 3:
                    break
                await asyncio.sleep(0.2)
        assert len(finals) >= 3, "the photo work did not resume after the storage came back"

    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1", aws_access_key_id="x",
                      aws_secret_access_key="x")
    links = photo_links(store, visit_pool)
    assert links, "no visit task with photos was made after the storage came back"
    for url in links:  # every photo a checker is shown was stored first
        key = unquote(urlparse(url).path).split(f"/{BUCKET}/", 1)[1]
        s3.head_object(Bucket=BUCKET, Key=key)
    error_log = (world.folder / "logs" / "pipeline" / "error.log").read_text(encoding="utf-8")
    assert "will be retried" in error_log and "store:" in error_log
    assert (world.folder / "logs" / "pipeline" / "debug.log").stat().st_size > 0
    assert world.emu.faults.state()["injected_total"] > 0
    assert secret_hits(world.folder, TOKEN, SECRET_KEY) == []
    # The key id is no secret (every presigned link carries it, and answers.tsv keeps the photo link a
    # checker was shown), but logs and saves/ have no other use for it.
    assert key_id_outside_links(world.folder / "logs") == [] and secret_hits(world.folder / "saves", KEY_ID) == []
