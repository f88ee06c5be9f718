"""User bonus ids are numeric strings (as Toloka's docs show them, e.g. "2092") that order as
strings in creation order, also across a restart; ``GET /user-bonuses`` serves at most 300 per page."""

from __future__ import annotations

import uuid
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp

from emulator.app import start_emulator
from emulator.store import json_dumps, json_loads

TOKEN = "bonus-token"


async def _call(session: aiohttp.ClientSession, method: str, path: str, body: Any = None,
                **params: Any) -> tuple[int, Any]:
    async with session.request(method, "/api/v1" + path, data=None if body is None else json_dumps(body),
                               headers={"Content-Type": "application/json"} if body is not None else {},
                               params={k: str(v) for k, v in params.items()}) as resp:
        raw = await resp.read()
        return resp.status, json_loads(raw) if raw else None


def _bonuses(n: int, start: int = 0) -> list[dict[str, Any]]:
    return [{"user_id": f"w{start + i}", "amount": Decimal("0.01"), "without_message": True} for i in range(n)]


async def test_bonus_ids_are_numeric_and_ordered_and_a_page_is_at_most_300(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    headers = {"Authorization": f"OAuth {TOKEN}"}
    async with start_emulator(db, token=TOKEN) as emu, aiohttp.ClientSession(emu.url, headers=headers) as http:
        status, one = await _call(http, "POST", "/user-bonuses", _bonuses(1)[0])
        assert status == 201 and isinstance(one["id"], str) and one["id"].isdigit()
        status, many = await _call(http, "POST", "/user-bonuses", _bonuses(100, 1))
        assert status == 201
        op_id = str(uuid.uuid4())
        status, op = await _call(http, "POST", "/user-bonuses", _bonuses(250, 101), async_mode="true",
                                 operation_id=op_id)
        assert status == 202 and op["status"] == "SUCCESS"
        _, log = await _call(http, "GET", f"/operations/{op_id}/log")
        ids = [one["id"], *(many["items"][str(i)]["id"] for i in range(100)),
               *(e["output"]["user_bonus_id"] for e in log)]
        assert all(i.isdigit() for i in ids) and len(set(map(len, ids))) == 1
        assert ids == sorted(ids) == sorted(ids, key=int) and len(set(ids)) == 351

        status, page = await _call(http, "GET", "/user-bonuses", limit=1000, sort="id")
        assert status == 200 and len(page["items"]) == 300 and page["has_more"] is True   # clamped
        status, rest = await _call(http, "GET", "/user-bonuses", limit=300, sort="id",
                                   id_gt=page["items"][-1]["id"])
        assert len(rest["items"]) == 51 and rest["has_more"] is False
        assert [b["id"] for b in page["items"] + rest["items"]] == ids
        status, body = await _call(http, "GET", "/user-bonuses", limit=0)
        assert status == 400 and body["code"] == "VALIDATION_ERROR"
        _, ranged = await _call(http, "GET", "/user-bonuses", id_gte=ids[5], id_lte=ids[9], sort="id")
        assert [b["id"] for b in ranged["items"]] == ids[5:10]

    async with start_emulator(db, token=TOKEN) as emu, aiohttp.ClientSession(emu.url, headers=headers) as http:
        status, later = await _call(http, "POST", "/user-bonuses", _bonuses(1, 500)[0])
        assert status == 201 and later["id"] > ids[-1] and int(later["id"]) == int(ids[-1]) + 1
        _, got = await _call(http, "GET", f"/user-bonuses/{ids[0]}")
        assert got["id"] == ids[0] and got["amount"] == Decimal("0.01")
