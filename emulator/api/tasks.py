"""Tasks and operations."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any, TypeGuard

from aiohttp import web

from ..search import ID, INT, TIME, Query, Resource, iter_sorted_ids, parse_query, run
from .batch import BatchKind, Errors, handle_create
from .common import body_json, flag, now, respond, respond_items, search_response, store
from .errors import ApiError, field_error, not_found, validation

routes = web.RouteTableDef()

TASKS = Resource(exact={"pool_id": "pool_id", "overlap": "overlap"},
                 ranges={"id": ID, "created": TIME, "overlap": INT},
                 sorts=frozenset({"id", "created"}), default_limit=50, max_limit=100_000,
                 int_exact=frozenset({"overlap"}))
OPERATIONS = Resource(exact={"type": "type", "status": "status"},
                      ranges={"id": ID, "submitted": TIME, "finished": TIME},
                      sorts=frozenset({"id", "submitted", "finished"}),
                      default_limit=50, max_limit=500)

TASK_BATCH = BatchKind(op_type="TASK.BATCH_CREATE", create_log="TASK_CREATE",
                       validate_log="TASK_VALIDATE", output_key="task_id", max_sync=5000)


def _is_int(value: Any) -> TypeGuard[int]:
    return isinstance(value, int) and not isinstance(value, bool)


def _runs_by_pool(items: list[dict[str, Any]]) -> Iterator[tuple[str, list[dict[str, Any]]]]:
    """Consecutive items of one pool, in request order: ``(pool_id, items)`` per run."""
    start = 0
    while start < len(items):
        pool_id = str(items[start]["pool_id"])
        end = start
        while end < len(items) and str(items[end]["pool_id"]) == pool_id:
            end += 1
        yield pool_id, items[start:end]
        start = end


def _input_errors(project: dict[str, Any], inputs: dict[str, Any]) -> Errors:
    """Required input fields of the project's ``input_spec`` that the task leaves out (or null)."""
    errors: Errors = {}
    spec = ((project.get("task_spec") or {}).get("input_spec") or {})
    for name, field_spec in spec.items():
        required = not isinstance(field_spec, dict) or field_spec.get("required", True)
        if required and inputs.get(name) is None:
            errors[f"input_values.{name}"] = field_error("VALUE_REQUIRED", f"{name} is required")
    return errors


def _overlap_error(item: dict[str, Any], pool: dict[str, Any] | None, allow_defaults: bool) -> dict[str, Any] | None:
    """The field error of a new task's ``overlap`` (with ``infinite_overlap``), if any."""
    infinite = item.get("infinite_overlap")
    overlap = item.get("overlap")
    if overlap is not None and not _is_int(overlap):
        return field_error("VALUE_NOT_ALLOWED", "overlap must be an integer")
    if _is_int(overlap) and overlap < 1:
        return field_error("VALUE_LESS_THAN_MIN", "overlap must be >= 1", [1])
    if overlap is not None and infinite:
        return field_error("VALUE_NOT_ALLOWED", "overlap must be null when infinite_overlap is true")
    if overlap is None and not infinite and pool is not None:
        default = (pool.get("defaults") or {}).get("default_overlap_for_new_tasks")
        if not allow_defaults and default is None:
            return field_error("VALUE_REQUIRED", "overlap is required")
    return None


#: Toloka's limit on the ``input_values`` of one create request, all tasks together (toloka-api.md 3.2).
MAX_INPUT_BYTES = 1_048_576


async def _refuse_too_large(request: web.Request) -> None:
    """413 when the request's ``input_values`` total more than :data:`MAX_INPUT_BYTES` (as JSON, UTF-8).

    The status is the one the docs list for an oversized request; the code is ours.
    A body no larger than the limit cannot hold more, so only larger ones are parsed here.
    """
    raw = await request.read()  # aiohttp keeps the body: the create handler reads it again
    if len(raw) <= MAX_INPUT_BYTES:
        return
    try:
        body = json.loads(raw)
    except ValueError:
        return  # the create handler answers 400
    items = body if isinstance(body, list) else [body]
    total = sum(len(json.dumps(item.get("input_values"), ensure_ascii=False, separators=(",", ":")).encode())
                for item in items if isinstance(item, dict))
    if total > MAX_INPUT_BYTES:
        raise ApiError(413, "REQUEST_ENTITY_TOO_LARGE",
                       f"The input_values of one request total {total} bytes; at most {MAX_INPUT_BYTES} are allowed")


