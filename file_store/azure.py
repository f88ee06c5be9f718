"""The Azure Blob backend (azure-storage-blob, aio client).

One ``BlobServiceClient`` is created when the store opens and closed with it. Uploads up
to 1 MiB are one request; larger ones are streamed as 1 MiB blocks (see ``BLOCK_SIZE``).
Copies are server-side (``start_copy_from_url``, polled until done; Azurite does not
implement Put Blob From URL). Links carry a read-only SAS valid ``sas_url_valid_days``.
The SDK retries transient errors itself (``[FileStore] max_attempts``).

``python -m file_store.azure [--config toloka.ini]`` is the check command (see
:mod:`file_store.check`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from azure.core.credentials import AzureNamedKeyCredential
from azure.core.exceptions import (
    ClientAuthenticationError,
    HttpResponseError,
    IncompleteReadError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.storage.blob import BlobSasPermissions, ContentSettings, generate_blob_sas
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

from common.errors import StorageError
from common.secrets import Secret
from file_store.base import Data, FileStore, ObjectInfo, iter_parts
from file_store.settings import AzureSettings, FileStoreSettings

Clock = Callable[[], datetime]
# Largest request body the store sends. The SDK hands blocks to aiohttp as raw bytes, and
# aiohttp warns that bodies above 1 MiB sent that way may stall the event loop; 1 MiB
# blocks avoid that, keep memory small and still allow blobs up to ~48 GiB (50,000 blocks).
BLOCK_SIZE = 1024 * 1024
_COPY_POLL_SECONDS = 0.2
# Answers the service may give differently later: throttling, timeouts, server trouble.
_TRANSIENT_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
_TRANSIENT_CODES = frozenset({"ServerBusy", "OperationTimedOut", "InternalError"})


def utc_now() -> datetime:
    """The default clock of SAS expiry times."""
    return datetime.now(UTC)


class AzureFileStore(FileStore):
    """Photos in one Azure Blob container."""

    backend = "azure"

    def __init__(self, settings: FileStoreSettings, azure: AzureSettings, account_key: Secret, clock: Clock) -> None:
        super().__init__(concurrency=settings.concurrency)
        self._settings = settings
        self._azure = azure
        self._key = account_key
        self._clock = clock
        self._service: Any = None
        self._container: Any = None

    def __repr__(self) -> str:
        return f"AzureFileStore(endpoint={self._azure.endpoint!r}, container={self._azure.container_name!r})"

    @classmethod
    async def open(
        cls, settings: FileStoreSettings, account_key: Secret, *, clock: Clock = utc_now
    ) -> AzureFileStore:
        """Create the client (the account key is revealed here and when signing links), check the container."""
        if settings.azure is None:
            raise StorageError("Azure settings are missing: add an [AzureBlobStorage] section to toloka.ini")
        azure = settings.azure
        store = cls(settings, azure, account_key, clock)
        options: dict[str, Any] = {}
        if azure.api_version:
            options["api_version"] = azure.api_version
        store._service = BlobServiceClient(
            account_url=azure.endpoint,
            credential=AzureNamedKeyCredential(azure.account_name, account_key.reveal()),
            # Waits about 1.7 s, 2.5 s, 3.6 s ... between attempts (the SDK default starts at 15 s).
            retry_policy=ExponentialRetry(
                # The SDK annotates these three as int but computes with them as floats
                # (initial_backoff + increment_base ** n, jittered by +/- the range);
                # sub-second values are the point, so the annotation is what is wrong.
                initial_backoff=0.2,  # type: ignore[arg-type]  # a float on purpose, see above
                increment_base=1.5,  # type: ignore[arg-type]  # a float on purpose, see above
                retry_total=settings.max_attempts - 1,
                random_jitter_range=0.3,  # type: ignore[arg-type]  # a float on purpose, see above
            ),
            max_single_put_size=BLOCK_SIZE,
            max_block_size=BLOCK_SIZE,
            connection_timeout=min(settings.timeout_seconds, 10.0),
            read_timeout=settings.timeout_seconds,
            **options,
        )
        store._container = store._service.get_container_client(azure.container_name)
        try:
            await store._container.get_container_properties()
        except Exception as exc:
            await store._service.close()
            raise store._error(exc, "open container", None) from None
        return store

    async def _put(self, key: str, data: Data, content_type: str) -> None:
        blob = self._container.get_blob_client(key)
        settings = ContentSettings(content_type=content_type)
        try:
            if isinstance(data, (bytes, bytearray, memoryview)) and len(data) <= BLOCK_SIZE:
                await blob.upload_blob(bytes(data), overwrite=True, content_settings=settings)
            else:
                # Unknown length: the SDK stages one block per part, then commits the list.
                parts = iter_parts(data, BLOCK_SIZE)
                try:
                    await blob.upload_blob(parts, overwrite=True, content_settings=settings, max_concurrency=1)
                finally:
                    await parts.aclose()
        except StorageError:
            raise
        except Exception as exc:
            raise self._error(exc, "put", key) from None

    async def _copy(self, src_key: str, dst_key: str) -> None:
        source = self._container.get_blob_client(src_key)
        target = self._container.get_blob_client(dst_key)
        try:
            # Same account: the Shared Key of this request authorizes reading the source, so
            # its plain URL is enough (a SAS URL makes Azurite fetch the source over HTTP, ~2x slower).
            copy = await target.start_copy_from_url(source.url)
            status = copy.get("copy_status")
            deadline = time.monotonic() + self._settings.timeout_seconds
            while status == "pending" and time.monotonic() < deadline:
                await asyncio.sleep(_COPY_POLL_SECONDS)
                status = (await target.get_blob_properties()).copy.status
        except Exception as exc:
            raise self._error(exc, "copy", src_key) from None
        if status != "success":
            raise StorageError(
                f"Azure copy of {src_key!r} to {dst_key!r} ended as {status!r}; the pipeline will retry",
                retryable=True,
            )

    async def _info(self, key: str) -> ObjectInfo | None:
        try:
            props = await self._container.get_blob_client(key).get_blob_properties()
        except ResourceNotFoundError as exc:
            # error_code is set by the storage SDK's error processing, not declared by azure-core.
            code = getattr(exc, "error_code", None)
            if code == "BlobNotFound" or code is None:
                return None
            raise self._error(exc, "look up", key) from None
        except Exception as exc:
            raise self._error(exc, "look up", key) from None
        return ObjectInfo(size=int(props.size), content_type=props.content_settings.content_type or "")

    async def _link(self, key: str, valid_days: int | None) -> str:
        url: str = self._container.get_blob_client(key).url
        return f"{url}?{self._sas(key, timedelta(days=valid_days or self._azure.sas_url_valid_days))}"

    def _sas(self, key: str, valid: timedelta) -> str:
        now = self._clock()
        return generate_blob_sas(
            account_name=self._azure.account_name,
            container_name=self._azure.container_name,
            blob_name=key,
            account_key=self._key.reveal(),
            permission=BlobSasPermissions(read=True),
            # A few minutes of slack for clocks that run behind the service's.
            start=now - timedelta(minutes=5),
            expiry=now + valid,
        )

    async def _list_folders(self, prefix: str) -> list[str]:
        found: list[str] = []
        try:
            async for item in self._container.walk_blobs(name_starts_with=prefix or None, delimiter="/"):
                if item.name.endswith("/"):
                    found.append(item.name)
        except Exception as exc:
            raise self._error(exc, "list", prefix or "/") from None
        return found

    async def _close(self) -> None:
        await self._service.close()

    def _error(self, exc: BaseException, action: str, key: str | None) -> StorageError:
        """A :class:`StorageError` saying what to fix (vendor texts are not copied: they quote URLs).

        Also decides ``retryable``: a missing container or blob and a refused key need a
        person; throttling, 5xx answers, timeouts and dropped connections (still failing
        after the SDK's own retries) may pass at the next tick.
        """
        azure = self._azure
        where = f"Azure Blob Storage at {azure.endpoint}"
        what = f"blob {key!r}" if key else f"container {azure.container_name!r}"
        code = getattr(exc, "error_code", None)
        status = getattr(exc, "status_code", None)
        if code == "ContainerNotFound" or (key is None and isinstance(exc, ResourceNotFoundError)):
            return StorageError(
                f"Azure container {azure.container_name!r} does not exist in account {azure.account_name!r} "
                f"at {azure.endpoint}: create it or fix [AzureBlobStorage] container_name in toloka.ini"
            )
        if isinstance(exc, ResourceNotFoundError):
            return StorageError(f"cannot {action} {what}: it does not exist in container {azure.container_name!r}")
        if isinstance(exc, ClientAuthenticationError) or status == 403:
            return StorageError(
                f"{where} refused the account key ({code or status}) of account {azure.account_name!r}: check "
                f"the keyring entry {azure.account_key_entry!r} (python add_password.py) and "
                f"[AzureBlobStorage] account_name in toloka.ini"
            )
        if isinstance(exc, ServiceRequestError):
            return StorageError(
                f"cannot reach {where} ({type(exc).__name__}): fix [AzureBlobStorage] endpoint or "
                f"account_name in toloka.ini, or check the network",
                retryable=True,
            )
        if isinstance(exc, HttpResponseError):
            transient = (
                status in _TRANSIENT_STATUSES
                or code in _TRANSIENT_CODES
                or isinstance(exc, IncompleteReadError)  # the connection dropped mid-answer
            )
            return StorageError(f"{where}: cannot {action} {what}: {code or status}", retryable=transient)
        # A dropped or timed-out answer (ServiceResponseError) or a failure below the SDK.
        transient = isinstance(exc, (ServiceResponseError, aiohttp.ClientError, ConnectionError, TimeoutError))
        return StorageError(f"{where}: cannot {action} {what}: {type(exc).__name__}", retryable=transient)


if __name__ == "__main__":
    from file_store.check import main

    raise SystemExit(main("azure"))
