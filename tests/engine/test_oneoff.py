"""The one-off commands' hold on the daemon's folder (engine/oneoff.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from common.errors import StateError
from engine.lock import DaemonLock
from engine.oneoff import daemon_stopped


def test_a_missing_saves_folder_is_refused_and_not_made(tmp_path: Path) -> None:
    """reverse and relink on a wrong --config or a half-done move: refused, and no empty saves/ appears."""
    saves = tmp_path / "saves"
    with pytest.raises(StateError, match="no saves folder") as caught, daemon_stopped(saves, "relink"):
        pass
    assert str(saves) in str(caught.value) and not saves.exists()


def test_a_running_daemon_is_named_and_a_stopped_one_lets_the_command_in(tmp_path: Path) -> None:
    saves = tmp_path / "saves"
    saves.mkdir()
    with DaemonLock(saves), pytest.raises(StateError, match="is running"), daemon_stopped(saves, "reverse"):
        pass
    with daemon_stopped(saves, "reverse") as lock:
        assert lock.held
