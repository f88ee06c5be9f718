"""User bonuses and user skills (user restrictions: :mod:`emulator.api.restrictions`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from aiohttp import web

from ..search import ID, TIME, Query, Resource, iter_sorted_ids, parse_query, run
from .batch import BatchKind, Errors, handle_create
from .common import body_json, now, respond, search_response, store
from .errors import field_error, not_found, validation

routes = web.RouteTableDef()

BONUSES = Resource(exact={"user_id": "user_id", "assignment_id": "assignment_id",
                          "private_comment": "private_comment"},
                   ranges={"id": ID, "created": TIME}, sorts=frozenset({"id", "created"}),
                   default_limit=50, max_limit=300, clamp_limit=True)
USER_SKILLS = Resource(exact={"user_id": "user_id", "skill_id": "skill_id"},
                       ranges={"id": ID, "created": TIME, "modified": TIME},
                       sorts=frozenset({"id", "created", "modified"}),
                       default_limit=50, max_limit=1000)

BONUS_BATCH = BatchKind(op_type="USER_BONUS.BATCH_CREATE", create_log="USER_BONUS_PERSIST",
                        validate_log="USER_BONUS_VALIDATE", output_key="user_bonus_id",
                        max_sync=100)
MIN_BONUS = Decimal("0.005")
MAX_BONUS = Decimal("100")


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    return None


def _amount_error(raw: Any) -> dict[str, Any] | None:
    """The field error of a bonus amount, or None when it is a number within the limits."""
    amount = _amount(raw)
    if raw is None:
        return field_error("VALUE_REQUIRED", "amount is required")
    if amount is None or not amount.is_finite():
        return field_error("VALUE_NOT_ALLOWED", "amount must be a number")
    if amount < MIN_BONUS:
        return field_error("VALUE_LESS_THAN_MIN", f"amount must be at least {MIN_BONUS}", [MIN_BONUS])
    if amount > MAX_BONUS:
        return field_error("VALUE_GREATER_THAN_MAX", f"amount must be at most {MAX_BONUS}", [MAX_BONUS])
    return None


@routes.post("/user-bonuses")
async def create_user_bonuses(request: web.Request) -> web.Response:
    """Create one bonus or many (see emulator.api.batch for the protocol)."""
    st = store(request)

    def validate(item: dict[str, Any]) -> Errors:
        errors: Errors = {}
        if not item.get("user_id"):
            errors["user_id"] = field_error("VALUE_REQUIRED", "user_id is required")
        amount_error = _amount_error(item.get("amount"))
        if amount_error is not None:
            errors["amount"] = amount_error
        assignment_id = item.get("assignment_id")
        if assignment_id is not None:
            assignment = st.get_assignment(str(assignment_id))
            if assignment is None:
                errors["assignment_id"] = field_error(
                    "ENTITY_DOES_NOT_EXIST", f"Assignment {assignment_id} does not exist")
            elif item.get("user_id") and assignment["user_id"] != item.get("user_id"):
                errors["assignment_id"] = field_error(
                    "VALUE_NOT_ALLOWED", "The assignment belongs to another user")
        if not item.get("without_message"):
            for key in ("public_title", "public_message"):
                if not item.get(key):
                    errors[key] = field_error("VALUE_REQUIRED",
                                              f"{key} is required unless without_message is true")
        return errors

    def create(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return st.create_bonuses(items, now())

    return await handle_create(request, BONUS_BATCH, validate, create, {})


@routes.get("/user-bonuses/{id}")
async def get_user_bonus(request: web.Request) -> web.Response:
    doc = store(request).get_bonus(request.match_info["id"])
    if doc is None:
        raise not_found("User bonus", request.match_info["id"])
    return respond(doc)


@routes.get("/user-bonuses")
async def find_user_bonuses(request: web.Request) -> web.Response:
    st = store(request)
    query: Query = parse_query(request.query, BONUSES)
    docs = (st.bonuses_by_id[b] for b in iter_sorted_ids(st.bonus_order, query))
    items, has_more = run(query, docs, ordered_by=[("id", False)], satisfied=frozenset({"id"}))
    return respond({"items": items, "has_more": has_more})


# ------------------------------------------------------------------ user skills

@routes.put("/user-skills")
async def set_user_skill(request: web.Request) -> web.Response:
    st = store(request)
    body = await body_json(request)
    if not isinstance(body, dict):
        raise validation({"": field_error("VALUE_REQUIRED", "An object is required")})
    errors: Errors = {}
    skill_id = body.get("skill_id")
    if not skill_id:
        errors["skill_id"] = field_error("VALUE_REQUIRED", "skill_id is required")
    elif str(skill_id) not in st.skills:
        errors["skill_id"] = field_error("ENTITY_DOES_NOT_EXIST", f"Skill {skill_id} does not exist")
    if not body.get("user_id"):
        errors["user_id"] = field_error("VALUE_REQUIRED", "user_id is required")
    value = _amount(body.get("value"))
    if value is None:
        errors["value"] = field_error("VALUE_REQUIRED", "value (a number) is required")
    elif not Decimal(0) <= value <= Decimal(100):
        errors["value"] = field_error("VALUE_NOT_ALLOWED", "value must be within 0..100")
    if errors:
        raise validation(errors)
    assert value is not None
    doc = st.set_user_skill(str(skill_id), str(body["user_id"]), value, now())
    return respond(doc, 201)


@routes.get("/user-skills/{id}")
async def get_user_skill(request: web.Request) -> web.Response:
    doc = store(request).user_skills.get(request.match_info["id"])
    if doc is None:
        raise not_found("User skill", request.match_info["id"])
    return respond(doc)


@routes.get("/user-skills")
async def find_user_skills(request: web.Request) -> web.Response:
    return search_response(request, USER_SKILLS, list(store(request).user_skills.values()))


@routes.delete("/user-skills/{id}")
async def delete_user_skill(request: web.Request) -> web.Response:
    if not store(request).delete_user_skill(request.match_info["id"]):
        raise not_found("User skill", request.match_info["id"])
    return web.Response(status=204)
