"""``python -m file_store.s3`` / ``python -m file_store.azure`` as an operator runs them.

Each runs as a child process with a temporary toloka.ini and the test's file keyring
(selected through PYTHON_KEYRING_BACKEND and XDG_DATA_HOME, as on a headless server).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

import pytest

from file_store.testing import AzuriteServer, MotoServer
from fs_helpers import S3_SECRET, SECRETS, create_bucket, create_container, fetch, ini_text, unique_name

README = "# Pedestrian pipeline\n\nÜmlauts, tabs\tand a long line " + "x" * 5000 + "\n"


async def run_check(backend: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", f"file_store.{backend}", "--config", "toloka.ini"]
    return await asyncio.to_thread(
        subprocess.run, command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60
    )


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    folder = tmp_path / "work"
    folder.mkdir()
    (folder / "README.md").write_text(README, encoding="utf-8")
    return folder


async def test_s3_check_prints_a_working_link(  # type: ignore[no-untyped-def]
    workdir: Path, file_keyring, keyring_env: dict[str, str], moto_server: MotoServer
) -> None:
    bucket = unique_name("check")
    await create_bucket(moto_server.endpoint, bucket)
    (workdir / "toloka.ini").write_text(ini_text("s3", s3_url=moto_server.endpoint, bucket=bucket), encoding="utf-8")
    result = await run_check("s3", workdir, keyring_env)
    assert result.returncode == 0, result.stderr
    status, body, content_type = await fetch(result.stdout.strip())
    assert (status, body) == (200, README.encode("utf-8"))
    assert content_type.startswith("text/markdown")


async def test_azure_check_prints_a_working_link(  # type: ignore[no-untyped-def]
    workdir: Path, file_keyring, keyring_env: dict[str, str], azurite_server: AzuriteServer
) -> None:
    container = unique_name("check")
    await create_container(azurite_server.endpoint, container)
    text = ini_text("azure", azure_endpoint=azurite_server.endpoint, container=container)
    (workdir / "toloka.ini").write_text(text, encoding="utf-8")
    result = await run_check("azure", workdir, keyring_env)
    assert result.returncode == 0, result.stderr
    assert "sig=" in result.stdout
    assert await fetch(result.stdout.strip()) == (200, README.encode("utf-8"), "text/markdown")


async def test_s3_check_explains_a_missing_bucket(  # type: ignore[no-untyped-def]
    workdir: Path, file_keyring, keyring_env: dict[str, str], moto_server: MotoServer
) -> None:
    (workdir / "toloka.ini").write_text(ini_text("s3", s3_url=moto_server.endpoint, bucket="not-made"), encoding="utf-8")
    result = await run_check("s3", workdir, keyring_env)
    assert result.returncode == 1
    assert result.stdout == ""
    assert "error: S3 bucket 'not-made' does not exist" in result.stderr
    assert "Traceback" not in result.stderr


async def test_azure_check_explains_a_missing_secret(  # type: ignore[no-untyped-def]
    workdir: Path, file_keyring, keyring_env: dict[str, str], azurite_server: AzuriteServer
) -> None:
    import keyring

    keyring.delete_password("TOLOKA", "azure_account_key")
    (workdir / "toloka.ini").write_text(ini_text("azure", azure_endpoint=azurite_server.endpoint), encoding="utf-8")
    result = await run_check("azure", workdir, keyring_env)
    assert result.returncode == 1
    assert "'azure_account_key' is not in the keyring" in result.stderr
    assert "python add_password.py" in result.stderr


async def test_outputs_never_show_secrets(  # type: ignore[no-untyped-def]
    workdir: Path, file_keyring, keyring_env: dict[str, str], moto_server: MotoServer
) -> None:
    (workdir / "toloka.ini").write_text(ini_text("s3", s3_url=moto_server.endpoint, bucket="not-made"), encoding="utf-8")
    result = await run_check("s3", workdir, keyring_env)
    assert S3_SECRET not in result.stdout + result.stderr
    assert SECRETS["s3_key_id"] not in result.stdout + result.stderr
