"""[FileStore]/[S3]/[AzureBlobStorage] parsing: the repo's toloka.ini, defaults, clear errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import ConfigError, PipelineError, SecretError
from file_store import load_file_store_settings, open_file_store
from file_store.settings import read_config
from fs_helpers import SECRETS, ini_text, parse

REPO_INI = Path(__file__).resolve().parents[2] / "toloka.example.ini"


def test_repo_toloka_ini_parses_for_every_backend() -> None:
    cfg = read_config(REPO_INI)
    assert load_file_store_settings(cfg).backend == "local"
    s3 = load_file_store_settings(cfg, "s3").s3
    assert s3 is not None and s3.bucket_name == "photos" and s3.addressing_style == "path"
    assert s3.key_id_entry == "s3_key_id" and s3.link_valid_days == 7
    azure = load_file_store_settings(cfg, "azure").azure
    assert azure is not None and azure.endpoint == "https://devstoreaccount1.blob.core.windows.net"
    assert azure.account_key_entry == "azure_account_key"


def test_only_the_chosen_backend_section_is_needed() -> None:
    settings = load_file_store_settings(parse("[FileStore]\nbackend = local\nlocal_folder = pics\n"))
    assert settings.local is not None and settings.local.folder == Path("pics")
    assert settings.s3 is None and settings.azure is None
    assert (settings.concurrency, settings.max_attempts, settings.part_size) == (16, 4, 8 * 1024 * 1024)


@pytest.mark.parametrize(
    ("override", "section", "key"),
    [
        ({"FileStore__backend": "ftp"}, "FileStore", "backend"),
        ({"FileStore__concurrency": "0"}, "FileStore", "concurrency"),
        ({"FileStore__part_size_mb": "4"}, "FileStore", "part_size_mb"),
        ({"S3__link_valid_days": "8"}, "S3", "link_valid_days"),
        ({"S3__url": "storage.yandexcloud.net"}, "S3", "url"),
        ({"S3__addressing_style": "dns"}, "S3", "addressing_style"),
        ({"S3__links": "signed"}, "S3", "links"),
        ({"S3__bucket_name": "ab"}, "S3", "bucket_name"),
        ({"S3__checksums": "always"}, "S3", "checksums"),
    ],
)
def test_bad_s3_values_name_section_and_key(override: dict[str, str], section: str, key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file_store_settings(parse(ini_text("s3", **override)))
    assert (caught.value.section, caught.value.key) == (section, key)
    assert f"[{section}] {key}" in str(caught.value)


@pytest.mark.parametrize(
    ("override", "key"),
    [
        ({"AzureBlobStorage__container_name": "Photos"}, "container_name"),
        ({"AzureBlobStorage__sas_url_valid_days": "0"}, "sas_url_valid_days"),
        ({"AzureBlobStorage__endpoint": "127.0.0.1:10000"}, "endpoint"),
        ({"AzureBlobStorage__account_name": ""}, "account_name"),
    ],
)
def test_bad_azure_values_name_section_and_key(override: dict[str, str], key: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_file_store_settings(parse(ini_text("azure", **override)))
    assert (caught.value.section, caught.value.key) == ("AzureBlobStorage", key)


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(PipelineError, match="cannot read the configuration file"):
        read_config(tmp_path / "nope.ini")


def test_settings_hold_entry_names_not_secrets() -> None:
    text = repr(load_file_store_settings(parse(ini_text("s3")))) + repr(load_file_store_settings(parse(ini_text("azure"))))
    assert not any(value in text for value in SECRETS.values())


@pytest.mark.parametrize("backend", ["s3", "azure"])
async def test_missing_keyring_entry_names_it(backend: str, file_keyring, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import keyring

    entry = "s3_key_id" if backend == "s3" else "azure_account_key"
    keyring.delete_password("TOLOKA", entry)
    with pytest.raises(SecretError, match=f"'{entry}' is not in the keyring"):
        await open_file_store(load_file_store_settings(parse(ini_text(backend))))
