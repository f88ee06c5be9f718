"""Small helpers shared by the route modules: state access, JSON I/O, query flags."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

from ..ids import utcnow
from ..search import Resource, parse_query, run
from ..store import Store, json_dumps, json_loads
from .errors import ApiError, field_error, validation

if TYPE_CHECKING:
    from ..app import EmulatorState

STATE_KEY: web.AppKey[EmulatorState] = web.AppKey("emulator_state")


def state(request: web.Request) -> EmulatorState:
    return request.app[STATE_KEY]


def store(request: web.Request) -> Store:
    return request.app[STATE_KEY].store


def now() -> datetime:
    """The request's clock reading (the one place handlers read time)."""
    return utcnow()


def respond(doc: Any, status: int = 200) -> web.Response:
    return web.Response(status=status, text=json_dumps(doc), content_type="application/json")


def empty(status: int = 204) -> web.Response:
    return web.Response(status=status)


async def body_json(request: web.Request) -> Any:
    """Parse the request body as JSON (floats as Decimal); 400 if it is not JSON."""
    raw = await request.read()
    if not raw:
        return None
    try:
        return json_loads(raw)
    except ValueError:
        raise ApiError(400, "VALIDATION_ERROR", "Request body is not valid JSON") from None


def flag(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter sent as ``true``/``false``."""
    raw = request.query.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise validation({name: field_error("VALUE_NOT_ALLOWED", f"Expected true or false, got {raw!r}")})


def operation_id_param(request: web.Request) -> str | None:
    """The ``operation_id`` idempotency key, checked to be a UUID."""
    raw = request.query.get("operation_id")
    if raw is None or raw == "":
        return None
    try:
        return str(uuid.UUID(raw))
    except ValueError:
        raise validation({"operation_id": field_error("VALUE_NOT_ALLOWED",
                                                      "operation_id must be a UUID")}) from None


def search_response(request: web.Request, resource: Resource, docs: list[dict[str, Any]]) -> web.Response:
    """Plain search over a list of documents (small collections)."""
    query = parse_query(request.query, resource)
    items, has_more = run(query, docs)
    return respond({"items": items, "has_more": has_more})


def make_operation(op_type: str, when: datetime, *, operation_id: str | None = None,
                   parameters: dict[str, Any] | None = None, details: dict[str, Any] | None = None,
                   status: str = "SUCCESS") -> dict[str, Any]:
    """An Operation that is already finished (the client then skips its polling sleeps)."""
    from ..ids import fmt_time, truncate_ms

    stamp = fmt_time(truncate_ms(when))
    return {
        "id": operation_id or str(uuid.uuid4()),
        "type": op_type,
        "status": status,
        "submitted": stamp,
        "started": stamp,
        "finished": stamp,
        "progress": 100,
        "parameters": parameters or {},
        "details": details or {},
    }


def respond_items(request: web.Request, items: list[dict[str, Any]], has_more: bool) -> web.Response:
    """A search answer; tasks and assignments reuse the store's serialized JSON."""
    st = store(request)
    parts = []
    for doc in items:
        text = st.doc_json(doc["id"])
        parts.append(text if text is not None else json_dumps(doc))
    body = '{"items":[' + ",".join(parts) + '],"has_more":' + ("true" if has_more else "false") + "}"
    return web.Response(text=body, content_type="application/json")
