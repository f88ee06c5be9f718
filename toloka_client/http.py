"""The HTTP layer: one aiohttp session, authentication, JSON, retries.

Everything above this module speaks in paths and JSON documents; everything
aiohttp-specific (exceptions, timeouts, streaming) stays here and is turned
into :mod:`toloka_client.errors` at this boundary.

Retry rules (toloka-api.md section 4, with toloka-kit's bugs left out): an
error is retried only if it is ``retryable`` (:mod:`toloka_client.errors`: 408,
429, 5xx and transport failures), and then only if repeating it is safe. 429 is
always retried (the request was not applied); 408, 5xx and transport failures
are retried for reads, and for writes only when the caller says the write is
safe to repeat (creates carry an ``operation_id``; status PATCHes are checked
after a conflict). A refused connection is always retried, since nothing was
sent. Waits follow :mod:`toloka_client.retry` and go through an injectable
``sleep`` so tests do not wait for real minutes.

A rotated token needs no restart: given ``reread_token`` (a blocking read of
the keyring, run in a thread), a 401 makes the transport read the token once
more and, if it changed, send the same request again with the new one (a 401
means nothing was applied, so even a write may be sent again). An unchanged
token lets the 401 surface as before.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any, TypeVar

import aiohttp

from common.errors import ConfigError, PipelineError
from common.secrets import Secret
from toloka_client import jsonio
from toloka_client.errors import (
    AttachmentTooLarge,
    AuthenticationError,
    TolokaError,
    TooManyRequests,
    TransportError,
    UnexpectedResponse,
    error_from_response,
)
from toloka_client.retry import RetryPolicy, parse_retry_after, retry_delay
from toloka_client.timefmt import format_datetime

log = logging.getLogger(__name__)

T = TypeVar("T")

ENVIRONMENTS = {"PRODUCTION": "https://toloka.dev", "SANDBOX": "https://sandbox.toloka.dev"}
API_PREFIX = "/api/v1"
_SAFE_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_CHUNK = 64 * 1024

Sleep = Callable[[float], Awaitable[None]]
#: Reads the current token again (blocking: the keyring may read a file), e.g. ``lambda: read_secret(entry)``.
TokenSource = Callable[[], Secret]


def resolve_base_url(environment: str) -> str:
    """``PRODUCTION``/``SANDBOX`` to Toloka's hosts; an http(s) URL is used as given."""
    value = environment.strip()
    if value.upper() in ENVIRONMENTS:
        return ENVIRONMENTS[value.upper()]
    if value.startswith(("http://", "https://")) and len(value) > len("https://"):
        return value.rstrip("/")
    raise ConfigError("Toloka", "environment", "PRODUCTION, SANDBOX or an http(s):// URL", environment)


def is_api_key(token: str) -> bool:
    """Toloka API keys look like ``<22-24 chars>.<...>.<...>``; anything else is OAuth."""
    return token.count(".") == 2 and 22 <= token.index(".") <= 24


def auth_header(token: Secret) -> str:
    """The ``Authorization`` value; the only place the token is revealed."""
    value = token.reveal()
    return f"{'ApiKey' if is_api_key(value) else 'OAuth'} {value}"


