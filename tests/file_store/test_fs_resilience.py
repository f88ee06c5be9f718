"""Retries and bounded concurrency, shown over real HTTP through a failing proxy."""

from __future__ import annotations

import asyncio

import pytest

from common.errors import StorageError
from file_store import ObjectInfo, make_key
from file_store.testing import AzuriteServer, MotoServer
from fs_helpers import create_bucket, create_container, fetch, photo, unique_name
from fs_proxy import FlakyProxy


@pytest.fixture(params=["s3", "azure"])
async def proxied(request: pytest.FixtureRequest):  # type: ignore[no-untyped-def]
    """(backend, proxy, ini overrides) with a fresh bucket/container behind a FlakyProxy."""
    backend = request.param
    if backend == "s3":
        server: MotoServer = request.getfixturevalue("moto_server")
        name = unique_name("bucket")
        await create_bucket(server.endpoint, name)
        async with FlakyProxy(server.endpoint) as proxy:
            yield backend, proxy, {"s3_url": proxy.url, "bucket": name}
    else:
        azurite: AzuriteServer = request.getfixturevalue("azurite_server")
        name = unique_name("box")
        await create_container(azurite.endpoint, name)
        root, account = azurite.endpoint.rsplit("/", 1)
        async with FlakyProxy(root) as proxy:
            yield backend, proxy, {"azure_endpoint": f"{proxy.url}/{account}", "container": name}


async def test_transient_errors_are_retried(proxied, make_store) -> None:  # type: ignore[no-untyped-def]
    backend, proxy, overrides = proxied
    store = await make_store(backend, FileStore__max_attempts="3", **overrides)
    proxy.fail_next(1)
    await store.put("tmp/retried.jpg", b"still arrives", "image/jpeg")
    assert proxy.failed == 1
    assert await store.info("tmp/retried.jpg") == ObjectInfo(13, "image/jpeg")


async def test_gives_up_after_max_attempts(proxied, make_store) -> None:  # type: ignore[no-untyped-def]
    backend, proxy, overrides = proxied
    store = await make_store(backend, FileStore__max_attempts="2", **overrides)
    proxy.fail_next(2)
    with pytest.raises(StorageError, match="tmp/lost.jpg"):
        await store.put("tmp/lost.jpg", b"x", "image/jpeg")
    assert proxy.failed == 2


async def test_concurrency_is_bounded(proxied, make_store) -> None:  # type: ignore[no-untyped-def]
    backend, proxy, overrides = proxied
    store = await make_store(backend, FileStore__concurrency="3", **overrides)
    proxy.delay = 0.02  # keep each request open long enough to overlap with others
    proxy.reset_counts()
    keys = [make_key("tmp", "c", f"{n}.jpg") for n in range(24)]
    await asyncio.gather(*(store.put(key, photo(1000, n), "image/jpeg") for n, key in enumerate(keys)))
    assert proxy.forwarded == len(keys)
    assert 2 <= proxy.max_in_flight <= 3


async def test_links_through_the_proxy_still_download(proxied, make_store) -> None:  # type: ignore[no-untyped-def]
    backend, proxy, overrides = proxied
    store = await make_store(backend, **overrides)
    await store.put("tmp/via proxy.jpg", b"bytes", "image/jpeg")
    assert await fetch(await store.link("tmp/via proxy.jpg")) == (200, b"bytes", "image/jpeg")
