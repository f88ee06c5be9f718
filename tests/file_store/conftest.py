"""Fixtures for the file_store tests: real emulators on loopback, a real file keyring.

moto's S3 server runs in a thread, Azurite (from ``npm ci``) as a child process; both are
started once per session on free ports. Each test gets its own bucket/container, so
tests never see each other's objects.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path

import keyring
import pytest
from keyrings.alt.file import PlaintextKeyring

from file_store import FileStore, load_file_store_settings, open_file_store
from file_store.testing import AzuriteServer, MotoServer, ServerStartError, start_azurite, start_moto
from fs_helpers import SECRETS, create_bucket, create_container, ini_text, parse, unique_name

BACKENDS = ("local", "s3", "azure")
StoreFactory = Callable[..., Awaitable[FileStore]]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = start_moto()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def azurite_server() -> Iterator[AzuriteServer]:
    try:
        server = start_azurite()
    except ServerStartError as exc:
        # Not a skip: CI installs Azurite (test.sh runs `npm ci`), so a missing one is a failure.
        pytest.fail(str(exc))
    yield server
    server.stop()


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[PlaintextKeyring]:
    """A real keyrings.alt file keyring in ``tmp_path`` holding the test secrets."""
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg-data"))
    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    for entry, value in SECRETS.items():
        keyring.set_password("TOLOKA", entry, value)
    yield backend
    keyring.set_keyring(previous)


@pytest.fixture
def keyring_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a child process that reads the same file keyring as ``file_keyring``."""
    env = dict(os.environ)
    env.update(
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        XDG_DATA_HOME=str(tmp_path / "xdg-data"),
        XDG_CONFIG_HOME=str(tmp_path / "xdg-config"),
        PYTHONPATH=str(Path(__file__).resolve().parents[2]),
    )
    return env


@pytest.fixture
async def make_store(
    tmp_path: Path, file_keyring: PlaintextKeyring, request: pytest.FixtureRequest
) -> AsyncIterator[StoreFactory]:
    """``await make_store(backend, **ini_overrides)``: a fresh, open store, closed after the test."""
    opened: list[FileStore] = []

    async def factory(backend: str, **overrides: str) -> FileStore:
        """``bucket=``/``container=`` name an existing (or deliberately missing) one; else a new one is made."""
        text = await ini_for(backend, **overrides)
        store = await open_file_store(load_file_store_settings(parse(text)))
        opened.append(store)
        return store

    async def ini_for(backend: str, **overrides: str) -> str:
        if backend == "s3":
            endpoint = request.getfixturevalue("moto_server").endpoint
            if "bucket" not in overrides:
                overrides["bucket"] = unique_name("bucket")
                await create_bucket(endpoint, overrides["bucket"])
            overrides.setdefault("s3_url", endpoint)
            return ini_text("s3", **overrides)
        if backend == "azure":
            endpoint = request.getfixturevalue("azurite_server").endpoint
            if "container" not in overrides:
                overrides["container"] = unique_name("box")
                await create_container(endpoint, overrides["container"])
            overrides.setdefault("azure_endpoint", endpoint)
            return ini_text("azure", **overrides)
        return ini_text("local", folder=tmp_path / f"store-{len(opened)}", **overrides)

    yield factory
    for store in opened:
        await store.aclose()


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest, make_store: StoreFactory) -> FileStore:
    """One open store of each backend in turn: the contract tests run against all three."""
    return await make_store(request.param)
