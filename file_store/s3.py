"""The S3 backend (aioboto3): AWS, Yandex Object Storage, MinIO, moto, ...

One aiobotocore client is created when the store opens and closed with it. Objects up to
``[FileStore] part_size_mb`` go up in one ``PutObject``; larger ones are streamed as a
multipart upload, one part in memory at a time. Copies are server-side ``CopyObject``
(objects up to 5 GB, far above any photo). Links are SigV4 presigned URLs (at most 7 days)
or, with ``[S3] links = public``, plain URLs for a public bucket. botocore retries
transient errors itself (``standard`` mode, ``[FileStore] max_attempts``).

``python -m file_store.s3 [--config toloka.ini]`` is the check command (see
:mod:`file_store.check`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, suppress
from typing import Any
from urllib.parse import quote, urlsplit

import aioboto3
import aiohttp
import botocore.exceptions
from aiobotocore.config import AioConfig

from common.errors import StorageError
from common.secrets import Secret
from file_store.base import Data, FileStore, ObjectInfo, iter_parts
from file_store.settings import FileStoreSettings, S3Settings

_DAY = 24 * 3600
_AUTH_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "AccessDenied",
    "InvalidClientTokenId",
    "AuthorizationHeaderMalformed",
    "InvalidToken",
    "ExpiredToken",
    "403",
}
# Codes S3-compatible servers use for "slow down" and "try again later" (with 5xx
# statuses; a HEAD answer has no body, so its code is the bare status).
_TRANSIENT_CODES = {
    "SlowDown",
    "Throttling",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TooManyRequests",
    "TooManyRequestsException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
    "ServiceUnavailable",
}
# Failures below HTTP (no answer, or half of one): another attempt may get through.
_TRANSIENT_TYPES = (
    botocore.exceptions.ConnectionError,  # refused, connect timeout, proxy, TLS set-up
    botocore.exceptions.HTTPClientError,  # read timeout, connection closed mid-answer
    botocore.exceptions.IncompleteReadError,
    aiohttp.ClientError,
    ConnectionError,
    TimeoutError,
)


class S3FileStore(FileStore):
    """Photos in one S3 bucket."""

    backend = "s3"

    def __init__(self, settings: FileStoreSettings, s3: S3Settings) -> None:
        super().__init__(concurrency=settings.concurrency)
        self._settings = settings
        self._s3 = s3
        self._stack = AsyncExitStack()
        self._client: Any = None

    def __repr__(self) -> str:
        return f"S3FileStore(url={self._s3.url!r}, bucket={self._s3.bucket_name!r})"

    @classmethod
    async def open(cls, settings: FileStoreSettings, key_id: Secret, access_key: Secret) -> S3FileStore:
        """Create the client (the only place the secrets are revealed) and check the bucket."""
        if settings.s3 is None:
            raise StorageError("S3 settings are missing: add an [S3] section to toloka.ini")
        store = cls(settings, settings.s3)
        s3 = settings.s3
        config = AioConfig(
            signature_version="s3v4",
            s3={"addressing_style": s3.addressing_style},
            retries={"total_max_attempts": settings.max_attempts, "mode": "standard"},
            max_pool_connections=settings.concurrency,
            connect_timeout=min(settings.timeout_seconds, 10.0),
            read_timeout=settings.timeout_seconds,
            request_checksum_calculation=s3.checksums,
            response_checksum_validation=s3.checksums,
        )
        session = aioboto3.Session(
            aws_access_key_id=key_id.reveal(), aws_secret_access_key=access_key.reveal(), region_name=s3.region
        )
        try:
            store._client = await store._stack.enter_async_context(
                session.client("s3", endpoint_url=s3.url, config=config)
            )
            await store._client.head_bucket(Bucket=s3.bucket_name)
        except Exception as exc:
            await store._stack.aclose()
            raise store._error(exc, "open bucket", None) from None
        return store

    async def _put(self, key: str, data: Data, content_type: str) -> None:
        bucket = self._s3.bucket_name
        parts = iter_parts(data, self._settings.part_size)
        try:
            first = await anext(parts)
            second = await anext(parts, None)
            if second is None:
                await self._client.put_object(Bucket=bucket, Key=key, Body=first, ContentType=content_type)
            else:
                await self._multipart(key, content_type, _chain(first, second, parts))
        except StorageError:
            raise
        except Exception as exc:
            raise self._error(exc, "put", key) from None
        finally:
            await parts.aclose()

    async def _multipart(self, key: str, content_type: str, parts: AsyncIterator[bytes]) -> None:
        bucket = self._s3.bucket_name
        upload = await self._client.create_multipart_upload(Bucket=bucket, Key=key, ContentType=content_type)
        upload_id = upload["UploadId"]
        done: list[dict[str, Any]] = []
        try:
            async for body in parts:
                number = len(done) + 1
                answer = await self._client.upload_part(
                    Bucket=bucket, Key=key, UploadId=upload_id, PartNumber=number, Body=body
                )
                done.append({"PartNumber": number, "ETag": answer["ETag"]})
            await self._client.complete_multipart_upload(
                Bucket=bucket, Key=key, UploadId=upload_id, MultipartUpload={"Parts": done}
            )
        except BaseException:
            # Frees the parts of an unfinished upload; no stored object is touched.
            with suppress(Exception):  # the original error matters more than a failed clean-up
                await self._client.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=upload_id)
            raise

    async def _copy(self, src_key: str, dst_key: str) -> None:
        bucket = self._s3.bucket_name
        try:
            await self._client.copy_object(
                Bucket=bucket, Key=dst_key, CopySource={"Bucket": bucket, "Key": src_key}, MetadataDirective="COPY"
            )
        except Exception as exc:
            raise self._error(exc, "copy", src_key) from None

    async def _info(self, key: str) -> ObjectInfo | None:
        try:
            head = await self._client.head_object(Bucket=self._s3.bucket_name, Key=key)
        except botocore.exceptions.ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise self._error(exc, "look up", key) from None
        except Exception as exc:
            raise self._error(exc, "look up", key) from None
        return ObjectInfo(size=int(head["ContentLength"]), content_type=head.get("ContentType", ""))

    async def _link(self, key: str, valid_days: int | None) -> str:
        s3 = self._s3
        days = valid_days or s3.link_valid_days
        if s3.links == "public":
            return f"{_public_base(s3)}/{quote(key, safe='/~')}"
        try:
            url: str = await self._client.generate_presigned_url(  # a coroutine in aiobotocore
                "get_object", Params={"Bucket": s3.bucket_name, "Key": key}, ExpiresIn=days * _DAY
            )
        except Exception as exc:
            raise self._error(exc, "sign a link to", key) from None
        return url

    async def _list_folders(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            pages = self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self._s3.bucket_name, Prefix=prefix, Delimiter="/"
            )
            async for page in pages:
                found.extend(item["Prefix"] for item in page.get("CommonPrefixes", []))
        except Exception as exc:
            raise self._error(exc, "list", prefix or "/") from None
        return found

    async def _close(self) -> None:
        await self._stack.aclose()

    def _error(self, exc: BaseException, action: str, key: str | None) -> StorageError:
        """A :class:`StorageError` saying what to fix (never the vendor text with request details).

        Also decides ``retryable``: a missing bucket or object and refused credentials
        need a person; throttling, 5xx answers, timeouts and dropped connections (still
        failing after botocore's own retries) may pass at the next tick.
        """
        s3 = self._s3
        where = f"S3 at {s3.url}"
        what = f"object {key!r}" if key else f"bucket {s3.bucket_name!r}"
        if isinstance(exc, botocore.exceptions.ClientError):
            code = _code(exc)
            if code == "NoSuchBucket" or (key is None and code in {"404", "NotFound"}):
                return StorageError(
                    f"S3 bucket {s3.bucket_name!r} does not exist at {s3.url}: "
                    f"create it or fix [S3] bucket_name in toloka.ini"
                )
            if code in {"NoSuchKey", "404", "NotFound"}:
                return StorageError(f"cannot {action} {what}: it does not exist in S3 bucket {s3.bucket_name!r}")
            if code in _AUTH_CODES:
                return StorageError(
                    f"{where} refused the credentials ({code}) for bucket {s3.bucket_name!r}: check the keyring "
                    f"entries {s3.key_id_entry!r} and {s3.access_key_entry!r} (python add_password.py) "
                    f"and [S3] region in toloka.ini"
                )
            transient = code in _TRANSIENT_CODES or _transient_status(_status(exc))
            return StorageError(f"{where}: cannot {action} {what}: {code}", retryable=transient)
        if isinstance(exc, (botocore.exceptions.EndpointConnectionError, botocore.exceptions.ConnectTimeoutError)):
            return StorageError(
                f"cannot reach {where} ({type(exc).__name__}): fix [S3] url in toloka.ini or check the network",
                retryable=True,
            )
        # Only the exception's type: vendor texts may quote URLs that carry the key id.
        return StorageError(
            f"{where}: cannot {action} {what}: {type(exc).__name__}", retryable=isinstance(exc, _TRANSIENT_TYPES)
        )


def _code(exc: botocore.exceptions.ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", "Unknown"))


def _status(exc: botocore.exceptions.ClientError) -> int | None:
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    return status if isinstance(status, int) else None


def _transient_status(status: int | None) -> bool:
    """408 and 429 (slow down) and every 5xx: the server may answer the same request later."""
    return status is not None and (status in {408, 429} or 500 <= status <= 599)


def _public_base(s3: S3Settings) -> str:
    if s3.public_url:
        return s3.public_url
    if s3.addressing_style == "virtual":
        parts = urlsplit(s3.url)
        return f"{parts.scheme}://{s3.bucket_name}.{parts.netloc}"
    return f"{s3.url}/{s3.bucket_name}"


async def _chain(first: bytes, second: bytes, rest: AsyncIterator[bytes]) -> AsyncIterator[bytes]:
    yield first
    yield second
    async for part in rest:
        yield part


if __name__ == "__main__":
    from file_store.check import main

    raise SystemExit(main("s3"))
