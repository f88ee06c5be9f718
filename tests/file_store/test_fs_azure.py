"""Azure-only behaviour, against Azurite (which, unlike moto, verifies SAS tokens)."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from datetime import datetime, timedelta, timezone
from urllib.parse import parse_qs, urlsplit

import pytest
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob.aio import BlobServiceClient

from common.errors import StorageError
from common.secrets import Secret
from file_store import load_file_store_settings
from file_store.azure import AzureFileStore
from file_store.testing import AZURITE_ACCOUNT, AZURITE_KEY, AzuriteServer
from fs_helpers import create_container, fetch, ini_text, parse, photo, unique_name

MIB = 1024 * 1024
WRONG_KEY = "V3JvbmcgYnV0IHdlbGwtZm9ybWVkIGtleSB0aGF0IG11c3QgbmV2ZXIgbGVhaw=="


async def open_with_clock(server: AzuriteServer, container: str, now: datetime, **overrides: str) -> AzureFileStore:
    settings = load_file_store_settings(
        parse(ini_text("azure", azure_endpoint=server.endpoint, container=container, **overrides))
    )
    return await AzureFileStore.open(settings, Secret("azure_account_key", AZURITE_KEY), clock=lambda: now)


async def test_sas_link_expires_after_the_configured_days(azurite_server: AzuriteServer) -> None:
    container = unique_name("sas")
    await create_container(azurite_server.endpoint, container)
    now = datetime.now(timezone.utc)
    async with await open_with_clock(azurite_server, container, now, AzureBlobStorage__sas_url_valid_days="2") as store:
        await store.put("main/a.jpg", b"photo", "image/jpeg")
        link = await store.link("main/a.jpg")
        expiry = datetime.fromisoformat(parse_qs(urlsplit(link).query)["se"][0].replace("Z", "+00:00"))
        assert abs(expiry - (now + timedelta(days=2))) < timedelta(seconds=2)
        assert await fetch(link) == (200, b"photo", "image/jpeg")
        # The same blob without the SAS: the container is private.
        assert (await fetch(link.split("?")[0]))[0] in (403, 404)


async def test_a_link_asked_for_more_days_lasts_that_long_and_a_missing_blob_gets_none(
    azurite_server: AzuriteServer,
) -> None:
    """``relink --days``: the SAS expiry follows ``valid_days``; ``link_existing`` refuses a key with no blob."""
    container = unique_name("days")
    await create_container(azurite_server.endpoint, container)
    now = datetime.now(timezone.utc)
    async with await open_with_clock(azurite_server, container, now, AzureBlobStorage__sas_url_valid_days="2") as store:
        await store.put("main/a.jpg", b"photo", "image/jpeg")
        link = await store.link_existing("main/a.jpg", valid_days=30)
        expiry = datetime.fromisoformat(parse_qs(urlsplit(link).query)["se"][0].replace("Z", "+00:00"))
        assert abs(expiry - (now + timedelta(days=30))) < timedelta(seconds=2)
        assert await fetch(link) == (200, b"photo", "image/jpeg")
        with pytest.raises(StorageError, match="no object 'main/b.jpg'") as caught:
            await store.link_existing("main/b.jpg")
        assert not caught.value.retryable


async def test_expired_sas_is_refused(azurite_server: AzuriteServer) -> None:
    container = unique_name("old")
    await create_container(azurite_server.endpoint, container)
    long_ago = datetime.now(timezone.utc) - timedelta(days=30)
    async with await open_with_clock(azurite_server, container, long_ago, AzureBlobStorage__sas_url_valid_days="7") as store:
        await store.put("main/a.jpg", b"photo", "image/jpeg")
        status, body, _ = await fetch(await store.link("main/a.jpg"))
    assert status == 403
    assert b"photo" not in body


async def test_large_stream_goes_up_in_blocks(make_store, azurite_server: AzuriteServer) -> None:  # type: ignore[no-untyped-def]
    container = unique_name("large")
    await create_container(azurite_server.endpoint, container)
    store = await make_store("azure", container=container)
    data = photo(11 * MIB, seed=9)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    await store.put("tmp/big.bin", chunks(), "application/octet-stream")
    credential = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
    async with BlobServiceClient(azurite_server.endpoint, credential=credential) as service:
        committed, _ = await service.get_blob_client(container, "tmp/big.bin").get_block_list("committed")
    assert [block.size for block in committed] == [MIB] * 11
    assert (await fetch(await store.link("tmp/big.bin")))[1] == data


async def test_missing_container_names_the_setting(make_store, azurite_server: AzuriteServer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as caught:
        await make_store("azure", container="no-such-box")
    message = str(caught.value)
    assert "Azure container 'no-such-box' does not exist" in message
    assert "[AzureBlobStorage] container_name in toloka.ini" in message
    assert caught.value.retryable is False


async def test_wrong_account_key_names_the_keyring_entry(azurite_server: AzuriteServer) -> None:
    settings = load_file_store_settings(parse(ini_text("azure", azure_endpoint=azurite_server.endpoint)))
    with pytest.raises(StorageError) as caught:
        await AzureFileStore.open(settings, Secret("azure_account_key", WRONG_KEY))
    message = str(caught.value)
    assert "refused the account key" in message
    assert "keyring entry 'azure_account_key'" in message
    assert WRONG_KEY not in message and WRONG_KEY not in repr(caught.value)
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.value.retryable is False


async def test_unreachable_endpoint_names_the_setting(make_store) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    endpoint = f"http://127.0.0.1:{port}/{AZURITE_ACCOUNT}"
    with pytest.raises(StorageError) as caught:
        await make_store("azure", container="photos", azure_endpoint=endpoint, FileStore__max_attempts="1")
    assert f"cannot reach Azure Blob Storage at {endpoint}" in str(caught.value)
    assert "[AzureBlobStorage] endpoint" in str(caught.value)
    assert caught.value.retryable is True


async def test_copy_of_a_large_blob_keeps_bytes(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("azure")
    data = photo(6 * MIB, seed=4)
    await store.put("tmp/big.jpg", data, "image/jpeg")
    await store.copy("tmp/big.jpg", "main/big.jpg")
    assert await fetch(await store.link("main/big.jpg")) == (200, data, "image/jpeg")


async def test_api_version_setting_is_sent(make_store, azurite_server: AzuriteServer) -> None:  # type: ignore[no-untyped-def]
    from fs_proxy import FlakyProxy

    container = unique_name("ver")
    await create_container(azurite_server.endpoint, container)
    root = azurite_server.endpoint.rsplit("/", 1)[0]
    async with FlakyProxy(root) as proxy:
        store = await make_store("azure", container=container, azure_endpoint=f"{proxy.url}/{AZURITE_ACCOUNT}",
                                 AzureBlobStorage__api_version="2025-11-05")  # fmt: skip
        await store.put("tmp/v.jpg", b"v", "image/jpeg")
        await store.aclose()
    assert {headers.get("x-ms-version") for headers in proxy.seen_headers} == {"2025-11-05"}
