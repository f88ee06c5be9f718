"""One-off commands beside the daemon: ``python pipeline.py unrestrict WORKER [--pool NAME]``.

A restriction the daemon set (a checker whose learned accuracy stayed under
``restrict_below``, a pedestrian with repeated "Incorrect object" rejections)
is a decision that hurts a worker, so a person can undo it: this deletes every
restriction of the worker on the pipeline's pools (or the one named) and
writes a row saying so in the decision log. It needs no daemon stop: the
daemon notices a lifted restriction when the worker takes a task again and
judges them afresh from then on.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import datetime
from typing import Any

from common.errors import ConfigError
from common.secrets import read_secret
from engine.config import Settings
from engine.runner import open_tables, utc_now
from engine.spec import PipelineSpec
from toloka_client.client import TolokaClient
from toloka_client.http import HttpSettings


async def unrestrict(
    spec: PipelineSpec[Any, Any],
    settings: Settings[Any],
    worker: str,
    pool: str | None = None,
    *,
    clock: Callable[[], datetime] = utc_now,
) -> list[str]:
    """Lift ``worker``'s restrictions on the pipeline's pools; returns one line per restriction deleted."""
    pools = dict(settings.pools())
    if pool is not None:
        if pool not in pools:
            raise ConfigError("Pipeline", "--pool", f"one of {', '.join(pools)}", pool)
        pools = {pool: pools[pool]}
    token = await asyncio.to_thread(read_secret, settings.secrets.toloka_token)
    tables = open_tables(dict(spec.tables(settings.config)), settings.pipeline.logs_folder,
                         settings.pipeline.results_folder)
    lines: list[str] = []
    http = HttpSettings(total_timeout_s=settings.toloka.timeout_s)
    async with TolokaClient.connect(settings.toloka.base_url, token, http) as client:
        for name, pool_id in pools.items():
            for restriction in await client.find_user_restrictions(user_id=worker, pool_id=pool_id):
                if restriction.id is None:
                    continue
                await client.delete_user_restriction(restriction.id)
                lines.append(f"lifted restriction {restriction.id} of {worker} on pool {name} ({pool_id})")
                if spec.unrestrict_row is not None:
                    row = spec.unrestrict_row(clock(), name, pool_id, worker)
                    table = tables.get(row.table)
                    if table is not None:
                        await asyncio.to_thread(table.append, [dict(r) for r in row.rows])
    return lines