def query_value(value: Any) -> str:
    """One query parameter as the API wants it (booleans lower-case, lists comma-joined)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return format_datetime(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(query_value(v) for v in value)
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def build_query(params: Mapping[str, Any] | None) -> dict[str, str]:
    """Drop ``None`` values and format the rest."""
    return {k: query_value(v) for k, v in (params or {}).items() if v is not None}


@dataclass(frozen=True)
class HttpSettings:
    """Timeouts and retry policy of the transport (from ``[Toloka]`` in toloka.ini)."""

    connect_timeout_s: float = 10.0
    total_timeout_s: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    # Connections kept open to Toloka; the daemon's concurrency is bounded elsewhere.
    max_connections: int = 16


@dataclass(frozen=True)
class Response:
    """A successful answer: status and parsed JSON (None for an empty body)."""

    status: int
    data: Any


class _Retry(Exception):
    """Internal: an attempt failed with a ``retryable`` error; carries what the retry needs."""

    def __init__(self, error: TolokaError, *, applied_possible: bool,
                 retry_after_s: float | None = None, quota_interval: str | None = None) -> None:
        super().__init__(str(error))
        self.error = error
        self.applied_possible = applied_possible
        self.retry_after_s = retry_after_s
        self.quota_interval = quota_interval


class TolokaHttp:
    """One long-lived aiohttp session to one Toloka base URL.

    Create it inside the running event loop (``async with TolokaHttp(...)``) and
    keep it for the life of the daemon. The token is held as a
    :class:`~common.secrets.Secret` and only revealed per request;
    ``reread_token`` (optional) fetches it again after a 401.
    """

    def __init__(
        self,
        base_url: str,
        token: Secret,
        settings: HttpSettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        reread_token: TokenSource | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._token = token
        self._reread_token = reread_token
        # Bumped at each token change: a request refused with an older token just tries the new one.
        self._token_generation = 0
        self._token_lock = asyncio.Lock()
        self.settings = settings or HttpSettings()
        self._sleep = sleep
        self._rand = rand
        self._session: aiohttp.ClientSession | None = None
        # Counters for the status page and the benchmark.
        self.requests_sent = 0
        self.retries = 0
        self.token_changes = 0

    def __repr__(self) -> str:
        return f"TolokaHttp({self.base_url!r})"

    def __reduce__(self) -> Any:
        raise TypeError("TolokaHttp holds a session and a secret; it must not be pickled")

    async def __aenter__(self) -> TolokaHttp:
        self._ensure_session()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Close the session (idempotent)."""
        if self._session is not None and not self._session.closed:
            await self._session.close()
        self._session = None

    def _ensure_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            timeout = aiohttp.ClientTimeout(
                total=self.settings.total_timeout_s,
                sock_connect=self.settings.connect_timeout_s,
                connect=self.settings.connect_timeout_s,
            )
            connector = aiohttp.TCPConnector(limit=self.settings.max_connections)
            # No default headers: the token is added per request, never stored in the session.
            self._session = aiohttp.ClientSession(timeout=timeout, connector=connector)
        return self._session

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        retry_writes: bool = False,
    ) -> Response:
        """Send ``method {base}/api/v1{path}`` with retries; the parsed JSON answer.

        ``retry_writes`` marks a POST/PATCH as safe to repeat after a failure that
        may have been applied (the caller handles the conflict a repeat causes).
        """
        data = jsonio.dumps(body).encode() if body is not None else None

        async def attempt() -> Response:
            status, raw = await self._once(method, path, params, data, max_bytes=None)
            if not raw.strip():
                return Response(status, None)
            try:
                return Response(status, jsonio.loads(raw))
            except ValueError:
                raise UnexpectedResponse(method, path, status, None, "the answer is not JSON") from None

        return await self._with_retries(method, path, attempt, retry_writes=retry_writes)

    async def download(self, path: str, *, max_bytes: int) -> bytes:
        """GET raw bytes, streamed; :class:`AttachmentTooLarge` past ``max_bytes``."""

        async def attempt() -> bytes:
            _, raw = await self._once("GET", path, None, None, max_bytes=max_bytes)
            return raw

        return await self._with_retries("GET", path, attempt, retry_writes=False)

    async def _with_retries(self, method: str, path: str, attempt: Callable[[], Awaitable[T]],
                            *, retry_writes: bool) -> T:
        policy = self.settings.retry
        slept = 0.0
        for number in range(1, policy.max_attempts + 1):
            try:
                return await self._authenticated(method, path, attempt)
            except _Retry as failure:
                error = failure.error
                may_repeat = (not failure.applied_possible) or method in _SAFE_METHODS or retry_writes
                if not may_repeat or number >= policy.max_attempts:
                    raise error from None
                delay = retry_delay(policy, number, retry_after_s=failure.retry_after_s,
                                    quota_interval=failure.quota_interval, rand=self._rand)
                if slept + delay > policy.budget_s:
                    log.warning("Toloka %s %s: giving up, the retry budget of %.0f s is spent (%s)",
                                method, path, policy.budget_s, error)
                    raise error from None
                log.warning("Toloka %s %s failed (%s); retry %d in %.1f s",
                            method, path, error, number, delay)
                self.retries += 1
                await self._sleep(delay)
                slept += delay
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    async def _authenticated(self, method: str, path: str, attempt: Callable[[], Awaitable[T]]) -> T:
        """One attempt; after a 401, once more if the token was changed in the meantime."""
        generation = self._token_generation
        try:
            return await attempt()
        except AuthenticationError:
            if not await self._newer_token(generation, method, path):
                raise
        return await attempt()

    async def _newer_token(self, generation: int, method: str, path: str) -> bool:
        """After a 401 with the token of ``generation``: is there another token to try?

        Reads the token source once per refusal wave (concurrent requests refused
        together wait for the first one's read); False when there is no source,
        it cannot be read, or it gives the same token.
        """
        if self._reread_token is None:
            return False
        async with self._token_lock:
            if self._token_generation != generation:
                return True  # another request has read a new token meanwhile
            try:
                fresh = await asyncio.to_thread(self._reread_token)
            except PipelineError as exc:
                log.warning("Toloka %s %s: the token was refused and could not be read again: %s",
                            method, path, exc)
                return False
            if fresh == self._token:
                return False
            self._token = fresh
            self._token_generation += 1
            self.token_changes += 1
        log.warning("Toloka %s %s: the token was refused; a changed token was read from the keyring, "
                    "using it from now on", method, path)
        return True

    async def _once(self, method: str, path: str, params: Mapping[str, Any] | None,
                    data: bytes | None, *, max_bytes: int | None) -> tuple[int, bytes]:
        """One attempt: (status, body) for 2xx; raises TolokaError or _Retry otherwise."""
        session = self._ensure_session()
        headers = {"Authorization": auth_header(self._token), "Accept": "application/json"}
        if data is not None:
            headers["Content-Type"] = "application/json"
        url = f"{self.base_url}{API_PREFIX}{path}"
        started = time.monotonic()
        self.requests_sent += 1
        try:
            async with session.request(method, url, params=build_query(params), data=data,
                                       headers=headers) as resp:
                status = resp.status
                if 200 <= status < 300 and max_bytes is not None:
                    raw = await _read_limited(resp, method, path, max_bytes)
                else:
                    raw = await resp.read()
                retry_after = resp.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as exc:
            # Nothing reached the server: always safe to try again.
            raise _Retry(_transport(method, path, exc), applied_possible=False) from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise _Retry(_transport(method, path, exc), applied_possible=True) from None
        log.debug("Toloka %s %s -> %d in %.3f s", method, path, status, time.monotonic() - started)
        if 200 <= status < 300:
            return status, raw
        error = error_from_response(method, path, status, raw)
        if not error.retryable:
            raise error
        if status == 429:
            interval = error.interval if isinstance(error, TooManyRequests) else None
            raise _Retry(error, applied_possible=False, retry_after_s=parse_retry_after(retry_after),
                         quota_interval=interval)
        raise _Retry(error, applied_possible=True, retry_after_s=parse_retry_after(retry_after))


def _transport(method: str, path: str, exc: BaseException) -> TransportError:
    # The aiohttp exception text names host and port at most, never headers;
    # it is not chained, so no request_info (which holds headers) travels along.
    detail = str(exc) or type(exc).__name__
    return TransportError(method, path, None, type(exc).__name__, detail)


async def _read_limited(resp: aiohttp.ClientResponse, method: str, path: str, max_bytes: int) -> bytes:
    """Read a body but stop (and drop the connection) once it passes ``max_bytes``."""
    declared = resp.content_length
    if declared is not None and declared > max_bytes:
        resp.close()
        raise AttachmentTooLarge(method, path, resp.status, None,
                                 f"{declared} bytes announced, the limit is {max_bytes}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(_CHUNK):
        size += len(chunk)
        if size > max_bytes:
            resp.close()
            raise AttachmentTooLarge(method, path, resp.status, None,
                                     f"more than {max_bytes} bytes received, the limit is {max_bytes}")
        chunks.append(chunk)
    return b"".join(chunks)
