"""The emulator's own admin API under ``/_emulator/`` (not Toloka's; same auth), the
find_items scenario's public shop pictures under ``/_emulator/catalogue/`` and the control
tasks' photos under ``/_emulator/control/`` (no auth)."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from common.errors import PipelineError

from .api.common import STATE_KEY, body_json, respond
from .api.errors import ApiError
from .faults import FaultConfig
from .operation_timing import OperationTiming

ADMIN_PREFIX = "/_emulator"
#: GET/HEAD under these prefixes need no token (the auth middleware lets them through).
PUBLIC_PREFIXES = (ADMIN_PREFIX + "/catalogue/", ADMIN_PREFIX + "/control/")
routes = web.RouteTableDef()


@routes.post(ADMIN_PREFIX + "/scenario")
async def load_scenario(request: web.Request) -> web.Response:
    """Set up a scenario: ``{"name": "demo"}`` or ``{"scenario": {...}}``, plus ``"crowd_only": true``
    for the crowd without its pools; idempotent."""
    body = await body_json(request)
    if not isinstance(body, dict) or not ({"name", "scenario"} & body.keys()):
        raise ApiError(400, "VALIDATION_ERROR", 'Send {"name": ...} or {"scenario": {...}}')
    state = request.app[STATE_KEY]
    source: Any = body["scenario"] if "scenario" in body else str(body["name"])
    crowd_only = body.get("crowd_only", False)
    if not isinstance(crowd_only, bool):
        raise ApiError(400, "VALIDATION_ERROR", '"crowd_only" must be true or false')
    try:
        result = await state.setup_scenario(source, crowd_only=crowd_only)
    except (PipelineError, ValueError, LookupError, OSError) as exc:
        # ScenarioError (a PipelineError) and file errors carry a text that says what to fix.
        raise ApiError(400, "VALIDATION_ERROR", f"Cannot load the scenario: {exc}") from None
    return respond(result)


@routes.get(ADMIN_PREFIX + "/state")
async def get_state(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    return respond({
        "counts": state.store.counts(),
        "crowd": state.crowd.state() if state.crowd is not None else None,
        "crowd_running": state.crowd_running,
        "faults": state.faults.state(),
        "speed": state.speed,
        "seed": state.seed,
        "operations": state.operation_timing.to_dict(),
    })


@routes.get(ADMIN_PREFIX + "/truth")
async def get_truth(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    if state.crowd is None:
        raise ApiError(409, "NO_SCENARIO", "No scenario is loaded, so there is no ground truth")
    return respond(state.crowd.truth())


@routes.get(ADMIN_PREFIX + "/requests")
async def get_requests(request: web.Request) -> web.Response:
    counts = request.app[STATE_KEY].requests
    return respond({"total": sum(counts.values()), "by_route": dict(sorted(counts.items()))})


@routes.get(ADMIN_PREFIX + "/faults")
async def get_faults(request: web.Request) -> web.Response:
    return respond(request.app[STATE_KEY].faults.config.to_dict())


@routes.put(ADMIN_PREFIX + "/faults")
async def put_faults(request: web.Request) -> web.Response:
    """Replace the fault configuration (keys not given fall back to "no fault")."""
    body = await body_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "Send a JSON object of fault settings")
    try:
        config = FaultConfig.from_dict(body)
    except ValueError as exc:
        raise ApiError(400, "VALIDATION_ERROR", str(exc)) from None
    faults = request.app[STATE_KEY].faults
    faults.set(config)
    return respond(config.to_dict())


@routes.post(ADMIN_PREFIX + "/crowd")
async def set_crowd(request: web.Request) -> web.Response:
    """Pause or resume the simulated crowd: ``{"running": false}``."""
    body = await body_json(request)
    if not isinstance(body, dict) or not isinstance(body.get("running"), bool):
        raise ApiError(400, "VALIDATION_ERROR", 'Send {"running": true|false}')
    state = request.app[STATE_KEY]
    state.crowd_running = body["running"]
    return respond({"running": state.crowd_running})


@routes.put(ADMIN_PREFIX + "/token")
async def put_token(request: web.Request) -> web.Response:
    """Change the accepted token at run time: ``{"token": "..."}`` (a rotation on Toloka's side).

    From the next request on only the new token is accepted; the answer does not repeat it.
    """
    body = await body_json(request)
    token = body.get("token") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token.strip() or token != token.strip():
        raise ApiError(400, "VALIDATION_ERROR", 'Send {"token": "<a non-empty token without spaces around it>"}')
    request.app[STATE_KEY].token = token
    return respond({"changed": True})


@routes.get(ADMIN_PREFIX + "/catalogue/{kind:images|products}/{name}")
async def get_picture(request: web.Request) -> web.Response:
    """A query image or product picture of the find_items scenario's shop, as a JPEG."""
    state = request.app[STATE_KEY]
    name = request.match_info["name"]
    picture = getattr(state.crowd, "picture", None)
    data = None
    if picture is not None and name.endswith(".jpg"):
        data = await picture(request.match_info["kind"], name[: -len(".jpg")])
    if data is None:
        raise ApiError(404, "DOES_NOT_EXIST", f"No such picture: {request.path}")
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400"})


@routes.get(ADMIN_PREFIX + "/control/{name}")
async def get_control_photo(request: web.Request) -> web.Response:
    """A photo of a control task (pedestrian scenarios with ``control``), as a JPEG."""
    state = request.app[STATE_KEY]
    name = request.match_info["name"]
    picture = getattr(state.crowd, "control_picture", None)
    data = None
    if picture is not None and name.endswith(".jpg"):
        data = await picture(name[: -len(".jpg")])
    if data is None:
        raise ApiError(404, "DOES_NOT_EXIST", f"No such photo: {request.path}")
    return web.Response(body=data, content_type="image/jpeg",
                        headers={"Cache-Control": "public, max-age=86400"})


@routes.get(ADMIN_PREFIX + "/operations")
async def get_operation_timing(request: web.Request) -> web.Response:
    return respond(request.app[STATE_KEY].operation_timing.to_dict())


@routes.put(ADMIN_PREFIX + "/operations")
async def put_operation_timing(request: web.Request) -> web.Response:
    """How long async creates show RUNNING: ``{"running_seconds": 0.5, "running_polls": 1}``
    (keys left out: 0; both 0: finished at once). Applies to operations created from now on."""
    body = await body_json(request)
    if not isinstance(body, dict):
        raise ApiError(400, "VALIDATION_ERROR", "Send a JSON object of operation settings")
    try:
        timing = OperationTiming.from_dict(body)
    except ValueError as exc:
        raise ApiError(400, "VALIDATION_ERROR", str(exc)) from None
    state = request.app[STATE_KEY]
    state.operation_timing = timing
    state.operation_timing_explicit = True
    return respond(timing.to_dict())
