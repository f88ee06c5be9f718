"""The pipelines this daemon can run, by the name ``[Pipeline] definition`` uses.

Each is a :class:`~engine.spec.PipelineSpec` value. Adding one means adding a
module here and a line to :data:`REGISTRY`; nothing in ``engine/``,
``status/`` or ``reporting/`` changes (docs/engine.md walks through it).
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from datetime import datetime
from pathlib import Path
from typing import Any

from common.errors import ConfigError
from engine import config as engine_config
from engine import runner
from engine.config import Settings
from engine.spec import PipelineSpec
from engine.ticker import Engine
from pipelines.find_items import FIND_ITEMS
from pipelines.pedestrian import PEDESTRIAN

REGISTRY: dict[str, PipelineSpec[Any, Any]] = {
    PEDESTRIAN.name: PEDESTRIAN,
    FIND_ITEMS.name: FIND_ITEMS,
}


def get(name: str) -> PipelineSpec[Any, Any]:
    """The pipeline called ``name``; a :class:`ConfigError` on ``[Pipeline] definition`` otherwise."""
    spec = REGISTRY.get(name)
    if spec is None:
        raise ConfigError("Pipeline", "definition", "one of " + ", ".join(sorted(REGISTRY)), name)
    spec.check()
    return spec


def load_settings(path: Path | str, *, base_dir: Path | None = None) -> Settings[Any]:
    """Read ``toloka.ini`` for the pipeline its ``[Pipeline] definition`` names (all checks included)."""
    return engine_config.load_settings(path, get(engine_config.read_definition(path)), base_dir=base_dir)


def open_engine(
    settings: Settings[Any], *, clock: Callable[[], datetime] = runner.utc_now
) -> AbstractAsyncContextManager[Engine[Any, Any]]:
    """:func:`engine.runner.open_engine` for the pipeline ``settings`` were read for."""
    return runner.open_engine(get(settings.definition), settings, clock=clock)


async def run(settings: Settings[Any], options: runner.RunOptions, *,
              clock: Callable[[], datetime] = runner.utc_now) -> int:
    """:func:`engine.runner.run` for the pipeline ``settings`` were read for."""
    return await runner.run(get(settings.definition), settings, options, clock=clock)
