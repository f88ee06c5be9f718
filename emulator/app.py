"""The emulator application: server, middlewares, background step loop, runners.

``start_emulator`` is an async context manager that serves the API on a free
loopback port; ``EmulatorThread`` runs the same thing in a thread with its own
event loop, for synchronous code (toloka-kit tests, the benchmark). The step
loop reads the clock once per step and passes it down: first
``store.auto_accept_due``, then ``crowd.step``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import os
import threading
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

import aiohttp
from aiohttp import web

from .admin import PUBLIC_PREFIXES
from .admin import routes as admin_routes
from .api.common import STATE_KEY
from .api.errors import ApiError, error_response
from .api.routes import add_api_routes
from .faults import FaultConfig, Faults
from .ids import utcnow
from .operation_timing import OperationTiming
from .store import Store

log = logging.getLogger("emulator")
T = TypeVar("T")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
_SCENARIO_KV = "_emulator_scenario"


class EmulatorState:
    """Everything one running emulator owns; also what ``start_emulator`` yields."""

    def __init__(self, store: Store, *, token: str, seed: int, speed: float,
                 faults: FaultConfig, operations: OperationTiming | None = None) -> None:
        self.store = store
        # How long async creates show RUNNING; explicit settings win over a scenario's "api".
        self.operation_timing = operations or OperationTiming()
        self.operation_timing_explicit = operations is not None
        self.token = token
        self.seed = seed
        self.speed = speed
        self.faults = Faults(seed, faults, on_change=self._apply_faults)
        self.requests: Counter[str] = Counter()
        self.crowd: Any = None
        self.crowd_running = True
        self.setup_result: dict[str, Any] | None = None
        self.scenario: Any = None
        self.url = ""
        self.http: aiohttp.ClientSession | None = None

    def _apply_faults(self, config: FaultConfig) -> None:
        # New submissions are hidden from searches for this long (late visibility).
        self.store.default_visibility_delay = timedelta(seconds=config.visibility_delay_seconds)

    async def setup_scenario(self, source: str | dict[str, Any], *, crowd_only: bool = False) -> dict[str, Any]:
        """Load a scenario (name, file path or parsed document) and set up the crowd.

        ``crowd_only`` (pedestrian scenarios): only the workers and the organizations' truth;
        the crowd works in the pools a requester makes and opens (emulator/crowd/adopt.py).

        The crowd is imported lazily, so the API runs without it when no scenario
        is asked for. The scenario's ``kind`` picks the crowd (``Crowd`` for pedestrian,
        ``FindItemsCrowd`` for find_items). ``setup`` is idempotent: a scenario already in
        the store is not created twice, and a store holding another scenario is refused.
        """
        from .crowd import scenario as scenario_mod  # lazy: the crowd is optional
        from .crowd.simulator import Crowd

        if isinstance(source, dict):
            scenario = scenario_mod.parse_scenario(source)
        else:
            scenario = scenario_mod.load_scenario_file(source)
        if isinstance(scenario, scenario_mod.Scenario):
            if self.crowd is None:
                assert self.http is not None
                self.crowd = Crowd(self.store, seed=self.seed, speed=self.speed, http=self.http, base_url=self.url)
            crowd = self.crowd
            if not isinstance(crowd, Crowd):   # the store holds a find_items scenario: setup refuses
                assert self.http is not None
                crowd = Crowd(self.store, seed=self.seed, speed=self.speed, http=self.http, base_url=self.url)
            result = await crowd.setup(scenario, utcnow(), crowd_only=crowd_only)
            if scenario.api is not None and not self.operation_timing_explicit:
                self.operation_timing = OperationTiming(scenario.api.operation_running_seconds,
                                                        scenario.api.operation_running_polls)
        else:
            if crowd_only:
                raise scenario_mod.ScenarioError("kind", "a pedestrian scenario (--crowd-only)", scenario.kind)
            from .crowd.find_items import FindItemsCrowd

            finding = self.crowd if isinstance(self.crowd, FindItemsCrowd) else \
                FindItemsCrowd(self.store, seed=self.seed, speed=self.speed, base_url=self.url)
            result = await finding.setup(scenario, utcnow())
            self.crowd = finding
        self.scenario = scenario
        self.setup_result = result
        # A restart may run from another folder. One stat of the file load_scenario_file just read;
        # setup is synchronous store work on the loop by design (the store is single-threaded).
        if isinstance(source, str) and os.path.exists(source):  # noqa: ASYNC240 - see above
            source = os.path.abspath(source)  # noqa: ASYNC240 - see above
        self.store.kv_set(_SCENARIO_KV, {"source": source, "crowd_only": crowd_only})
        return result

    async def step(self, now: datetime) -> None:
        """One background step: auto-accept due work, then let the crowd act."""
        self.store.auto_accept_due(now, self.speed)
        if self.crowd is not None and self.crowd_running:
            await self.crowd.step(now)


def _route_name(request: web.Request) -> str:
    info = request.match_info
    resource = info.route.resource if info is not None and info.route is not None else None
    pattern = resource.canonical if resource is not None else "<unmatched>"
    return f"{request.method} {pattern}"


def build_app(state: EmulatorState) -> web.Application:
    """The aiohttp application: logging, faults, JSON errors and auth around the routes."""

    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        state.requests[_route_name(request)] += 1
        return await handler(request)

    @web.middleware
    async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except ApiError as exc:
            return error_response(exc.status, exc.code, exc.message, exc.payload)
        except web.HTTPNotFound:
            return error_response(404, "DOES_NOT_EXIST", f"No such resource: {request.path}")
        except web.HTTPMethodNotAllowed:
            return error_response(405, "METHOD_NOT_ALLOWED",
                                  f"{request.method} is not allowed on {request.path}")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return error_response(exc.status, "HTTP_ERROR", exc.reason)
        except Exception:   # a bug: answer like Toloka would, keep serving
            log.exception("unhandled error on %s %s", request.method, request.path)
            return error_response(500, "INTERNAL_ERROR", "Internal error")

    @web.middleware
    async def auth(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method in ("GET", "HEAD") and request.path.startswith(PUBLIC_PREFIXES):
            return await handler(request)   # shop pictures and control photos: public, like image links
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme not in ("OAuth", "ApiKey") or token.strip() != state.token:
            raise ApiError(401, "AUTHENTICATION_ERROR", "Missing or wrong OAuth/ApiKey token")
        return await handler(request)

    app = web.Application(
        middlewares=[count_requests, state.faults.middleware(), json_errors, auth],
        client_max_size=256 * 1024 * 1024,
    )
    app[STATE_KEY] = state
    add_api_routes(app)
    app.router.add_routes(admin_routes)
    return app


async def _step_loop(state: EmulatorState, step_seconds: float) -> None:
    while True:
        try:
            await state.step(utcnow())
        except asyncio.CancelledError:
            raise
        except Exception:   # one bad step must not stop the simulation
            log.exception("emulator step failed")
        await asyncio.sleep(step_seconds)


@contextlib.asynccontextmanager
async def start_emulator(
    db_path: str | os.PathLike[str],
    *,
    token: str = "TOKEN",
    host: str = "127.0.0.1",
    port: int = 0,
    seed: int = 0,
    speed: float = 1.0,
    scenario: str | None = None,
    step_seconds: float = 0.2,
    faults: dict[str, Any] | FaultConfig | None = None,
    operations: dict[str, Any] | OperationTiming | None = None,
    crowd_only: bool = False,
) -> AsyncIterator[EmulatorState]:
    """Serve the emulator until the block exits; yields the state (``emu.url``, ``emu.store``).

    If the database already holds a scenario (an earlier run), the crowd is set
    up again from it (idempotently) so the simulation resumes. ``operations``
    (``{"running_seconds", "running_polls"}``) makes async creates show RUNNING for a
    while (:mod:`emulator.operation_timing`); without it they finish at once, unless the
    scenario's ``api`` section says otherwise. ``crowd_only``: the scenario's crowd without its
    projects, pools and tasks (see :meth:`EmulatorState.setup_scenario`); a restart keeps the mode.
    """
    config = faults if isinstance(faults, FaultConfig) else FaultConfig.from_dict(faults or {})
    timing = operations if isinstance(operations, OperationTiming) or operations is None \
        else OperationTiming.from_dict(operations)
    store = Store(db_path)
    state = EmulatorState(store, token=token, seed=seed, speed=speed, faults=config, operations=timing)
    runner = web.AppRunner(build_app(state), access_log=None, handle_signals=False)
    loop_task: asyncio.Task[None] | None = None
    try:
        state.http = aiohttp.ClientSession()
        await runner.setup()
        site = web.TCPSite(runner, host, port)
        await site.start()
        bound = runner.addresses[0]
        state.url = f"http://{bound[0]}:{bound[1]}"
        previous = store.kv_get(_SCENARIO_KV)
        if scenario is not None:
            await state.setup_scenario(scenario, crowd_only=crowd_only)
        elif previous is not None:
            await state.setup_scenario(previous["source"], crowd_only=bool(previous.get("crowd_only")))
        loop_task = asyncio.create_task(_step_loop(state, step_seconds), name="emulator-steps")
        yield state
    finally:
        if loop_task is not None:
            loop_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await loop_task
        await runner.cleanup()
        if state.http is not None:
            await state.http.close()
        store.close()


class EmulatorThread:
    """Run ``start_emulator`` in a background thread with its own event loop.

    ``with EmulatorThread(db) as emu: emu.url`` serves until the block ends.
    ``emu.call(fn, *args)`` runs ``fn`` on the emulator's loop thread (the store
    is single-threaded) and returns its result.
    """

    def __init__(self, db_path: str | os.PathLike[str], **options: Any) -> None:
        self._db_path = db_path
        self._options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self.state: EmulatorState | None = None

    @property
    def url(self) -> str:
        assert self.state is not None
        return self.state.url

    @property
    def store(self) -> Store:
        assert self.state is not None
        return self.state.store

    def __enter__(self) -> EmulatorThread:
        self._thread = threading.Thread(target=self._run, name="toloka-emulator", daemon=True)
        self._thread.start()
        self._ready.wait(timeout=60)
        if self._error is not None:
            raise self._error
        if self.state is None:
            raise RuntimeError("the emulator thread did not start within 60 s")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        if self._thread is not None:
            self._thread.join(timeout=60)

    def _run(self) -> None:
        async def main() -> None:
            self._stop = asyncio.Event()
            self._loop = asyncio.get_running_loop()
            async with start_emulator(self._db_path, **self._options) as state:
                self.state = state
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced to the thread that called __enter__
            self._error = exc
        finally:
            self._ready.set()

    def call(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the emulator's loop and return the result."""
        assert self._loop is not None

        async def run() -> T:
            return fn(*args, **kwargs)

        future: concurrent.futures.Future[T] = asyncio.run_coroutine_threadsafe(run(), self._loop)
        return future.result(timeout=120)
