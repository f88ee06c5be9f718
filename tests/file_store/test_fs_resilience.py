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
    with pytest.raises(StorageError, match="tmp/lost.jpg") as caught:
        await store.put("tmp/lost.jpg", b"x", "image/jpeg")
    assert proxy.failed == 2
    assert caught.value.retryable is True  # the SDK gave up; the next tick tries again


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


# An S3 error document as S3 (and moto) send it; the code decides what botocore does.
S3_ERROR = '<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>injected</Message></Error>'


@pytest.mark.parametrize(
    ("proxied", "status", "code", "retryable"),
    [
        ("s3", 503, "SlowDown", True),  # throttling
        ("s3", 500, "InternalError", True),
        ("s3", 403, "AccessDenied", False),  # refused credentials or policy: a person acts
        ("s3", 400, "InvalidArgument", False),
        ("azure", 503, "ServerBusy", True),
        ("azure", 500, "InternalError", True),
        ("azure", 403, "AuthenticationFailed", False),
        ("azure", 400, "InvalidHeaderValue", False),
    ],
    indirect=["proxied"],
)
async def test_error_answers_decide_retryable(proxied, make_store, status: int, code: str, retryable: bool) -> None:  # type: ignore[no-untyped-def]
    """Each answer, as the service sends it, gives a StorageError whose flag matches the SDK's own choice.

    The SDK retries the transient answers itself (two attempts here) and gives up on the
    others at once; the flag tells the daemon to do the same at the next tick.
    """
    backend, proxy, overrides = proxied
    store = await make_store(backend, FileStore__max_attempts="2", **overrides)
    if backend == "s3":
        proxy.fail_next(2, status=status, body=S3_ERROR.format(code=code))
    else:  # Azure names the error in a header
        proxy.fail_next(2, status=status, body=code, headers={"x-ms-error-code": code})
    with pytest.raises(StorageError, match=r"tmp/answer\.jpg|refused the") as caught:
        await store.put("tmp/answer.jpg", b"x", "image/jpeg")
    assert caught.value.retryable is retryable
    assert proxy.failed == (2 if retryable else 1)


async def test_a_timeout_is_retryable(proxied, make_store) -> None:  # type: ignore[no-untyped-def]
    """An answer slower than ``timeout_seconds`` (after the SDK's attempts) may come in time at the next tick."""
    backend, proxy, overrides = proxied
    store = await make_store(backend, FileStore__max_attempts="1", FileStore__timeout_seconds="1", **overrides)
    proxy.delay = 1.5
    with pytest.raises(StorageError, match=r"tmp/slow\.jpg") as caught:
        await store.put("tmp/slow.jpg", b"x", "image/jpeg")
    assert caught.value.retryable is True
