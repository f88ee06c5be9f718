"""S3-only behaviour, against moto's S3 server (and a moto that checks credentials)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from common.errors import MissingObjectError, StorageError
from file_store.testing import ChildServer, MotoServer, start_moto_process
from fs_helpers import S3_KEY_ID, S3_SECRET, _admin_s3, create_bucket, fetch, photo, unique_name

MIB = 1024 * 1024


async def test_presigned_link_is_sigv4_for_the_configured_days(make_store) -> None:  # type: ignore[no-untyped-def]
    store = await make_store("s3", S3__link_valid_days="3")
    await store.put("tmp/a.jpg", b"abc", "image/jpeg")
    query = parse_qs(urlsplit(await store.link("tmp/a.jpg")).query)
    assert query["X-Amz-Algorithm"] == ["AWS4-HMAC-SHA256"]
    assert query["X-Amz-Expires"] == [str(3 * 24 * 3600)]
    assert S3_SECRET not in str(query)
    # relink --days: another validity for this link only
    query = parse_qs(urlsplit(await store.link("tmp/a.jpg", valid_days=6)).query)
    assert query["X-Amz-Expires"] == [str(6 * 24 * 3600)]


async def test_public_links_are_plain_urls(make_store, moto_server: MotoServer) -> None:  # type: ignore[no-untyped-def]
    bucket = unique_name("public")
    await create_bucket(moto_server.endpoint, bucket)
    policy = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": "*",
              "Action": "s3:GetObject", "Resource": f"arn:aws:s3:::{bucket}/*"}]}  # fmt: skip
    admin = _admin_s3(moto_server.endpoint)
    await asyncio.to_thread(admin.put_bucket_policy, Bucket=bucket, Policy=json.dumps(policy))
    store = await make_store("s3", bucket=bucket, S3__links="public")
    await store.put("main/Кафе 1.jpg", b"public bytes", "image/jpeg")
    link = await store.link("main/Кафе 1.jpg")
    assert link == f"{moto_server.endpoint}/{bucket}/main/%D0%9A%D0%B0%D1%84%D0%B5%201.jpg"
    # Anonymous GET, allowed by the bucket policy (the documented set-up for public links).
    assert await fetch(link) == (200, b"public bytes", "image/jpeg")


async def test_large_stream_goes_up_in_parts(make_store, moto_server: MotoServer) -> None:  # type: ignore[no-untyped-def]
    bucket = unique_name("large")
    await create_bucket(moto_server.endpoint, bucket)
    store = await make_store("s3", bucket=bucket, FileStore__part_size_mb="5")
    data = photo(11 * MIB, seed=7)

    async def chunks() -> AsyncIterator[bytes]:
        for start in range(0, len(data), 256 * 1024):
            yield data[start : start + 256 * 1024]

    await store.put("tmp/big.bin", chunks(), "application/octet-stream")
    head = await asyncio.to_thread(_admin_s3(moto_server.endpoint).head_object, Bucket=bucket, Key="tmp/big.bin")
    assert head["ETag"].strip('"').endswith("-3"), "three parts of at most 5 MiB"
    assert (await fetch(await store.link("tmp/big.bin")))[1] == data


async def test_small_path_goes_up_in_one_request(make_store, moto_server: MotoServer, tmp_path) -> None:  # type: ignore[no-untyped-def]
    bucket = unique_name("small")
    await create_bucket(moto_server.endpoint, bucket)
    store = await make_store("s3", bucket=bucket)
    (tmp_path / "p.jpg").write_bytes(b"y" * 1000)
    await store.put("tmp/p.jpg", tmp_path / "p.jpg", "image/jpeg")
    head = await asyncio.to_thread(_admin_s3(moto_server.endpoint).head_object, Bucket=bucket, Key="tmp/p.jpg")
    assert "-" not in head["ETag"]


async def test_missing_bucket_names_the_setting(make_store, moto_server: MotoServer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as caught:
        await make_store("s3", bucket="no-such-bucket")
    message = str(caught.value)
    assert "'no-such-bucket' does not exist" in message
    assert "[S3] bucket_name in toloka.ini" in message
    assert moto_server.endpoint in message
    assert caught.value.retryable is False  # a person creates the bucket or fixes toloka.ini


async def test_link_existing_tells_a_missing_photo_from_a_missing_bucket(  # type: ignore[no-untyped-def]
    make_store, moto_server: MotoServer
) -> None:
    """``relink`` reports a missing photo and goes on, but must stop when the bucket itself is gone.

    S3 answers a look-up in a bucket that does not exist with the same bare 404 as a missing object.
    """
    bucket = unique_name("gone")
    await create_bucket(moto_server.endpoint, bucket)
    store = await make_store("s3", bucket=bucket)
    await store.put("main/a.jpg", b"photo", "image/jpeg")
    with pytest.raises(MissingObjectError, match=r"no object 'main/b\.jpg'") as missing:
        await store.link_existing("main/b.jpg")
    assert not missing.value.retryable

    admin = _admin_s3(moto_server.endpoint)
    await asyncio.to_thread(admin.delete_object, Bucket=bucket, Key="main/a.jpg")
    await asyncio.to_thread(admin.delete_bucket, Bucket=bucket)
    with pytest.raises(StorageError) as gone:
        await store.link_existing("main/a.jpg")
    assert not isinstance(gone.value, MissingObjectError)
    assert f"{bucket!r} does not exist" in str(gone.value) and not gone.value.retryable


@pytest.fixture
def closed_port() -> Iterator[int]:
    """A loopback port with nothing listening (bound, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    yield port


async def test_unreachable_endpoint_names_the_setting(make_store, closed_port: int) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as caught:
        await make_store("s3", bucket="photos", s3_url=f"http://127.0.0.1:{closed_port}", FileStore__max_attempts="1")
    assert f"cannot reach S3 at http://127.0.0.1:{closed_port}" in str(caught.value)
    assert "[S3] url in toloka.ini" in str(caught.value)
    assert caught.value.retryable is True  # the network may be back at the next tick


@pytest.fixture(scope="module")
def strict_moto() -> Iterator[ChildServer]:
    server = start_moto_process(check_credentials=True)
    yield server
    server.stop()


async def test_bad_credentials_name_the_keyring_entries(make_store, strict_moto: ChildServer) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(StorageError) as caught:
        await make_store("s3", bucket="photos", s3_url=strict_moto.endpoint, FileStore__max_attempts="1")
    message = str(caught.value)
    assert "refused the credentials" in message
    assert "'s3_key_id' and 's3_access_key'" in message
    assert S3_KEY_ID not in message and S3_SECRET not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert caught.value.retryable is False


@pytest.mark.parametrize(("checksums", "sent"), [("when_required", False), ("when_supported", True)])
async def test_checksum_setting_decides_whether_puts_carry_a_checksum(  # type: ignore[no-untyped-def]
    make_store, moto_server: MotoServer, checksums: str, sent: bool
) -> None:
    from fs_proxy import FlakyProxy

    bucket = unique_name("sum")
    await create_bucket(moto_server.endpoint, bucket)
    async with FlakyProxy(moto_server.endpoint) as proxy:
        store = await make_store("s3", bucket=bucket, s3_url=proxy.url, S3__checksums=checksums)
        await store.put("tmp/c.jpg", b"checksummed?", "image/jpeg")
        await store.aclose()
    put_headers = [h for h in proxy.seen_headers if "image/jpeg" in h.get("Content-Type", "")]
    assert len(put_headers) == 1
    assert any(name.lower().startswith("x-amz-checksum-") for name in put_headers[0]) is sent
