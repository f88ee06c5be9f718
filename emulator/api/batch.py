"""The create protocol shared by tasks and user bonuses.

``POST`` takes one object or an array; query ``async_mode``, ``operation_id``
(idempotency key: a reused one answers 409 ``OPERATION_ALREADY_EXISTS``) and
``skip_invalid_items``. Every call with an ``operation_id`` (and every async
call) records a finished Operation and its log, so a client that lost the answer
can read the outcome with ``GET /operations/{id}`` and ``/log`` (toloka-kit's
recovery path). The log echoes each submitted object, ``__item_idx`` included.
With an operation timing set (:mod:`emulator.operation_timing`), an async call's
operation shows RUNNING for a while (its objects exist already).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from aiohttp import web

from .common import body_json, flag, make_operation, now, operation_id_param, respond, state, store
from .errors import ApiError, field_error, validation

Errors = dict[str, dict[str, Any]]


@dataclass(frozen=True)
class BatchKind:
    """What differs between task and bonus creation."""

    op_type: str               # TASK.BATCH_CREATE / USER_BONUS.BATCH_CREATE
    create_log: str            # TASK_CREATE / USER_BONUS_PERSIST
    validate_log: str          # TASK_VALIDATE / USER_BONUS_VALIDATE
    output_key: str            # task_id / user_bonus_id
    max_sync: int              # items per sync request


def _items_of(body: Any) -> list[Any]:
    """The submitted objects: one object, or a non-empty array (of anything, checked per item)."""
    if isinstance(body, dict):
        return [body]
    if isinstance(body, list) and body:
        return body
    raise validation({"": field_error("VALUE_REQUIRED", "An object or a non-empty array is required")})


def _validate_all(items: list[Any], validate: Callable[[dict[str, Any]], Errors]) -> dict[int, Errors]:
    """Field errors by item index; an item that is not an object is an error of its own."""
    errors: dict[int, Errors] = {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            errors[i] = {"": field_error("VALUE_NOT_ALLOWED", "An object is required")}
            continue
        found = validate(item)
        if found:
            errors[i] = found
    return errors


def _operation_log(
    kind: BatchKind, items: list[Any], by_index: dict[int, dict[str, Any]], errors: dict[int, Errors]
) -> list[dict[str, Any]]:
    """One log entry per item: created (with the new id) or refused (with its errors)."""
    log: list[dict[str, Any]] = []
    for i, item in enumerate(items):
        if i in by_index:
            log.append({"type": kind.create_log, "success": True, "input": item,
                        "output": {kind.output_key: by_index[i]["id"]}})
        elif i in errors:
            log.append({"type": kind.validate_log, "success": False, "input": item,
                        "output": errors[i]})
    return log


async def handle_create(
    request: web.Request,
    kind: BatchKind,
    validate: Callable[[dict[str, Any]], Errors],
    create: Callable[[list[dict[str, Any]]], list[dict[str, Any]]],
    parameters: dict[str, Any],
    after_create: Callable[[list[dict[str, Any]]], list[dict[str, Any]]] | None = None,
) -> web.Response:
    """Run one create request; ``validate`` returns field errors, ``create`` makes docs."""
    st = store(request)
    operation_id = operation_id_param(request)
    async_mode = flag(request, "async_mode", False)
    skip_invalid = flag(request, "skip_invalid_items", False)
    if operation_id is not None and st.get_operation(operation_id) is not None:
        raise ApiError(409, "OPERATION_ALREADY_EXISTS",
                       f"Operation {operation_id} already exists", {"id": operation_id})
    body = await body_json(request)
    single = isinstance(body, dict)
    items = _items_of(body)
    if not async_mode and len(items) > kind.max_sync:
        raise ApiError(413, "TOO_MANY_ITEMS",
                       f"At most {kind.max_sync} items per synchronous request")

    errors = _validate_all(items, validate)
    valid = [i for i in range(len(items)) if i not in errors]
    if errors and (single or not skip_invalid):
        valid = []                                   # all or nothing
    created = create([items[i] for i in valid]) if valid else []
    by_index = dict(zip(valid, created, strict=True))

    log = _operation_log(kind, items, by_index, errors)
    if after_create is not None:
        log.extend(after_create(created))       # e.g. the POOL_OPEN entry of open_pool=true
    details = {
        "total_count": len(items),
        "valid_count": len(items) - len(errors),
        "not_valid_count": len(errors),
        "success_count": len(created),
        "failed_count": len(items) - len(created),
        "items_count": len(items),
    }
    when = now()
    if async_mode or operation_id is not None:
        status = "FAIL" if errors and not created else "SUCCESS"
        op = make_operation(kind.op_type, when, operation_id=operation_id or str(uuid.uuid4()),
                            parameters={**parameters, "skip_invalid_items": skip_invalid},
                            details=details, status=status)
        timing = state(request).operation_timing
        if async_mode and timing.active:   # the work is done; the status lags (see operation_timing)
            op = st.put_operation(op, log, running_until=when + timedelta(seconds=timing.seconds),
                                  running_polls=timing.polls)
        else:
            st.put_operation(op, log)
        if async_mode:
            return respond(op, 202)
    if single:
        if errors:
            raise validation(errors[0])
        return respond(created[0], 201)
    if errors and not created:
        raise validation({str(i): e for i, e in errors.items()})
    return respond({"items": {str(i): doc for i, doc in by_index.items()},
                    "validation_errors": {str(i): e for i, e in errors.items()}}, 201)
