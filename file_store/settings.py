"""Typed settings of the file stores, read from ``toloka.ini``.

Sections: ``[FileStore]`` (backend choice and limits shared by every backend), ``[S3]``,
``[AzureBlobStorage]``, and the keyring entry names in ``[Secrets]``. Only the chosen
backend's section is read, so a local demo needs no S3 or Azure keys. Every mistake
raises :class:`~common.errors.ConfigError` naming section, key, expected and found.
"""

from __future__ import annotations

import configparser
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from common import ini
from common.errors import ConfigError, PipelineError

BACKENDS = ("s3", "azure", "local")
MIB = 1024 * 1024
#: SigV4 presigned URLs are valid for at most 7 days.
MAX_PRESIGN_DAYS = 7
#: The longest Azure SAS validity ``sas_url_valid_days`` accepts.
MAX_SAS_DAYS = 365

AddressingStyle = Literal["path", "virtual"]
Checksums = Literal["when_required", "when_supported"]
LinkKind = Literal["presigned", "public"]
ADDRESSING_STYLES: tuple[AddressingStyle, ...] = ("path", "virtual")
CHECKSUMS: tuple[Checksums, ...] = ("when_required", "when_supported")
LINK_KINDS: tuple[LinkKind, ...] = ("presigned", "public")


@dataclass(frozen=True)
class S3Settings:
    """``[S3]``: any S3-compatible endpoint (AWS, Yandex Object Storage, MinIO, moto)."""

    bucket_name: str
    url: str
    region: str
    addressing_style: AddressingStyle
    checksums: Checksums
    links: LinkKind
    link_valid_days: int
    public_url: str | None
    key_id_entry: str
    access_key_entry: str


@dataclass(frozen=True)
class AzureSettings:
    """``[AzureBlobStorage]``: one container of one storage account (or Azurite)."""

    account_name: str
    container_name: str
    sas_url_valid_days: int
    endpoint: str
    api_version: str | None
    account_key_entry: str


@dataclass(frozen=True)
class LocalSettings:
    """The local folder backend (demo and development; links are ``file://`` URLs)."""

    folder: Path


@dataclass(frozen=True)
class FileStoreSettings:
    """``[FileStore]`` plus the settings of the chosen backend (the others are ``None``)."""

    backend: str
    concurrency: int
    max_attempts: int
    timeout_seconds: float
    part_size_mb: int
    local: LocalSettings | None = None
    s3: S3Settings | None = None
    azure: AzureSettings | None = None

    @property
    def part_size(self) -> int:
        """Bytes: larger uploads are streamed in parts of this size (never buffered whole)."""
        return self.part_size_mb * MIB


def link_valid_days_limit(settings: FileStoreSettings) -> int | None:
    """The longest validity a link of this store can be given, in days; None when its links never expire.

    SigV4 presigned S3 links last at most 7 days, Azure SAS links as long as
    ``sas_url_valid_days`` allows (365); ``file://`` and public S3 links do not expire.
    """
    if settings.s3 is not None and settings.s3.links == "presigned":
        return MAX_PRESIGN_DAYS
    if settings.azure is not None:
        return MAX_SAS_DAYS
    return None


def load_file_store_settings(cfg: configparser.ConfigParser, backend: str | None = None) -> FileStoreSettings:
    """Read ``[FileStore]`` and the section of ``backend`` (default: ``[FileStore] backend``)."""
    section = "FileStore"
    chosen = backend or ini.get_choice(cfg, section, "backend", BACKENDS)
    return FileStoreSettings(
        backend=chosen,
        concurrency=ini.get_int(cfg, section, "concurrency", 16, minimum=1, maximum=256),
        max_attempts=ini.get_int(cfg, section, "max_attempts", 4, minimum=1, maximum=10),
        timeout_seconds=ini.get_float(cfg, section, "timeout_seconds", 60.0, minimum=1.0, maximum=3600.0),
        # S3 multipart parts must be at least 5 MiB (except the last one).
        part_size_mb=ini.get_int(cfg, section, "part_size_mb", 8, minimum=5, maximum=100),
        local=_local(cfg) if chosen == "local" else None,
        s3=_s3(cfg) if chosen == "s3" else None,
        azure=_azure(cfg) if chosen == "azure" else None,
    )


def _url(cfg: configparser.ConfigParser, section: str, key: str, *, required: bool) -> str | None:
    value = ini.get_str(cfg, section, key) if required else ini.get_str(cfg, section, key, "")
    if value == "":
        return None
    if not value.startswith(("http://", "https://")) or len(value) <= len("https://"):
        raise ConfigError(section, key, "an http:// or https:// URL", value)
    return value.rstrip("/")


def _local(cfg: configparser.ConfigParser) -> LocalSettings:
    return LocalSettings(folder=Path(ini.get_str(cfg, "FileStore", "local_folder", "photos")))


def _s3(cfg: configparser.ConfigParser) -> S3Settings:
    section = "S3"
    url = _url(cfg, section, "url", required=True)
    assert url is not None
    bucket = ini.get_str(cfg, section, "bucket_name")
    if not 3 <= len(bucket) <= 63 or "/" in bucket:
        raise ConfigError(section, "bucket_name", "a bucket name of 3 to 63 characters without '/'", bucket)
    return S3Settings(
        bucket_name=bucket,
        url=url,
        region=ini.get_str(cfg, section, "region", "us-east-1"),
        addressing_style=ini.get_choice(cfg, section, "addressing_style", ADDRESSING_STYLES, "path"),
        checksums=ini.get_choice(cfg, section, "checksums", CHECKSUMS, "when_required"),
        links=ini.get_choice(cfg, section, "links", LINK_KINDS, "presigned"),
        link_valid_days=ini.get_int(
            cfg, section, "link_valid_days", MAX_PRESIGN_DAYS, minimum=1, maximum=MAX_PRESIGN_DAYS
        ),
        public_url=_url(cfg, section, "public_url", required=False),
        key_id_entry=ini.get_str(cfg, "Secrets", "s3_key_id", "s3_key_id"),
        access_key_entry=ini.get_str(cfg, "Secrets", "s3_access_key", "s3_access_key"),
    )


def _azure(cfg: configparser.ConfigParser) -> AzureSettings:
    section = "AzureBlobStorage"
    account = ini.get_str(cfg, section, "account_name")
    container = ini.get_str(cfg, section, "container_name")
    if not 3 <= len(container) <= 63 or container.lower() != container or "/" in container:
        raise ConfigError(section, "container_name", "a lowercase container name of 3 to 63 characters", container)
    endpoint = _url(cfg, section, "endpoint", required=False) or f"https://{account}.blob.core.windows.net"
    api_version = ini.get_str(cfg, section, "api_version", "")
    return AzureSettings(
        account_name=account,
        container_name=container,
        sas_url_valid_days=ini.get_int(cfg, section, "sas_url_valid_days", 7, minimum=1, maximum=MAX_SAS_DAYS),
        endpoint=endpoint,
        api_version=api_version or None,
        account_key_entry=ini.get_str(cfg, "Secrets", "azure_account_key", "azure_account_key"),
    )


def read_config(path: str | Path) -> configparser.ConfigParser:
    """Parse ``toloka.ini`` at ``path`` (an unreadable file is a clear :class:`PipelineError`)."""
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            cfg.read_file(handle)
    except OSError as exc:
        raise PipelineError(f"cannot read the configuration file {str(path)!r}: {exc.strerror}") from None
    return cfg
