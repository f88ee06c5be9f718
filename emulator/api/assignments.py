"""Assignments (search, get, accept/reject) and their attachments."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from aiohttp import web

from ..search import ID, TIME, Query, Resource, iter_sorted_ids, iter_time_index, parse_query, run
from ..store import ASSIGNMENT_TIME_FIELDS
from .common import body_json, now, respond, respond_items, search_response, store
from .errors import ApiError, field_error, not_found, validation

routes = web.RouteTableDef()

_SORTABLE = frozenset({"id", *ASSIGNMENT_TIME_FIELDS})
ASSIGNMENTS = Resource(
    exact={"status": "status", "task_id": "task_id", "task_suite_id": "task_suite_id",
           "pool_id": "pool_id", "user_id": "user_id"},
    ranges={"id": ID, **dict.fromkeys(ASSIGNMENT_TIME_FIELDS, TIME)},
    sorts=_SORTABLE, default_limit=50, max_limit=100_000,
)
ATTACHMENTS = Resource(
    exact={"name": "name", "type": "attachment_type", "user_id": "details.user_id",
           "assignment_id": "details.assignment_id", "pool_id": "details.pool_id",
           "owner_id": "owner.id", "owner_company_id": "owner.company_id"},
    ranges={"id": ID, "created": TIME}, sorts=frozenset({"id", "created"}),
    default_limit=50, max_limit=100,
)

# target status -> statuses it may be reached from (docs accept.md)
TRANSITIONS = {"ACCEPTED": ("SUBMITTED", "REJECTED"), "REJECTED": ("SUBMITTED",)}
MAX_COMMENT = 2048


Candidates = tuple[Iterable[dict[str, Any]], list[tuple[str, bool]] | None, frozenset[str]]
NONE: frozenset[str] = frozenset()


def _candidates(request: web.Request, query: Query) -> Candidates:
    """Pick candidates from the narrowest index, and say in which order they come.

    ``task_id``/``task_suite_id`` narrow to a handful of documents; with a
    ``pool_id``, a primary sort on ``id`` or a time field (ascending) walks the
    pool's sorted index from the lower bound, so the search stops after
    ``limit + 1`` matches instead of sorting the pool. Returns the candidates,
    their order, and the field whose range the index scan already applied.
    """
    st = store(request)
    docs = st.assignments_by_id
    # task_id is not a field of the assignment (its tasks are): answer it from the index.
    task_ids = query.exact.pop("task_id", None)
    by_task = None if task_ids is None else {a for t in task_ids for a in st.task_assignments.get(t, [])}
    if "task_suite_id" in query.exact:
        ids = [a for s in query.exact["task_suite_id"] for a in st.suite_assignments(s)]
        if by_task is not None:
            ids = [a for a in ids if a in by_task]
        return (docs[a] for a in ids), None, NONE
    if by_task is not None:
        return (docs[a] for a in sorted(by_task)), None, NONE
    pools = query.exact.get("pool_id")
    if pools is None:
        raise validation({"pool_id": field_error(
            "VALUE_REQUIRED", "One of pool_id, task_id or task_suite_id is required")})
    primary, desc = query.sort[0]
    if len(pools) == 1 and not desc:
        (pool_id,) = pools
        if primary == "id":
            in_order = iter_sorted_ids(st.pool_assignments.get(pool_id, []), query)
            return (docs[a] for a in in_order), [("id", False)], frozenset({"id"})
        index = st.time_index.get((pool_id, primary))
        keys = index.keys if index is not None else []
        return ((docs[a] for a in iter_time_index(keys, query, primary)),
                [(primary, False), ("id", False)], frozenset({primary}))
    return (docs[a] for p in pools for a in st.pool_assignments.get(p, [])), None, NONE


@routes.get("/assignments")
async def find_assignments(request: web.Request) -> web.Response:
    st = store(request)
    query = parse_query(request.query, ASSIGNMENTS)
    candidates, ordered_by, satisfied = _candidates(request, query)
    hidden = st.visible_after
    extra = None
    if hidden:
        at: datetime = now()

        def extra(doc: dict[str, Any]) -> bool:   # late visibility (fault injection)
            until = hidden.get(doc["id"])
            return until is None or until <= at

    items, has_more = run(query, candidates, ordered_by=ordered_by, extra=extra,
                          satisfied=satisfied)
    return respond_items(request, items, has_more)


def _assignment_or_404(request: web.Request) -> dict[str, Any]:
    doc = store(request).get_assignment(request.match_info["id"])
    if doc is None:
        raise not_found("Assignment", request.match_info["id"])
    return doc


@routes.get("/assignments/{id}")
async def get_assignment(request: web.Request) -> web.Response:
    return respond(_assignment_or_404(request))


@routes.patch("/assignments/{id}")
async def patch_assignment(request: web.Request) -> web.Response:
    """Accept or reject; a wrong transition is 409 INAPPROPRIATE_STATUS."""
    doc = _assignment_or_404(request)
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"status": field_error("VALUE_REQUIRED", "status is required")})
    target = body.get("status")
    comment = body.get("public_comment")
    if target not in TRANSITIONS:
        raise validation({"status": field_error(
            "VALUE_NOT_ALLOWED", "status must be ACCEPTED or REJECTED")})
    if comment is not None and not isinstance(comment, str):
        raise validation({"public_comment": field_error("VALUE_NOT_ALLOWED",
                                                        "public_comment must be a string")})
    if comment is not None and len(comment) > MAX_COMMENT:
        raise validation({"public_comment": field_error(
            "VALUE_GREATER_THAN_MAX", f"public_comment is longer than {MAX_COMMENT}",
            [MAX_COMMENT])})
    if target == "REJECTED" and not (comment or "").strip():
        raise validation({"public_comment": field_error(
            "VALUE_REQUIRED", "A public_comment is required to reject")})
    allowed = TRANSITIONS[target]
    if doc["status"] not in allowed:
        raise ApiError(409, "INAPPROPRIATE_STATUS",
                       f"Assignment is {doc['status']}; it cannot become {target}",
                       {"appropriate_statuses": list(allowed), "current_status": doc["status"]})
    pool = store(request).get_pool(doc["pool_id"]) or {}
    if pool.get("status") == "ARCHIVED":
        raise ApiError(409, "POOL_INAPPROPRIATE_STATUS", "The pool is archived")
    return respond(store(request).review_assignment(doc["id"], target, comment, now()))


# ------------------------------------------------------------------ attachments

@routes.get("/attachments")
async def find_attachments(request: web.Request) -> web.Response:
    return search_response(request, ATTACHMENTS, list(store(request).attachments.values()))


def _attachment_or_404(request: web.Request) -> dict[str, Any]:
    doc = store(request).get_attachment(request.match_info["id"])
    if doc is None:
        raise not_found("Attachment", request.match_info["id"])
    return doc


@routes.get("/attachments/{id}")
async def get_attachment(request: web.Request) -> web.Response:
    return respond(_attachment_or_404(request))


@routes.get("/attachments/{id}/download")
async def download_attachment(request: web.Request) -> web.Response:
    doc = _attachment_or_404(request)
    data = store(request).attachment_bytes(doc["id"]) or b""
    media_type = doc.get("media_type") or "application/octet-stream"
    return web.Response(body=data, headers={
        "Content-Type": media_type,
        "Content-Disposition": f'attachment; filename="{doc["name"]}"'})
