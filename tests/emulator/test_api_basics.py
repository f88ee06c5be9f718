"""Auth, errors, requester, projects, pools, skills, user skills and restrictions over HTTP."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import aiohttp

from emulator.app import EmulatorState

API = "/api/v1"


async def test_auth_accepts_oauth_and_apikey_and_rejects_the_rest(emu: EmulatorState, token: str) -> None:
    async with aiohttp.ClientSession(emu.url) as s:
        for header, expected in [(f"OAuth {token}", 200), (f"ApiKey {token}", 200),
                                 ("OAuth wrong", 401), (f"Bearer {token}", 401), (None, 401)]:
            headers = {"Authorization": header} if header else {}
            async with s.get(API + "/requester", headers=headers) as r:
                assert r.status == expected, header
                assert r.version == aiohttp.HttpVersion11
                body = await r.json()
                if expected == 401:
                    assert body["code"] == "AUTHENTICATION_ERROR"
                    assert set(body) >= {"request_id", "code", "message"}
        async with s.get("/_emulator/state") as r:        # the admin API needs the token too
            assert r.status == 401


async def test_unknown_route_and_missing_objects_are_json_404(api: Any) -> None:
    for path in ["/no-such-thing", "/pools/999999", "/tasks/0000000001--00", "/assignments/x",
                 "/operations/5e0b2d1c-0000-4000-8000-000000000000", "/user-bonuses/x",
                 "/attachments/x", "/projects/1", "/skills/1", "/user-skills/1",
                 "/user-restrictions/1"]:
        status, body = await api.get(path)
        assert status == 404, path
        assert body["code"] == "DOES_NOT_EXIST" and body["request_id"]
    status, body = await api.call("DELETE", "/pools/1")
    assert status == 405 and body["code"] == "METHOD_NOT_ALLOWED"
    async with api.session.post(API + "/projects", data=b"{not json",
                                headers={"Content-Type": "application/json"}) as r:
        assert r.status == 400 and (await r.json())["code"] == "VALIDATION_ERROR"


async def test_requester_balance_is_a_number(api: Any) -> None:
    status, body = await api.get("/requester")
    assert status == 200
    assert body["balance"] == Decimal("1000.00") and body["id"]


async def test_project_keeps_task_spec_and_is_searchable(api: Any) -> None:
    spec = {"input_spec": {"image": {"type": "url"}}, "view_spec": {"type": "tb", "config": "{}"}}
    status, project = await api.post("/projects", {"public_name": "P", "task_spec": spec})
    assert status == 201 and project["task_spec"] == spec and project["status"] == "ACTIVE"
    status, got = await api.get(f"/projects/{project['id']}")
    assert got == project
    status, found = await api.get("/projects", id_gte=project["id"])
    assert [p["id"] for p in found["items"]] == [project["id"]] and found["has_more"] is False


async def test_pool_lifecycle_operations_and_204s(api: Any, make_pool) -> None:
    pool = await make_pool(open_it=False)
    assert pool["status"] == "CLOSED" and pool["created"].count(".") == 1
    pid = pool["id"]
    status, op = await api.post(f"/pools/{pid}/open")
    assert status == 202 and op["type"] == "POOL.OPEN" and op["status"] == "SUCCESS"
    assert op["parameters"] == {"pool_id": pid}
    status, again = await api.get(f"/operations/{op['id']}")
    assert again == op
    assert (await api.post(f"/pools/{pid}/open"))[0] == 204
    status, got = await api.get(f"/pools/{pid}")
    assert got["status"] == "OPEN" and got["last_started"]
    status, body = await api.post(f"/pools/{pid}/archive")
    assert status == 409 and body["code"] == "POOL_INAPPROPRIATE_STATUS"
    status, op = await api.post(f"/pools/{pid}/close-for-update")
    assert status == 202 and op["type"] == "POOL.CLOSE"
    assert (await api.get(f"/pools/{pid}"))[1]["last_close_reason"] == "FOR_UPDATE"
    assert (await api.post(f"/pools/{pid}/close"))[0] == 204
    assert (await api.post(f"/pools/{pid}/open"))[0] == 202
    status, op = await api.post(f"/pools/{pid}/close")
    assert status == 202 and op["type"] == "POOL.CLOSE"
    status, op = await api.post(f"/pools/{pid}/archive")
    assert status == 202 and op["type"] == "POOL.ARCHIVE"
    assert (await api.post(f"/pools/{pid}/archive"))[0] == 204
    status, body = await api.post(f"/pools/{pid}/open")
    assert status == 409 and body["code"] == "POOL_INAPPROPRIATE_STATUS"
    status, ops = await api.get("/operations", type="POOL.CLOSE")
    assert len(ops["items"]) == 2 and all(o["type"] == "POOL.CLOSE" for o in ops["items"])


async def test_pool_patch_put_and_search(api: Any, make_pool) -> None:
    pools = [await make_pool(open_it=(i % 2 == 0)) for i in range(5)]
    status, patched = await api.patch(f"/pools/{pools[0]['id']}", {"priority": 42})
    assert status == 200 and patched["priority"] == 42
    status, body = await api.patch(f"/pools/{pools[0]['id']}", {"priority": 101})
    assert status == 400 and body["payload"]["priority"]["code"] == "VALUE_GREATER_THAN_MAX"
    full = dict(pools[1], private_name="renamed", auto_accept_period_day=3)
    status, updated = await api.put(f"/pools/{pools[1]['id']}", full)
    assert updated["private_name"] == "renamed" and updated["auto_accept_period_day"] == 3
    assert updated["status"] == "CLOSED"                 # read-only fields are kept
    status, found = await api.get("/pools", status="OPEN", sort="-id")
    assert [p["id"] for p in found["items"]] == [pools[4]["id"], pools[2]["id"], pools[0]["id"]]
    status, page = await api.get("/pools", limit=2, sort="id")
    assert [p["id"] for p in page["items"]] == [pools[0]["id"], pools[1]["id"]] and page["has_more"]
    status, page = await api.get("/pools", limit=2, sort="id", id_gt=pools[3]["id"])
    assert [p["id"] for p in page["items"]] == [pools[4]["id"]] and not page["has_more"]
    status, found = await api.get("/pools", project_id=pools[2]["project_id"])
    assert [p["id"] for p in found["items"]] == [pools[2]["id"]]
    status, body = await api.get("/pools", limit=301)
    assert status == 400 and body["code"] == "VALIDATION_ERROR"
    status, body = await api.get("/pools", sort="private_name")
    assert status == 400 and "sort" in body["payload"]
    status, body = await api.post("/pools", {"project_id": "999999"})
    assert status == 400 and body["payload"]["project_id"]["code"] == "ENTITY_DOES_NOT_EXIST"


async def test_skills_and_user_skills(api: Any) -> None:
    status, skill = await api.post("/skills", {"name": "visit", "hidden": True})
    assert status == 201 and skill["name"] == "visit" and skill["hidden"] is True
    assert (await api.get(f"/skills/{skill['id']}"))[1] == skill
    assert (await api.get("/skills", name="visit"))[1]["items"] == [skill]
    status, us = await api.put("/user-skills", {"skill_id": skill["id"], "user_id": "w1",
                                                "value": Decimal("85.42")})
    assert status == 201
    assert us["value"] == 85 and us["exact_value"] == Decimal("85.42")
    assert set(us) == {"id", "skill_id", "user_id", "value", "exact_value", "created", "modified"}
    status, again = await api.put("/user-skills", {"skill_id": skill["id"], "user_id": "w1",
                                                   "value": 60})
    assert again["id"] == us["id"] and again["value"] == 60
    assert (await api.get(f"/user-skills/{us['id']}"))[1]["exact_value"] == 60
    status, found = await api.get("/user-skills", user_id="w1", skill_id=skill["id"])
    assert [u["id"] for u in found["items"]] == [us["id"]]
    status, body = await api.put("/user-skills", {"skill_id": "999", "user_id": "w1", "value": 1})
    assert status == 400 and body["payload"]["skill_id"]["code"] == "ENTITY_DOES_NOT_EXIST"
    assert (await api.delete(f"/user-skills/{us['id']}"))[0] == 204
    assert (await api.get(f"/user-skills/{us['id']}"))[0] == 404
    assert (await api.delete(f"/user-skills/{us['id']}"))[0] == 404


async def test_user_restrictions(api: Any, make_pool) -> None:
    pool = await make_pool()
    status, r = await api.put("/user-restrictions", {"scope": "POOL", "user_id": "cheater",
                                                     "pool_id": pool["id"],
                                                     "private_comment": "fake photos"})
    assert status == 201 and r["scope"] == "POOL" and r["id"] and r["created"]
    assert (await api.get(f"/user-restrictions/{r['id']}"))[1] == r
    status, found = await api.get("/user-restrictions", user_id="cheater", scope="POOL")
    assert [x["id"] for x in found["items"]] == [r["id"]]
    status, body = await api.put("/user-restrictions", {"scope": "NOWHERE", "user_id": "u"})
    assert status == 400 and body["payload"]["scope"]["code"] == "UNKNOWN_ENUM_VALUE"
    assert (await api.delete(f"/user-restrictions/{r['id']}"))[0] == 204
    assert (await api.get("/user-restrictions", user_id="cheater"))[1]["items"] == []


async def test_request_log_counts_by_route_pattern(api: Any, make_pool) -> None:
    pool = await make_pool()
    await api.get(f"/pools/{pool['id']}")
    await api.get(f"/pools/{pool['id']}")
    status, log = await api.get("/_emulator/requests")
    assert log["by_route"]["GET /api/v1/pools/{id}"] == 2
    assert log["by_route"]["POST /api/v1/pools/{id}/open"] == 1
    assert log["total"] >= 5


async def test_crowd_can_be_paused_without_a_scenario(api: Any) -> None:
    status, body = await api.post("/_emulator/crowd", {"running": False})
    assert status == 200 and body == {"running": False}
    status, state = await api.get("/_emulator/state")
    assert state["crowd_running"] is False and state["crowd"] is None
    status, body = await api.get("/_emulator/truth")
    assert status == 409 and body["code"] == "NO_SCENARIO"
    status, body = await api.post("/_emulator/crowd", {"running": "yes"})
    assert status == 400
