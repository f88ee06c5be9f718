"""User restrictions (bans): ``PUT``, ``GET`` one, search and ``DELETE /user-restrictions``.

Shapes follow Toloka's docs (toloka-api.md 3.8; toloka-kit ``PoolUserRestriction``,
``ProjectUserRestriction``, ``AllProjectsUserRestriction``): ``{scope, user_id, pool_id |
project_id, private_comment, will_expire}`` in, the same plus ``id`` and ``created`` out.
A requester sets ``POOL``, ``PROJECT`` or ``ALL_PROJECTS``; ``SYSTEM`` (a platform ban) is
Toloka's own, listed but never set. The store keeps one restriction per (user, scope, pool
or project): a repeated PUT updates it (200) instead of adding another (201), so the
client's retried PUT is harmless. The crowd gives a restricted worker no new task in the
pool (``Store.restricted_users``); an assignment it already holds may be finished.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ..ids import fmt_time, parse_time, truncate_ms
from ..search import ID, TIME, Resource, parse_query, run
from ..store import Store
from .common import body_json, now, respond, store
from .errors import field_error, not_found, validation

routes = web.RouteTableDef()

RESTRICTIONS = Resource(exact={"scope": "scope", "user_id": "user_id",
                               "project_id": "project_id", "pool_id": "pool_id"},
                        ranges={"id": ID, "created": TIME}, sorts=frozenset({"id", "created"}),
                        default_limit=50, max_limit=300)

#: Scopes a requester may set, and the one only Toloka sets (searchable, never PUT).
SETTABLE_SCOPES = ("POOL", "PROJECT", "ALL_PROJECTS")
SYSTEM_SCOPE = "SYSTEM"
#: The docs' limit on ``private_comment``.
MAX_COMMENT = 499

Errors = dict[str, dict[str, Any]]


def _scope_errors(st: Store, body: dict[str, Any], doc: dict[str, Any]) -> Errors:
    """Check ``scope`` and the pool or project it needs; copy what is valid into ``doc``."""
    scope = body.get("scope")
    if scope is None:
        return {"scope": field_error("VALUE_REQUIRED", "scope is required")}
    if scope == SYSTEM_SCOPE:
        return {"scope": field_error("VALUE_NOT_ALLOWED", "SYSTEM restrictions are set by Toloka only")}
    if scope not in SETTABLE_SCOPES:
        return {"scope": field_error("UNKNOWN_ENUM_VALUE", f"scope must be one of {list(SETTABLE_SCOPES)}")}
    doc["scope"] = scope
    target = {"POOL": ("pool_id", st.pools, "Pool"), "PROJECT": ("project_id", st.projects, "Project")}.get(scope)
    if target is None:
        return {}
    key, known, what = target
    value = body.get(key)
    if value is None or value == "":
        return {key: field_error("VALUE_REQUIRED", f"{key} is required for scope {scope}")}
    if str(value) not in known:
        return {key: field_error("ENTITY_DOES_NOT_EXIST", f"{what} {value} does not exist")}
    doc[key] = str(value)
    return {}


def _restriction_doc(st: Store, body: dict[str, Any]) -> tuple[dict[str, Any], Errors]:
    """The restriction to store from a PUT body, and the field errors found in it."""
    doc: dict[str, Any] = {}
    errors = _scope_errors(st, body, doc)
    user_id = body.get("user_id")
    if not isinstance(user_id, str) or not user_id:
        errors["user_id"] = field_error("VALUE_REQUIRED", "user_id is required")
    else:
        doc["user_id"] = user_id
    comment = body.get("private_comment")
    if comment is not None and (not isinstance(comment, str) or len(comment) > MAX_COMMENT):
        errors["private_comment"] = field_error("VALUE_NOT_ALLOWED",
                                                f"private_comment must be a string of at most {MAX_COMMENT} characters")
    elif comment is not None:
        doc["private_comment"] = comment
    expires = body.get("will_expire")
    if expires is not None:
        try:
            doc["will_expire"] = fmt_time(truncate_ms(parse_time(str(expires))))
        except ValueError:
            errors["will_expire"] = field_error("VALUE_NOT_ALLOWED",
                                                "will_expire must be a date YYYY-MM-DDThh:mm:ss[.sss] (UTC)")
    return doc, errors


@routes.put("/user-restrictions")
async def put_user_restriction(request: web.Request) -> web.Response:
    """Restrict a user: 201 with a new restriction, 200 with the updated existing one."""
    st = store(request)
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"": field_error("VALUE_REQUIRED", "An object is required")})
    doc, errors = _restriction_doc(st, body)
    if errors:
        raise validation(errors)
    restriction, created = st.put_restriction(doc, now())
    return respond(restriction, 201 if created else 200)


@routes.get("/user-restrictions/{id}")
async def get_user_restriction(request: web.Request) -> web.Response:
    doc = store(request).get_restriction(request.match_info["id"])
    if doc is None:
        raise not_found("User restriction", request.match_info["id"])
    return respond(doc)


@routes.get("/user-restrictions")
async def find_user_restrictions(request: web.Request) -> web.Response:
    """Search by scope, user_id, pool_id, project_id and id/created ranges; sort, limit, has_more."""
    st = store(request)
    query = parse_query(request.query, RESTRICTIONS)
    in_id_order = [st.restrictions[k] for k in sorted(st.restrictions)]
    items, has_more = run(query, in_id_order, ordered_by=[("id", False)])
    return respond({"items": items, "has_more": has_more})


@routes.delete("/user-restrictions/{id}")
async def delete_user_restriction(request: web.Request) -> web.Response:
    """Lift a restriction: 204, or 404 if there is none with this id (any more)."""
    if not store(request).delete_restriction(request.match_info["id"]):
        raise not_found("User restriction", request.match_info["id"])
    return web.Response(status=204)
