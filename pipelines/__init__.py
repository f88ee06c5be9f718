"""The pipelines this daemon can run, by the name ``[Pipeline] definition`` uses.

Each is a :class:`~engine.spec.PipelineSpec` value. Adding one means adding a
module here and its line to :data:`REGISTRY`; nothing in ``engine/``,
``status/`` or ``reporting/`` changes (docs/engine.md walks through it).
"""

from __future__ import annotations

import importlib
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

#: Each pipeline's spec as ``module:name``, imported when its name is asked for: a daemon loads the code of
#: the pipeline it runs, not of every pipeline there is.
REGISTRY: dict[str, str] = {
    "pedestrian": "pipelines.pedestrian:PEDESTRIAN",
    "find_items": "pipelines.find_items:FIND_ITEMS",
}


def get(name: str) -> PipelineSpec[Any, Any]:
    """The pipeline called ``name``; a :class:`ConfigError` on ``[Pipeline] definition`` otherwise."""
    where = REGISTRY.get(name)
    if where is None:
        raise ConfigError("Pipeline", "definition", "one of " + ", ".join(sorted(REGISTRY)), name)
    module, attribute = where.split(":")
    spec: PipelineSpec[Any, Any] = getattr(importlib.import_module(module), attribute)
    if spec.name != name:
        raise AssertionError(f"pipelines.REGISTRY[{name!r}] names the pipeline {spec.name!r}")
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
