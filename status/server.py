"""The status server: ``/`` (page), ``/status`` (JSON), ``/metrics`` (Prometheus), ``/health``, on aiohttp.

It runs on the daemon's event loop, so every request sees the state between
two awaits of the tick, and takes its snapshot without blocking. It binds to
``[Status] host`` (127.0.0.1 unless told otherwise); when a token is
configured (required for any other address) every request must carry it as
``Authorization: Bearer <token>`` or, for a browser, ``?token=<token>``. The
comparison is constant-time, and no access log is written, so the token never
reaches a log file.
"""

from __future__ import annotations

import contextlib
import hmac
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from common.errors import PipelineError
from common.secrets import Secret
from status.page import render_page
from status.prometheus import CONTENT_TYPE, render
from status.settings import StatusSettings

log = logging.getLogger("pipeline.status")

# Nothing but this server: no other origin for scripts, styles, images or fetches.
_CSP = ("default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# The daemon's state as JSON-ready data, taken on the event loop between two awaits of the tick.
Snapshot = Callable[[], dict[str, Any]]


class StatusServerError(PipelineError):
    """The status server cannot start (the message names host and port)."""


@dataclass(frozen=True)
class StatusServer:
    """A running server: where it listens."""

    host: str
    port: int

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"


def build_app(snapshot: Snapshot, settings: StatusSettings, token: Secret | None) -> web.Application:
    """The aiohttp application (separate from binding, so it can be inspected on its own)."""
    expected = token.reveal().encode() if token is not None else None

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        if expected is not None and not _authorized(request, expected):
            return web.json_response({"error": "a token is required (Authorization: Bearer ...)"}, status=401,
                                     headers={"WWW-Authenticate": 'Bearer realm="pipeline"'})
        response = await handler(request)
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Security-Policy"] = _CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "no-referrer"
        return response

    page = render_page(settings.refresh_seconds)

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html", charset="utf-8")

    async def status(request: web.Request) -> web.Response:
        return web.Response(text=json.dumps(snapshot(), ensure_ascii=False), content_type="application/json")

    async def health(request: web.Request) -> web.Response:
        """For ``curl -f``: 200 while the daemon ticks (or is starting), 503 once it is stale."""
        picture = snapshot()
        last = picture.get("last_tick") or {}
        body = {key: picture.get(key) for key in ("health", "stale", "now", "stale_after_seconds")}
        body["last_tick"] = last.get("at")
        return web.json_response(body, status=503 if picture.get("stale") else 200)

    async def metrics(request: web.Request) -> web.Response:
        body = render(snapshot())
        return web.Response(body=body.encode("utf-8"), headers={"Content-Type": CONTENT_TYPE})

    app = web.Application(middlewares=[guard])
    app.router.add_get("/", index)
    app.router.add_get("/status", status)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    return app


def _authorized(request: web.Request, expected: bytes) -> bool:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    given = value.strip() if scheme.lower() == "bearer" else request.query.get("token", "")
    # compare_digest takes the same time wherever the first difference is.
    return hmac.compare_digest(given.encode(), expected)


@contextlib.asynccontextmanager
async def serve_status(
    snapshot: Snapshot, settings: StatusSettings, token: Secret | None
) -> AsyncIterator[StatusServer]:
    """Serve ``snapshot()`` as a page, JSON and metrics until the block ends."""
    if not settings.loopback and token is None:
        raise StatusServerError(f"[Status] host {settings.host} is reachable from other machines: set [Status] token")
    runner = web.AppRunner(build_app(snapshot, settings, token), access_log=None, handle_signals=False)
    await runner.setup()
    try:
        site = web.TCPSite(runner, settings.host, settings.port, reuse_address=True)
        try:
            await site.start()
        except OSError as exc:
            raise StatusServerError(
                f"[Status] cannot listen on {settings.host} port {settings.port}: {exc.strerror or exc}"
            ) from None
        port = int(runner.addresses[0][1]) if runner.addresses else settings.port  # port 0: the one chosen
        server = StatusServer(settings.host, port)
        log.info("status page at %s (JSON at status, Prometheus at metrics)%s", server.url,
                 "; a token is required" if token is not None else "")
        yield server
    finally:
        await runner.cleanup()

