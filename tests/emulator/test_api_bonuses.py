"""User bonuses: sync/async creation, validation, idempotency, exact decimals, search."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any


def _bonus(user: str, amount: Decimal, **extra: Any) -> dict[str, Any]:
    return {"user_id": user, "amount": amount, "public_title": {"EN": "Thanks"},
            "public_message": {"EN": "Good photo"}, **extra}


async def test_single_sync_bonus_is_exact_and_linked(api: Any, emu: Any, make_pool,
                                                     submitted) -> None:
    pool = await make_pool()
    (a,) = submitted(emu, pool["id"], 1)
    status, bonus = await api.post("/user-bonuses", _bonus(a["user_id"], Decimal("0.015"),
                                                           assignment_id=a["id"],
                                                           private_comment="visit"),
                                   async_mode="false")
    assert status == 201 and bonus["amount"] == Decimal("0.015") and bonus["id"]
    async with api.session.get(f"/api/v1/user-bonuses/{bonus['id']}") as resp:
        assert '"amount":0.015' in await resp.text()          # a JSON number, not a string
    status, got = await api.get(f"/assignments/{a['id']}")
    assert got["bonus_ids"] == [bonus["id"]]
    status, found = await api.get("/user-bonuses", assignment_id=a["id"])
    assert [b["id"] for b in found["items"]] == [bonus["id"]]
    status, found = await api.get("/user-bonuses", private_comment="visit", user_id=a["user_id"])
    assert len(found["items"]) == 1
    status, found = await api.get("/user-bonuses", private_comment="other")
    assert found["items"] == []


async def test_validation_errors(api: Any, emu: Any) -> None:
    cases = [
        (_bonus("w", Decimal("0.004")), "amount", "VALUE_LESS_THAN_MIN"),
        (_bonus("w", Decimal("100.01")), "amount", "VALUE_GREATER_THAN_MAX"),
        ({"user_id": "w", "without_message": True}, "amount", "VALUE_REQUIRED"),
        ({"amount": Decimal(1), "without_message": True}, "user_id", "VALUE_REQUIRED"),
        ({"user_id": "w", "amount": "1", "without_message": True}, "amount", "VALUE_NOT_ALLOWED"),
        ({"user_id": "w", "amount": Decimal(1)}, "public_title", "VALUE_REQUIRED"),
        (_bonus("w", Decimal(1), assignment_id="nope"), "assignment_id", "ENTITY_DOES_NOT_EXIST"),
    ]
    for body, field, code in cases:
        status, err = await api.post("/user-bonuses", body)
        assert status == 400 and err["code"] == "VALIDATION_ERROR", body
        assert err["payload"][field]["code"] == code, body
    status, err = await api.post("/user-bonuses", _bonus("w", Decimal("0.001")))
    assert err["payload"]["amount"]["params"] == [Decimal("0.005")]
    ok = [_bonus("w", Decimal("0.005")), _bonus("w", Decimal("100")),
          {"user_id": "w", "amount": 2, "without_message": True}]
    for body in ok:
        assert (await api.post("/user-bonuses", body))[0] == 201


async def test_batch_sync_and_async_with_log_and_idempotency(api: Any, emu: Any) -> None:
    items = [_bonus("w1", Decimal("0.10")), _bonus("w2", Decimal("0.001")),
             _bonus("w3", Decimal("1.25"))]
    status, body = await api.post("/user-bonuses", items, skip_invalid_items="true")
    assert status == 201 and sorted(body["items"]) == ["0", "2"]
    assert body["validation_errors"]["1"]["amount"]["code"] == "VALUE_LESS_THAN_MIN"
    status, body = await api.post("/user-bonuses", items)        # all or nothing
    assert status == 400 and list(body["payload"]) == ["1"]

    op_id = str(uuid.uuid4())
    tagged = [dict(b, __item_idx=str(i)) for i, b in enumerate(items)]
    status, op = await api.post("/user-bonuses", tagged, async_mode="true", operation_id=op_id,
                                skip_invalid_items="true")
    assert status == 202 and op["type"] == "USER_BONUS.BATCH_CREATE" and op["id"] == op_id
    assert op["status"] == "SUCCESS" and op["details"]["valid_count"] == 2
    status, log = await api.get(f"/operations/{op_id}/log")
    assert [(e["type"], e["success"]) for e in log] == [
        ("USER_BONUS_PERSIST", True), ("USER_BONUS_VALIDATE", False), ("USER_BONUS_PERSIST", True)]
    assert log[1]["input"]["__item_idx"] == "1" and "amount" in log[1]["output"]
    new_ids = [log[0]["output"]["user_bonus_id"], log[2]["output"]["user_bonus_id"]]
    status, found = await api.get("/user-bonuses", id_gte=min(new_ids), id_lte=max(new_ids),
                                  sort="id")
    assert [b["id"] for b in found["items"]] == new_ids
    assert [b["amount"] for b in found["items"]] == [Decimal("0.10"), Decimal("1.25")]

    status, body = await api.post("/user-bonuses", tagged, async_mode="true",
                                  operation_id=op_id, skip_invalid_items="true")
    assert status == 409 and body["code"] == "OPERATION_ALREADY_EXISTS"
    assert (await api.get(f"/operations/{op_id}"))[1] == op
    status, everything = await api.get("/user-bonuses", limit=1000)
    assert len(everything["items"]) == 4                     # 2 sync + 2 async, no duplicates
    status, page = await api.get("/user-bonuses", sort="id", limit=3)
    assert page["has_more"] is True and len(page["items"]) == 3
    status, rest = await api.get("/user-bonuses", sort="id", limit=3,
                                 id_gt=page["items"][-1]["id"])
    assert len(rest["items"]) == 1 and rest["has_more"] is False
