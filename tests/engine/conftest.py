"""Shared fixtures of the engine tests: a private keyring, a toloka.ini editor, subprocess helpers."""

from __future__ import annotations

import configparser
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import keyring
import pytest

from engine_helpers import EXAMPLE_INI, REPO


@pytest.fixture
def file_keyring(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[keyring.backend.KeyringBackend]:
    """A real keyrings.alt plaintext keyring in a temp folder, installed for this process."""
    from keyrings.alt.file import PlaintextKeyring

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    previous = keyring.get_keyring()
    backend = PlaintextKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


@pytest.fixture
def keyring_env(tmp_path: Path) -> dict[str, str]:
    """Environment for child processes that use a file keyring under ``tmp_path`` only."""
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON_KEYRING", "XDG_"))}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "data"),
        XDG_CONFIG_HOME=str(home / "config"),
        PYTHON_KEYRING_BACKEND="keyrings.alt.file.PlaintextKeyring",
        PYTHONPATH=str(REPO),
        PYTHONDONTWRITEBYTECODE="1",
    )
    return env


@pytest.fixture
def write_ini(tmp_path: Path) -> Callable[..., Path]:
    """Write the example toloka.ini with edits: ``{(section, key): value or None (delete)}``.

    ``(section, "*"): None`` removes the whole section.
    """

    def write(edits: dict[tuple[str, str], str | None] | None = None, name: str = "toloka.ini") -> Path:
        cfg = configparser.ConfigParser(interpolation=None)
        cfg.read(EXAMPLE_INI, encoding="utf-8")
        for (section, key), value in (edits or {}).items():
            if key == "*" and value is None:
                cfg.remove_section(section)
            elif value is None:
                cfg.remove_option(section, key)
            else:
                if not cfg.has_section(section):
                    cfg.add_section(section)
                cfg.set(section, key, value)
        path = tmp_path / name
        with open(path, "w", encoding="utf-8") as handle:
            cfg.write(handle)
        return path

    return write
