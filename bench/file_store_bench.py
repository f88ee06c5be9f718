"""Benchmark: put then server-side copy 200 photos of 200 KB through each file store.

For each backend (local folder, moto's S3 server, Azurite) the same work is done twice:
with the bare SDK in a plain ``asyncio.gather`` loop, and through ``file_store``. The
servers are started here on free loopback ports (moto in a child process so it does not
share this process's GIL). Each figure is the median of ``--rounds`` rounds, each in a
fresh bucket/container; the order of the two variants alternates between rounds.

    python bench/file_store_bench.py [--photos 200] [--size-kb 200] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import random
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aioboto3
from aiobotocore.config import AioConfig
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob import ContentSettings
from azure.storage.blob.aio import BlobServiceClient

from common.secrets import Secret
from file_store import FileStore, load_file_store_settings, make_key, open_file_store
from file_store.settings import FileStoreSettings, read_config
from file_store.testing import AZURITE_ACCOUNT, AZURITE_KEY, start_azurite, start_moto_process

KEY_ID, SECRET = "bench-key-id", "bench-secret"
SECRETS = {"s3_key_id": KEY_ID, "s3_access_key": SECRET, "azure_account_key": AZURITE_KEY}
Timing = tuple[float, float]  # seconds for (put all, copy all)


def photos(count: int, size: int) -> list[bytes]:
    rng = random.Random(1)
    return [rng.randbytes(size) for _ in range(count)]


def keys(count: int) -> list[tuple[str, str]]:
    return [(make_key("tmp", "2026-11-22", f"a{n}", "imgs_facade", "0.jpg"),
             make_key("main", f"a{n}", "imgs_facade", "0.jpg")) for n in range(count)]  # fmt: skip


async def timed(put: Callable[[], Awaitable[Any]], copy: Callable[[], Awaitable[Any]]) -> Timing:
    start = time.perf_counter()
    await put()
    middle = time.perf_counter()
    await copy()
    return middle - start, time.perf_counter() - middle


# --- bare SDKs ---------------------------------------------------------------------------


async def bare_s3(endpoint: str, data: list[bytes]) -> Timing:
    bucket = f"bare-{uuid.uuid4().hex[:12]}"
    session = aioboto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1")
    async with session.client("s3", endpoint_url=endpoint, config=AioConfig(signature_version="s3v4")) as s3:
        await s3.create_bucket(Bucket=bucket)
        pairs = keys(len(data))
        return await timed(
            lambda: asyncio.gather(*(s3.put_object(Bucket=bucket, Key=src, Body=body, ContentType="image/jpeg")
                                     for (src, _), body in zip(pairs, data, strict=True))),
            lambda: asyncio.gather(*(s3.copy_object(Bucket=bucket, Key=dst, CopySource={"Bucket": bucket, "Key": src})
                                     for src, dst in pairs)),
        )  # fmt: skip


async def bare_azure(endpoint: str, data: list[bytes]) -> Timing:
    name = f"bare-{uuid.uuid4().hex[:12]}"
    credential = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
    async with BlobServiceClient(endpoint, credential=credential) as service:
        container = await service.create_container(name)
        pairs = keys(len(data))
        settings = ContentSettings(content_type="image/jpeg")
        return await timed(
            lambda: asyncio.gather(*(container.get_blob_client(src).upload_blob(body, overwrite=True,
                                                                                content_settings=settings)
                                     for (src, _), body in zip(pairs, data, strict=True))),
            lambda: asyncio.gather(*(container.get_blob_client(dst).start_copy_from_url(
                                         container.get_blob_client(src).url) for src, dst in pairs)),
        )  # fmt: skip


async def bare_local(folder: Path, data: list[bytes]) -> Timing:
    pairs = keys(len(data))

    def write(path: Path, body: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(body)

    def copy(src: Path, dst: Path) -> None:
        dst.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src, dst)

    return await timed(
        lambda: asyncio.gather(*(asyncio.to_thread(write, folder / src, body)
                                 for (src, _), body in zip(pairs, data, strict=True))),
        lambda: asyncio.gather(*(asyncio.to_thread(copy, folder / src, folder / dst) for src, dst in pairs)),
    )


# --- file_store ----------------------------------------------------------------------------


async def through_store(store: FileStore, data: list[bytes]) -> Timing:
    pairs = keys(len(data))
    return await timed(
        lambda: asyncio.gather(*(store.put(src, body, "image/jpeg")
                                 for (src, _), body in zip(pairs, data, strict=True))),
        lambda: asyncio.gather(*(store.copy(src, dst) for src, dst in pairs)),
    )


def _settings_of(ini: str) -> FileStoreSettings:
    """Parse ``ini`` the way the daemon does: from a file (blocking: run it in a thread)."""
    with tempfile.NamedTemporaryFile("w", suffix=".ini", delete=False) as handle:
        handle.write(ini)
    settings = load_file_store_settings(read_config(handle.name))
    Path(handle.name).unlink()
    return settings


async def store_run(ini: str, data: list[bytes], prepare: Callable[[], Awaitable[None]]) -> Timing:
    await prepare()
    settings = await asyncio.to_thread(_settings_of, ini)
    async with await open_file_store(settings, secrets=lambda entry: Secret(entry, SECRETS[entry])) as store:
        return await through_store(store, data)


def ini(backend: str, **values: str) -> str:
    sections = {
        "FileStore": {"backend": backend, "local_folder": values.get("folder", "photos")},
        "S3": {"bucket_name": values.get("bucket", "photos"), "url": values.get("s3_url", "http://127.0.0.1:1"),
               "region": "us-east-1"},
        "AzureBlobStorage": {"account_name": AZURITE_ACCOUNT, "container_name": values.get("container", "photos"),
                             "endpoint": values.get("azure_endpoint", "")},
    }  # fmt: skip
    return "\n".join(f"[{name}]\n" + "".join(f"{k} = {v}\n" for k, v in body.items())
                     for name, body in sections.items())


async def bench(
    rounds: int, data: list[bytes], moto: str, azurite: str, workdir: Path
) -> list[tuple[str, list[Timing], list[Timing]]]:
    results: list[tuple[str, list[Timing], list[Timing]]] = []
    for backend in ("local", "s3", "azure"):
        bare_times: list[Timing] = []
        store_times: list[Timing] = []
        for round_no in range(rounds):
            name = f"st-{uuid.uuid4().hex[:12]}"
            config, prepare = _store_setup(backend, name, workdir / name, moto, azurite)
            if round_no % 2 == 0:
                bare_times.append(await _bare_run(backend, data, moto, azurite, workdir))
                store_times.append(await store_run(config, data, prepare))
            else:
                store_times.append(await store_run(config, data, prepare))
                bare_times.append(await _bare_run(backend, data, moto, azurite, workdir))
        results.append((backend, bare_times, store_times))
    return results


async def _bare_run(backend: str, data: list[bytes], moto: str, azurite: str, workdir: Path) -> Timing:
    """One round with the bare SDK of ``backend``, in a fresh folder, bucket or container."""
    if backend == "local":
        return await bare_local(workdir / f"bare-{uuid.uuid4().hex[:8]}", data)
    if backend == "s3":
        return await bare_s3(moto, data)
    return await bare_azure(azurite, data)


def _store_setup(
    backend: str, name: str, folder: Path, moto: str, azurite: str
) -> tuple[str, Callable[[], Awaitable[None]]]:
    """The INI text of one round through ``file_store``, and what makes its bucket or container."""
    if backend == "local":
        return ini("local", folder=str(folder)), _nothing
    if backend == "s3":
        return ini("s3", s3_url=moto, bucket=name), _make_bucket(moto, name)
    return ini("azure", azure_endpoint=azurite, container=name), _make_container(azurite, name)


async def _nothing() -> None:
    return None


def _make_bucket(endpoint: str, name: str) -> Callable[[], Awaitable[None]]:
    async def make() -> None:
        session = aioboto3.Session(aws_access_key_id=KEY_ID, aws_secret_access_key=SECRET, region_name="us-east-1")
        async with session.client("s3", endpoint_url=endpoint) as s3:
            await s3.create_bucket(Bucket=name)

    return make


def _make_container(endpoint: str, name: str) -> Callable[[], Awaitable[None]]:
    async def make() -> None:
        credential = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
        async with BlobServiceClient(endpoint, credential=credential) as service:
            await service.create_container(name)

    return make


def median(times: list[Timing], index: int | None) -> float:
    return statistics.median(t[0] + t[1] if index is None else t[index] for t in times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument("--size-kb", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if not (1 <= args.photos <= 2000 and 1 <= args.size_kb <= 5000 and 1 <= args.rounds <= 10):
        parser.error("keep it bounded: photos 1..2000, size-kb 1..5000, rounds 1..10")
    data = photos(args.photos, args.size_kb * 1000)
    moto = start_moto_process()
    azurite = start_azurite()
    workdir = Path(tempfile.mkdtemp(prefix="file-store-bench-"))
    try:
        results = asyncio.run(bench(args.rounds, data, moto.endpoint, azurite.endpoint, workdir))
    finally:
        moto.stop()
        azurite.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    print(f"{args.photos} photos x {args.size_kb} KB, put then server-side copy; median of {args.rounds} rounds (s)")
    print(f"{'backend':8} {'SDK put':>8} {'SDK copy':>9} {'SDK total':>10} {'store put':>10} {'store copy':>11} "
          f"{'store total':>12} {'ratio':>6}")  # fmt: skip
    for backend, bare, store in results:
        ratio = median(store, None) / median(bare, None)
        print(f"{backend:8} {median(bare, 0):8.2f} {median(bare, 1):9.2f} {median(bare, None):10.2f} "
              f"{median(store, 0):10.2f} {median(store, 1):11.2f} {median(store, None):12.2f} "
              f"{ratio:6.2f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
