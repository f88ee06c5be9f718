"""A tiny HTTP proxy on loopback that can fail requests on purpose and counts concurrency.

Put between a store and moto/Azurite, it shows over real HTTP that the stores retry
transient errors (503) and never have more than ``concurrency`` requests in flight.
Requests are forwarded byte for byte (path, query and headers as sent), so signatures
made for the proxy's address stay valid where the server checks them (Azurite's
Shared Key does not sign the host).
"""

from __future__ import annotations

import asyncio
from types import TracebackType

import aiohttp
from aiohttp import web
from yarl import URL

_HOP_HEADERS = {"host", "content-length", "transfer-encoding", "connection", "keep-alive"}


class FlakyProxy:
    """``async with FlakyProxy(target) as proxy:`` then use ``proxy.url`` instead of ``target``."""

    def __init__(self, target: str, *, delay: float = 0.0) -> None:
        self.target = target.rstrip("/")
        self.delay = delay
        self.url = ""
        self.forwarded = 0
        self.failed = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.seen_headers: list[dict[str, str]] = []
        self._fail_next = 0
        self._fail_status = 503
        self._fail_body = "try again"
        self._fail_headers: dict[str, str] = {}
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None

    def fail_next(
        self, count: int, *, status: int = 503, body: str = "try again", headers: dict[str, str] | None = None
    ) -> None:
        """Answer the next ``count`` requests with ``status`` (503 Service Unavailable), ``body`` and ``headers``."""
        self._fail_next = count
        self._fail_status = status
        self._fail_body = body
        self._fail_headers = dict(headers or {})

    def reset_counts(self) -> None:
        self.forwarded = self.failed = self.max_in_flight = 0

    async def __aenter__(self) -> FlakyProxy:
        self._http = aiohttp.ClientSession(auto_decompress=False)
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._runner is not None and self._http is not None
        await self._runner.cleanup()
        await self._http.close()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            self.seen_headers.append(dict(request.headers))
            body = await request.read()
            await asyncio.sleep(self.delay)
            if self._fail_next > 0:
                self._fail_next -= 1
                self.failed += 1
                content_type = "application/xml" if self._fail_body.startswith("<?xml") else "text/plain"
                return web.Response(
                    status=self._fail_status, text=self._fail_body, content_type=content_type,
                    headers=self._fail_headers,
                )  # fmt: skip
            return await self._forward(request, body)
        finally:
            self.in_flight -= 1

    async def _forward(self, request: web.Request, body: bytes) -> web.Response:
        assert self._http is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_HEADERS}
        url = URL(self.target + request.raw_path, encoded=True)
        async with self._http.request(
            request.method, url, headers=headers, data=body,
            skip_auto_headers={"Content-Type", "Accept-Encoding", "User-Agent", "Accept"}, allow_redirects=False,
        ) as answer:  # fmt: skip
            payload = await answer.read()
            self.forwarded += 1
            out = {k: v for k, v in answer.headers.items() if k.lower() not in _HOP_HEADERS}
            if request.method == "HEAD" and "Content-Length" in answer.headers:
                out["Content-Length"] = answer.headers["Content-Length"]  # the size of the object
                response = web.Response(status=answer.status, headers=out)
                return response
            return web.Response(status=answer.status, body=payload, headers=out)
