"""Mount every Toloka route module under ``/api/v1``."""

from __future__ import annotations

from aiohttp import web

from . import assignments, bonuses, pools, restrictions, tasks

API_PREFIX = "/api/v1"


def add_api_routes(app: web.Application) -> None:
    """Register every Toloka route on the app."""
    for module in (pools, tasks, assignments, restrictions, bonuses):
        for route in module.routes:
            app.router.add_route(route.method, API_PREFIX + route.path, route.handler)
