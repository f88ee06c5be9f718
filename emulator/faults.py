"""Fault injection for the emulated API, as aiohttp middleware.

Faults make the pipeline's resilience testable: rate limits (429 with and
without ``Retry-After``, and with ``payload.interval``), 5xx answers with JSON
or empty bodies, slow answers, a connection dropped *after* a write was applied
(so idempotency is exercised), and late visibility of submitted assignments
(so cursor lag is exercised). Faults touch only ``/api/v1`` (never the admin
API), optionally only under a narrower path prefix, and every decision comes
from one ``random.Random`` seeded with the emulator seed, so a run with the same
seed and the same request sequence injects the same faults.
"""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import asdict, dataclass, fields
from datetime import timedelta
from decimal import Decimal
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .api.errors import error_response

API_PREFIX = "/api/v1"
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH"})
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class FaultConfig:
    """Rates are probabilities per request (0..1); the error rates are exclusive slices."""

    rate_429: float = 0.0                  # 429 TOO_MANY_REQUESTS, no Retry-After, no payload
    rate_429_retry_after: float = 0.0      # 429 with a Retry-After header
    retry_after_seconds: int = 1
    rate_429_interval: float = 0.0         # 429 with payload {"interval": interval}
    interval: str = "MIN"                  # MIN | HOUR | DAY
    rate_500: float = 0.0                  # 500 INTERNAL_ERROR (JSON)
    rate_503: float = 0.0                  # 503 REMOTE_SERVICE_UNAVAILABLE (JSON)
    rate_500_empty: float = 0.0            # 500 with an empty body
    latency_seconds: float = 0.0           # extra delay ...
    latency_rate: float = 0.0              # ... on this share of requests
    drop_after_write_rate: float = 0.0     # POST/PUT/PATCH applied, then connection closed
    visibility_delay_seconds: float = 0.0  # submitted assignments hidden from searches this long
    path_prefix: str = API_PREFIX          # faults only for paths under this prefix

    _RATES = ("rate_429", "rate_429_retry_after", "rate_429_interval", "rate_500", "rate_503",
              "rate_500_empty", "latency_rate", "drop_after_write_rate")

    @classmethod
    def from_dict(cls, doc: dict[str, Any], base: FaultConfig | None = None) -> FaultConfig:
        """Merge ``doc`` into ``base`` (or the defaults); ValueError names a bad key."""
        known = {f.name: f for f in fields(cls)}
        values = asdict(base or cls())
        for key, value in doc.items():
            if key not in known:
                raise ValueError(f"unknown fault setting {key!r}; known: {sorted(known)}")
            if key in ("interval", "path_prefix"):
                if not isinstance(value, str):
                    raise ValueError(f"{key} must be a string")
            elif key == "retry_after_seconds":
                if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                    raise ValueError("retry_after_seconds must be a non-negative integer")
            else:
                if isinstance(value, bool) or not isinstance(value, (int, float, Decimal)):
                    raise ValueError(f"{key} must be a number")
                value = float(value)
                if value < 0 or (key in cls._RATES and value > 1):
                    raise ValueError(f"{key} must be within {'0..1' if key in cls._RATES else '>= 0'}")
            values[key] = value
        config = cls(**values)
        if not config.path_prefix.startswith(API_PREFIX):
            raise ValueError(f"path_prefix must start with {API_PREFIX}")
        error_total = (config.rate_429 + config.rate_429_retry_after + config.rate_429_interval
                       + config.rate_500 + config.rate_503 + config.rate_500_empty)
        if error_total > 1.0 + 1e-9:
            raise ValueError("the error rates add up to more than 1")
        return config

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Faults:
    """The live fault configuration, its seeded RNG and the injected-fault counters."""

    def __init__(self, seed: int, config: FaultConfig | None = None,
                 on_change: Callable[[FaultConfig], None] | None = None) -> None:
        self.rng = random.Random(seed)
        self.injected: Counter[str] = Counter()
        self._on_change = on_change
        self.config = FaultConfig()
        self.set(config or FaultConfig())

    def set(self, config: FaultConfig) -> None:
        self.config = config
        if self._on_change is not None:
            self._on_change(config)

    def visibility_delay(self) -> timedelta:
        return timedelta(seconds=self.config.visibility_delay_seconds)

    def state(self) -> dict[str, Any]:
        return {"config": self.config.to_dict(), "injected": dict(sorted(self.injected.items())),
                "injected_total": sum(self.injected.values())}

    def _error(self, draw: float) -> web.Response | None:
        """Map one uniform draw onto the exclusive error slices."""
        c = self.config
        edge = 0.0
        slices: list[tuple[float, str]] = [
            (c.rate_429, "429"), (c.rate_429_retry_after, "429_retry_after"),
            (c.rate_429_interval, "429_interval"), (c.rate_500, "500"), (c.rate_503, "503"),
            (c.rate_500_empty, "500_empty"),
        ]
        for rate, kind in slices:
            edge += rate
            if draw < edge:
                self.injected[kind] += 1
                return self._response(kind)
        return None

    def _response(self, kind: str) -> web.Response:
        c = self.config
        if kind == "429":
            return error_response(429, "TOO_MANY_REQUESTS", "Too many requests (injected)")
        if kind == "429_retry_after":
            return error_response(429, "TOO_MANY_REQUESTS", "Too many requests (injected)",
                                  headers={"Retry-After": str(c.retry_after_seconds)})
        if kind == "429_interval":
            return error_response(429, "TOO_MANY_REQUESTS", "Quota exceeded (injected)",
                                  {"interval": c.interval})
        if kind == "500":
            return error_response(500, "INTERNAL_ERROR", "Internal error (injected)")
        if kind == "503":
            return error_response(503, "REMOTE_SERVICE_UNAVAILABLE",
                                  "Service unavailable (injected)")
        return web.Response(status=500, body=b"")

    def middleware(self) -> Middleware:
        """The aiohttp middleware; it must sit outside the error-to-JSON middleware."""

        @web.middleware
        async def faults_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
            c = self.config
            if not request.path.startswith(API_PREFIX) or not request.path.startswith(c.path_prefix):
                return await handler(request)
            # Three draws per request whatever the settings, so one seed gives one sequence.
            latency_draw, error_draw, drop_draw = (self.rng.random() for _ in range(3))
            if c.latency_seconds > 0 and latency_draw < c.latency_rate:
                self.injected["latency"] += 1
                await asyncio.sleep(c.latency_seconds)
            injected = self._error(error_draw)
            if injected is not None:
                return injected
            if request.method in WRITE_METHODS and drop_draw < c.drop_after_write_rate:
                response = await handler(request)       # the write is applied ...
                self.injected["drop_after_write"] += 1
                _drop_connection(request)                # ... and the answer is lost
                return response
            return await handler(request)

        return faults_middleware


def _drop_connection(request: web.Request) -> None:
    """Close the socket so the client sees a disconnect instead of the response."""
    transport = request.transport
    if transport is not None:
        transport.abort()
