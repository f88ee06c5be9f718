"""Requester, projects, pools and skills."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from ..search import ID, TIME, Resource
from .common import body_json, make_operation, now, respond, search_response, store
from .errors import ApiError, field_error, not_found, validation

routes = web.RouteTableDef()

INITIAL_BALANCE = Decimal("1000.00")

PROJECTS = Resource(exact={"status": "status"}, ranges={"id": ID, "created": TIME},
                    sorts=frozenset({"id", "created"}), default_limit=20, max_limit=300)
POOLS = Resource(exact={"status": "status", "project_id": "project_id"},
                 ranges={"id": ID, "created": TIME, "last_started": TIME},
                 sorts=frozenset({"id", "created", "last_started"}),
                 default_limit=20, max_limit=300)
SKILLS = Resource(exact={"name": "name"}, ranges={"id": ID, "created": TIME},
                  sorts=frozenset({"id", "created"}), default_limit=20, max_limit=300)


@routes.get("/requester")
async def get_requester(request: web.Request) -> web.Response:
    """The account, with a balance that goes down by accepted rewards and bonuses."""
    st = store(request)
    spent = sum((Decimal(str(a.get("reward") or 0)) for a in st.assignments_by_id.values()
                 if a["status"] == "ACCEPTED"), Decimal(0))
    spent += sum((Decimal(str(b.get("amount") or 0)) for b in st.bonuses_by_id.values()),
                 Decimal(0))
    return respond({
        "id": "emulated-requester",
        "balance": INITIAL_BALANCE - spent,
        "public_name": {"EN": "Toloka emulator"},
        "company": {"id": "emulated-company", "superintendent_id": "emulated-requester"},
    })


# ------------------------------------------------------------------ projects

@routes.post("/projects")
async def create_project(request: web.Request) -> web.Response:
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"": field_error("VALUE_REQUIRED", "A project object is required")})
    return respond(store(request).create_project(body, now()), 201)


@routes.get("/projects/{id}")
async def get_project(request: web.Request) -> web.Response:
    project = store(request).get_project(request.match_info["id"])
    if project is None:
        raise not_found("Project", request.match_info["id"])
    return respond(project)


@routes.get("/projects")
async def find_projects(request: web.Request) -> web.Response:
    return search_response(request, PROJECTS, list(store(request).projects.values()))


# ------------------------------------------------------------------ pools

def _pool_or_404(request: web.Request) -> dict[str, Any]:
    pool = store(request).get_pool(request.match_info["id"])
    if pool is None:
        raise not_found("Pool", request.match_info["id"])
    return pool


@routes.post("/pools")
async def create_pool(request: web.Request) -> web.Response:
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"": field_error("VALUE_REQUIRED", "A pool object is required")})
    project_id = body.get("project_id")
    if project_id is None:
        raise validation({"project_id": field_error("VALUE_REQUIRED", "project_id is required")})
    if store(request).get_project(str(project_id)) is None:
        raise validation({"project_id": field_error("ENTITY_DOES_NOT_EXIST",
                                                    f"Project {project_id} does not exist")})
    body["project_id"] = str(project_id)
    return respond(store(request).create_pool(body, now()), 201)


@routes.get("/pools/{id}")
async def get_pool(request: web.Request) -> web.Response:
    return respond(_pool_or_404(request))


@routes.get("/pools")
async def find_pools(request: web.Request) -> web.Response:
    return search_response(request, POOLS, list(store(request).pools.values()))


def _pool_operation(request: web.Request, op_type: str, pool_id: str) -> web.Response:
    op = make_operation(op_type, now(), parameters={"pool_id": pool_id})
    store(request).put_operation(op, [])
    return respond(op, 202)


@routes.post("/pools/{id}/open")
async def open_pool(request: web.Request) -> web.Response:
    pool = _pool_or_404(request)
    if pool["status"] == "OPEN":
        return web.Response(status=204)
    if pool["status"] == "ARCHIVED":
        raise ApiError(409, "POOL_INAPPROPRIATE_STATUS", "An archived pool cannot be opened",
                       {"status": pool["status"]})
    store(request).open_pool(pool["id"], now())
    return _pool_operation(request, "POOL.OPEN", pool["id"])


async def _close(request: web.Request, reason: str) -> web.Response:
    pool = _pool_or_404(request)
    if pool["status"] in ("CLOSED", "ARCHIVED"):
        return web.Response(status=204)
    store(request).close_pool(pool["id"], now(), reason)
    return _pool_operation(request, "POOL.CLOSE", pool["id"])


@routes.post("/pools/{id}/close")
async def close_pool(request: web.Request) -> web.Response:
    return await _close(request, "MANUAL")


@routes.post("/pools/{id}/close-for-update")
async def close_pool_for_update(request: web.Request) -> web.Response:
    return await _close(request, "FOR_UPDATE")


@routes.post("/pools/{id}/archive")
async def archive_pool(request: web.Request) -> web.Response:
    pool = _pool_or_404(request)
    if pool["status"] == "ARCHIVED":
        return web.Response(status=204)
    if pool["status"] == "OPEN":
        raise ApiError(409, "POOL_INAPPROPRIATE_STATUS", "Close the pool before archiving it",
                       {"status": pool["status"]})
    store(request).archive_pool(pool["id"], now())
    return _pool_operation(request, "POOL.ARCHIVE", pool["id"])


@routes.patch("/pools/{id}")
async def patch_pool(request: web.Request) -> web.Response:
    pool = _pool_or_404(request)
    body = await body_json(request)
    priority = body.get("priority") if isinstance(body, dict) else None
    if not isinstance(priority, int) or isinstance(priority, bool):
        raise validation({"priority": field_error("VALUE_REQUIRED", "priority (int) is required")})
    if not -100 <= priority <= 100:
        code = "VALUE_LESS_THAN_MIN" if priority < -100 else "VALUE_GREATER_THAN_MAX"
        raise validation({"priority": field_error(code, "priority must be in -100..100",
                                                  [-100 if priority < -100 else 100])})
    return respond(store(request).update_pool(pool["id"], {"priority": priority}))


@routes.put("/pools/{id}")
async def update_pool(request: web.Request) -> web.Response:
    pool = _pool_or_404(request)
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"": field_error("VALUE_REQUIRED", "A pool object is required")})
    return respond(store(request).update_pool(pool["id"], body))


# ------------------------------------------------------------------ skills

@routes.post("/skills")
async def create_skill(request: web.Request) -> web.Response:
    body = await body_json(request)
    if not isinstance(body, dict) or not body.get("name"):
        raise validation({"name": field_error("VALUE_REQUIRED", "name is required")})
    extra = {k: v for k, v in body.items() if k not in ("id", "name", "created")}
    return respond(store(request).create_skill(str(body["name"]), now(), extra), 201)


@routes.get("/skills/{id}")
async def get_skill(request: web.Request) -> web.Response:
    skill = store(request).skills.get(request.match_info["id"])
    if skill is None:
        raise not_found("Skill", request.match_info["id"])
    return respond(skill)


@routes.get("/skills")
async def find_skills(request: web.Request) -> web.Response:
    return search_response(request, SKILLS, list(store(request).skills.values()))


