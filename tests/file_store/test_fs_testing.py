"""The emulator starters shared by the tests and the benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest

from file_store.testing import ServerStartError, start_azurite


def test_missing_azurite_says_how_to_install_it(tmp_path: Path) -> None:
    with pytest.raises(ServerStartError, match=r"run `npm ci` in the repository root"):
        start_azurite(tmp_path / "no-azurite-here")


def test_azurite_that_exits_at_once_is_reported(tmp_path: Path) -> None:
    fake = tmp_path / "azurite-blob"
    fake.write_text("#!/bin/sh\necho 'Exit due to unhandled error: port in use'\nexit 1\n")
    fake.chmod(0o755)
    with pytest.raises(ServerStartError, match="port in use"):
        start_azurite(fake)