@routes.post("/tasks")
async def create_tasks(request: web.Request) -> web.Response:
    """Create one task or many (see emulator.api.batch for the protocol)."""
    await _refuse_too_large(request)
    st = store(request)
    allow_defaults = flag(request, "allow_defaults", False)
    open_pool = flag(request, "open_pool", False)

    def validate(item: dict[str, Any]) -> Errors:
        errors: Errors = {}
        pool_id = item.get("pool_id")
        pool = st.get_pool(str(pool_id)) if pool_id is not None else None
        if pool_id is None:
            errors["pool_id"] = field_error("VALUE_REQUIRED", "pool_id is required")
        elif pool is None:
            errors["pool_id"] = field_error("ENTITY_DOES_NOT_EXIST",
                                            f"Pool {pool_id} does not exist")
        inputs = item.get("input_values")
        if not isinstance(inputs, dict):
            errors["input_values"] = field_error("VALUE_REQUIRED", "input_values is required")
        elif pool is not None:
            project = st.get_project(pool.get("project_id", "")) or {}
            errors.update(_input_errors(project, inputs))
        overlap_error = _overlap_error(item, pool, allow_defaults)
        if overlap_error is not None:
            errors["overlap"] = overlap_error
        return errors

    def create(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        when = now()
        created: list[dict[str, Any]] = []
        # Keep the request order; consecutive items of one pool go in one store call.
        for pool_id, run_of_items in _runs_by_pool(items):
            created.extend(st.create_tasks(pool_id, run_of_items, when))
        return created

    def open_pools(created: list[dict[str, Any]]) -> list[dict[str, Any]]:
        if not open_pool:
            return []
        entries = []
        for pool_id in dict.fromkeys(t["pool_id"] for t in created):
            pool = st.get_pool(pool_id)
            assert pool is not None  # its tasks were just created in it
            if pool["status"] == "CLOSED":
                st.open_pool(pool_id, now())
            entries.append({"type": "POOL_OPEN", "success": True,
                            "input": {"pool_id": pool_id}, "output": {}})
        return entries

    return await handle_create(request, TASK_BATCH, validate, create,
                               {"allow_defaults": allow_defaults, "open_pool": open_pool},
                               after_create=open_pools)


def _task_or_404(request: web.Request) -> dict[str, Any]:
    task = store(request).get_task(request.match_info["id"])
    if task is None:
        raise not_found("Task", request.match_info["id"])
    return task


@routes.get("/tasks/{id}")
async def get_task(request: web.Request) -> web.Response:
    return respond(_task_or_404(request))


def _all_task_docs(request: web.Request, query: Query) -> Iterator[dict[str, Any]]:
    """Tasks in id order: one pool's list, or every pool's list in pool order.

    Ids start with the pool id in fixed-width hex, so concatenating the pools'
    sorted lists in numeric pool order is sorted by id overall.
    """
    st = store(request)
    pools = query.exact.get("pool_id")
    pool_ids = sorted(pools if pools is not None else st.pool_tasks.keys(),
                      key=lambda p: int(p) if p.isdigit() else -1)
    for pool_id in pool_ids:
        for task_id in iter_sorted_ids(st.pool_tasks.get(pool_id, []), query):
            yield st.tasks[task_id]


@routes.get("/tasks")
async def find_tasks(request: web.Request) -> web.Response:
    query = parse_query(request.query, TASKS)
    items, has_more = run(query, _all_task_docs(request, query), ordered_by=[("id", False)],
                          satisfied=frozenset({"id"}))
    return respond_items(request, items, has_more)


async def _overlap_body(request: web.Request) -> tuple[int | None, bool, dict[str, Any]]:
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"": field_error("VALUE_REQUIRED", "An object is required")})
    overlap = body.get("overlap")
    infinite = bool(body.get("infinite_overlap"))
    if overlap is not None and not _is_int(overlap):
        raise validation({"overlap": field_error("VALUE_NOT_ALLOWED", "overlap must be an integer")})
    if _is_int(overlap) and overlap < 0:
        raise validation({"overlap": field_error("VALUE_LESS_THAN_MIN", "overlap must be >= 0", [0])})
    return overlap, infinite, body


@routes.patch("/tasks/{id}")
async def patch_task(request: web.Request) -> web.Response:
    task = _task_or_404(request)
    overlap, infinite, body = await _overlap_body(request)
    st = store(request)
    if overlap is not None or infinite:
        task = st.set_task_overlap(task["id"], overlap, infinite)
    if any(k in body for k in ("baseline_solutions", "known_solutions",
                               "message_on_unknown_solution")):
        task = st.patch_task(task["id"], body)
    return respond(task)


@routes.patch("/tasks/{id}/set-overlap-or-min")
async def set_overlap_or_min(request: web.Request) -> web.Response:
    task = _task_or_404(request)
    overlap, infinite, _ = await _overlap_body(request)
    if overlap is None and not infinite:
        raise validation({"overlap": field_error("VALUE_REQUIRED", "overlap is required")})
    return respond(store(request).set_task_overlap(task["id"], overlap, infinite, or_min=True))


# ------------------------------------------------------------------ operations

@routes.get("/operations/{id}")
async def get_operation(request: web.Request) -> web.Response:
    """The operation; a RUNNING one counts this GET as a poll and finishes once it is due."""
    op = store(request).poll_operation(request.match_info["id"], now())
    if op is None:
        raise not_found("Operation", request.match_info["id"])
    return respond(op)


@routes.get("/operations/{id}/log")
async def get_operation_log(request: web.Request) -> web.Response:
    log = store(request).operation_log(request.match_info["id"])
    if log is None:
        raise not_found("Operation", request.match_info["id"])
    return respond(log)


@routes.get("/operations")
async def find_operations(request: web.Request) -> web.Response:
    st = store(request)
    when = now()
    for op_id in list(st.running_operations):   # due ones finish (a search is not a poll)
        st.poll_operation(op_id, when, count=False)
    return search_response(request, OPERATIONS, list(st.operations.values()))
