"""Photo storage for the pipeline: one async interface, three backends.

``[FileStore] backend`` in ``toloka.ini`` chooses ``s3`` (aioboto3, any S3-compatible
endpoint), ``azure`` (Azure Blob Storage) or ``local`` (a folder, ``file://`` links).
Typical use::

    settings = load_file_store_settings(cfg)
    async with await open_file_store(settings) as store:
        key = make_key("tmp", "2026-11-22", assignment_id, "imgs_facade", "0.jpg")
        await store.put(key, photo_bytes, "image/jpeg")
        url = await store.link(key)

Nothing here deletes objects; see :mod:`file_store.retention` for old ``tmp/`` folders.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from common.errors import StorageError
from common.secrets import Secret, read_secret
from file_store.base import Data, FileStore, ObjectInfo
from file_store.keys import InvalidKeyError, check_key, make_key
from file_store.settings import FileStoreSettings, load_file_store_settings

__all__ = [
    "Data",
    "FileStore",
    "FileStoreSettings",
    "InvalidKeyError",
    "ObjectInfo",
    "StorageError",
    "check_key",
    "load_file_store_settings",
    "make_key",
    "open_file_store",
]

SecretReader = Callable[[str], Secret]


async def open_file_store(settings: FileStoreSettings, *, secrets: SecretReader = read_secret) -> FileStore:
    """Open the configured backend: read its secrets (in a thread), create its client, check it.

    Raises :class:`~common.errors.SecretError` when a keyring entry is missing and
    :class:`~common.errors.StorageError` when the bucket/container/folder is unusable.
    """
    if settings.backend == "local":
        from file_store.local import LocalFileStore

        assert settings.local is not None
        return await LocalFileStore.open(settings.local.folder, concurrency=settings.concurrency)
    if settings.backend == "s3":
        from file_store.s3 import S3FileStore

        assert settings.s3 is not None
        key_id = await asyncio.to_thread(secrets, settings.s3.key_id_entry)
        access_key = await asyncio.to_thread(secrets, settings.s3.access_key_entry)
        return await S3FileStore.open(settings, key_id, access_key)
    if settings.backend == "azure":
        from file_store.azure import AzureFileStore

        assert settings.azure is not None
        account_key = await asyncio.to_thread(secrets, settings.azure.account_key_entry)
        return await AzureFileStore.open(settings, account_key)
    raise StorageError(f"unknown file store backend {settings.backend!r}: fix [FileStore] backend in toloka.ini")
