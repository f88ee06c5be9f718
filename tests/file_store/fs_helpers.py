"""Helpers for the file_store tests: configs, buckets/containers, fetching links."""

from __future__ import annotations

import asyncio
import configparser
import functools
import itertools
import random
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit
from urllib.request import url2pathname

import boto3
import aiohttp
from azure.core.credentials import AzureNamedKeyCredential
from azure.storage.blob.aio import BlobServiceClient

from file_store.base import FileStore
from file_store.testing import AZURITE_ACCOUNT, AZURITE_KEY

# Keyring values used by the tests; distinctive so leak checks can search for them.
S3_KEY_ID = "AKIAFSTESTKEYID0042"
S3_SECRET = "s3-secret-value-must-never-leak-7f3a"
SECRETS = {"s3_key_id": S3_KEY_ID, "s3_access_key": S3_SECRET, "azure_account_key": AZURITE_KEY}
_COUNTER = itertools.count()


def unique_name(stem: str) -> str:
    """A fresh lowercase bucket/container name (3-63 characters)."""
    return f"{stem}-{next(_COUNTER)}-{uuid.uuid4().hex[:8]}"


def ini_text(backend: str, *, folder: Path | None = None, s3_url: str = "", bucket: str = "photos",
             azure_endpoint: str = "", container: str = "photos", **overrides: str) -> str:
    """A toloka.ini with the file store sections; ``overrides`` are ``Section__key=value``."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_dict({
        "Secrets": {name: name for name in SECRETS},
        "FileStore": {"backend": backend, "local_folder": str(folder or "photos"), "concurrency": "8",
                      "max_attempts": "3", "timeout_seconds": "20", "part_size_mb": "5"},
        "S3": {"bucket_name": bucket, "url": s3_url or "http://127.0.0.1:9", "region": "us-east-1",
               "addressing_style": "path", "checksums": "when_required", "links": "presigned",
               "link_valid_days": "7"},
        "AzureBlobStorage": {"account_name": AZURITE_ACCOUNT, "container_name": container,
                             "sas_url_valid_days": "7", "endpoint": azure_endpoint},
    })  # fmt: skip
    for name, value in overrides.items():
        section, key = name.split("__")
        cfg.set(section, key, value)
    lines: list[str] = []
    for section in cfg.sections():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {value}" for key, value in cfg.items(section))
        lines.append("")
    return "\n".join(lines)


def parse(text: str) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(text)
    return cfg


@functools.cache
def _admin_s3(endpoint: str) -> Any:
    # One plain boto3 client per endpoint for test set-up (creating a client costs ~0.3 s).
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=S3_KEY_ID,
                        aws_secret_access_key=S3_SECRET, region_name="us-east-1")  # fmt: skip


async def create_bucket(endpoint: str, name: str) -> None:
    await asyncio.to_thread(_admin_s3(endpoint).create_bucket, Bucket=name)


async def create_container(endpoint: str, name: str) -> None:
    credential = AzureNamedKeyCredential(AZURITE_ACCOUNT, AZURITE_KEY)
    async with BlobServiceClient(account_url=endpoint, credential=credential) as service:
        await service.create_container(name)


async def fetch(url: str, store: FileStore | None = None, key: str | None = None) -> tuple[int, bytes, str]:
    """GET a link: (status, body, content type). ``file://`` links are read from disk."""
    if url.startswith("file://"):
        path = Path(url2pathname(urlsplit(url).path))
        if not path.is_file():
            return 404, b"", ""
        info = await store.info(key) if store is not None and key is not None else None
        return 200, path.read_bytes(), info.content_type if info else ""
    async with aiohttp.ClientSession() as http, http.get(url) as answer:
        return answer.status, await answer.read(), answer.headers.get("Content-Type", "")


def photo(size: int, seed: int = 0) -> bytes:
    """Deterministic pseudo-random bytes (not compressible, like a JPEG)."""
    return random.Random(seed).randbytes(size)
