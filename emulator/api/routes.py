"""Mount every Toloka route module under ``/api/v1``."""

from __future__ import annotations

from aiohttp import web

from . import assignments, bonuses, pools, restrictions, tasks

API_PREFIX = "/api/v1"


def add_api_routes(app: web.Application) -> None:
    """Register every Toloka route on the app.

    ``restrictions`` owns ``/user-restrictions``; the older copies of those routes still in
    ``bonuses`` are skipped (aiohttp refuses a second handler for one method and path).
    """
    owned = {(route.method, route.path) for route in restrictions.routes if isinstance(route, web.RouteDef)}
    for module in (pools, tasks, assignments, restrictions, bonuses):
        for route in module.routes:
            if module is not restrictions and (route.method, route.path) in owned:
                continue
            app.router.add_route(route.method, API_PREFIX + route.path, route.handler)
