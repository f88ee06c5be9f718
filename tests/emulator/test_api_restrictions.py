"""User restrictions over HTTP (emulator/api/restrictions.py): PUT, GET, search, DELETE,
Toloka-shaped validation errors, persistence across a restart, and the store's answer to
"who may take no new task in this pool" (scopes, expiry)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from emulator.app import start_emulator
from emulator.ids import utcnow
from emulator.store import Store

MakePool = Callable[..., Awaitable[dict[str, Any]]]


async def test_put_get_and_delete_a_pool_restriction(api: Any, make_pool: MakePool) -> None:
    pool = await make_pool()
    status, r = await api.put("/user-restrictions", {"scope": "POOL", "user_id": "cheater", "pool_id": pool["id"],
                                                     "private_comment": "fake photos"})
    assert status == 201
    assert {k: r[k] for k in ("scope", "user_id", "pool_id", "private_comment")} == {
        "scope": "POOL", "user_id": "cheater", "pool_id": pool["id"], "private_comment": "fake photos"}
    assert r["id"] and r["created"] and "project_id" not in r and "will_expire" not in r
    assert await api.get(f"/user-restrictions/{r['id']}") == (200, r)
    assert (await api.delete(f"/user-restrictions/{r['id']}"))[0] == 204
    status, body = await api.get(f"/user-restrictions/{r['id']}")
    assert status == 404 and body["code"] == "DOES_NOT_EXIST"
    status, body = await api.delete(f"/user-restrictions/{r['id']}")
    assert status == 404 and body["code"] == "DOES_NOT_EXIST"


async def test_project_and_all_projects_scopes_and_will_expire(api: Any, make_pool: MakePool) -> None:
    pool = await make_pool()
    status, r = await api.put("/user-restrictions", {"scope": "PROJECT", "user_id": "u1",
                                                     "project_id": int(pool["project_id"]),
                                                     "pool_id": pool["id"],  # not part of a PROJECT restriction
                                                     "will_expire": "2030-01-02T03:04:05.678901Z"})
    assert status == 201 and r["project_id"] == pool["project_id"] and "pool_id" not in r
    assert r["will_expire"] == "2030-01-02T03:04:05.678"
    status, everywhere = await api.put("/user-restrictions", {"scope": "ALL_PROJECTS", "user_id": "u1"})
    assert status == 201 and everywhere["scope"] == "ALL_PROJECTS"
    assert "pool_id" not in everywhere and "project_id" not in everywhere


async def test_a_repeated_put_updates_the_same_restriction(api: Any, make_pool: MakePool) -> None:
    pool = await make_pool()
    body = {"scope": "POOL", "user_id": "u1", "pool_id": pool["id"], "private_comment": "first"}
    status, first = await api.put("/user-restrictions", body)
    assert status == 201
    status, again = await api.put("/user-restrictions", {**body, "private_comment": "second",
                                                         "will_expire": "2031-01-01T00:00:00"})
    assert status == 200 and again["id"] == first["id"] and again["created"] == first["created"]
    assert again["private_comment"] == "second" and again["will_expire"] == "2031-01-01T00:00:00.000"
    status, other_user = await api.put("/user-restrictions", {**body, "user_id": "u2"})
    assert status == 201 and other_user["id"] != first["id"]
    status, found = await api.get("/user-restrictions", user_id="u1")
    assert [x["id"] for x in found["items"]] == [first["id"]]


@pytest.mark.parametrize(("body", "field", "code"), [
    ({"scope": "POOL", "pool_id": "{pool}"}, "user_id", "VALUE_REQUIRED"),
    ({"scope": "POOL", "user_id": "", "pool_id": "{pool}"}, "user_id", "VALUE_REQUIRED"),
    ({"user_id": "u"}, "scope", "VALUE_REQUIRED"),
    ({"scope": "NOWHERE", "user_id": "u"}, "scope", "UNKNOWN_ENUM_VALUE"),
    ({"scope": "SYSTEM", "user_id": "u"}, "scope", "VALUE_NOT_ALLOWED"),
    ({"scope": "POOL", "user_id": "u"}, "pool_id", "VALUE_REQUIRED"),
    ({"scope": "POOL", "user_id": "u", "project_id": "{project}"}, "pool_id", "VALUE_REQUIRED"),
    ({"scope": "POOL", "user_id": "u", "pool_id": "999999"}, "pool_id", "ENTITY_DOES_NOT_EXIST"),
    ({"scope": "PROJECT", "user_id": "u"}, "project_id", "VALUE_REQUIRED"),
    ({"scope": "PROJECT", "user_id": "u", "project_id": "999999"}, "project_id", "ENTITY_DOES_NOT_EXIST"),
    ({"scope": "POOL", "user_id": "u", "pool_id": "{pool}", "private_comment": "x" * 500},
     "private_comment", "VALUE_NOT_ALLOWED"),
    ({"scope": "POOL", "user_id": "u", "pool_id": "{pool}", "will_expire": "next week"},
     "will_expire", "VALUE_NOT_ALLOWED"),
])
async def test_refused_puts_are_400_validation_errors(api: Any, make_pool: MakePool, body: dict[str, Any],
                                                       field: str, code: str) -> None:
    pool = await make_pool()
    filled = {k: v.format(pool=pool["id"], project=pool["project_id"]) if isinstance(v, str) else v
              for k, v in body.items()}
    status, error = await api.put("/user-restrictions", filled)
    assert status == 400 and error["code"] == "VALIDATION_ERROR" and error["request_id"]
    assert error["payload"][field]["code"] == code, error
    assert (await api.get("/user-restrictions"))[1]["items"] == []   # nothing stored


async def test_a_body_that_is_no_object_is_refused(api: Any) -> None:
    for body in (["POOL"], "POOL"):
        status, error = await api.put("/user-restrictions", body)
        assert status == 400 and error["code"] == "VALIDATION_ERROR"


async def test_search_filters_sorts_and_pages(api: Any, make_pool: MakePool) -> None:
    first, second = await make_pool(), await make_pool()
    made = []
    for user in ("a", "b", "c"):
        for pool in (first, second):
            made.append((await api.put("/user-restrictions", {"scope": "POOL", "user_id": user,
                                                              "pool_id": pool["id"]}))[1])
    made.append((await api.put("/user-restrictions", {"scope": "PROJECT", "user_id": "a",
                                                      "project_id": first["project_id"]}))[1])
    ids = [r["id"] for r in made]
    assert ids == sorted(ids)

    async def found(**params: Any) -> list[str]:
        status, body = await api.get("/user-restrictions", **params)
        assert status == 200 and body["has_more"] is False, body
        return [r["id"] for r in body["items"]]

    assert await found() == ids
    assert await found(user_id="a") == [ids[0], ids[1], ids[6]]
    assert await found(user_id="a", scope="POOL") == [ids[0], ids[1]]
    assert await found(pool_id=second["id"]) == [ids[1], ids[3], ids[5]]
    assert await found(project_id=first["project_id"]) == [ids[6]]
    assert await found(scope="SYSTEM") == []
    assert await found(sort="-id") == ids[::-1]
    assert await found(id_gt=ids[4]) == ids[5:]
    # paging as the client does it: sort=id, limit, has_more, id_gt
    status, page = await api.get("/user-restrictions", sort="id", limit=3)
    assert [r["id"] for r in page["items"]] == ids[:3] and page["has_more"] is True
    status, page = await api.get("/user-restrictions", sort="id", limit=3, id_gt=ids[5])
    assert [r["id"] for r in page["items"]] == ids[6:] and page["has_more"] is False
    for bad in ({"limit": 301}, {"limit": 0}, {"sort": "user_id"}, {"created_gt": "yesterday"}):
        status, error = await api.get("/user-restrictions", **bad)
        assert status == 400 and error["code"] == "VALIDATION_ERROR", bad


async def test_restrictions_survive_a_restart(tmp_path: Path) -> None:
    db = tmp_path / "emu.sqlite"
    now = utcnow()
    async with start_emulator(db, token="t", seed=1) as emu:
        project = emu.store.create_project({"public_name": "p"}, now)
        pool = emu.store.create_pool({"project_id": project["id"]}, now)
        kept, _ = emu.store.put_restriction({"scope": "POOL", "user_id": "u1", "pool_id": pool["id"]}, now)
        gone, _ = emu.store.put_restriction({"scope": "PROJECT", "user_id": "u2", "project_id": project["id"]}, now)
        assert emu.store.delete_restriction(gone["id"])
    async with start_emulator(db, token="t", seed=1) as emu:
        assert emu.store.get_restriction(kept["id"]) == kept and emu.store.get_restriction(gone["id"]) is None
        assert emu.store.restricted_users(pool["id"], now) == {"u1"}
        again, created = emu.store.put_restriction({"scope": "POOL", "user_id": "u1", "pool_id": pool["id"]}, now)
        assert not created and again["id"] == kept["id"]   # the index came back too


def test_who_is_restricted_in_a_pool(tmp_path: Path) -> None:
    store = Store(tmp_path / "s.sqlite")
    try:
        now = datetime(2026, 5, 1, 12, 0, 0)
        project, other_project = (store.create_project({"public_name": n}, now) for n in ("p", "q"))
        pool, sibling = (store.create_pool({"project_id": project["id"]}, now) for _ in range(2))
        elsewhere = store.create_pool({"project_id": other_project["id"]}, now)
        later = "2026-05-01T13:00:00.000"
        for doc in ({"scope": "POOL", "user_id": "pool-only", "pool_id": pool["id"]},
                    {"scope": "PROJECT", "user_id": "project-wide", "project_id": project["id"]},
                    {"scope": "ALL_PROJECTS", "user_id": "everywhere"},
                    {"scope": "POOL", "user_id": "for-an-hour", "pool_id": pool["id"], "will_expire": later}):
            store.put_restriction(doc, now)
        assert store.restricted_users(pool["id"], now) == {"pool-only", "project-wide", "everywhere", "for-an-hour"}
        assert store.restricted_users(sibling["id"], now) == {"project-wide", "everywhere"}
        assert store.restricted_users(elsewhere["id"], now) == {"everywhere"}
        assert store.restricted_users(pool["id"], now + timedelta(hours=1)) == {"pool-only", "project-wide",
                                                                              "everywhere"}
        assert store.is_restricted("for-an-hour", pool["id"], now)
        assert not store.is_restricted("for-an-hour", pool["id"], now + timedelta(hours=2))
        assert store.restricted_users("no-such-pool", now) == frozenset()

        (task,) = store.create_tasks(pool["id"], [{"input_values": {}, "overlap": 5}], now)
        assert store.available_tasks(pool["id"], "pool-only", 10) == [task]     # no `now`: not looked at
        assert store.available_tasks(pool["id"], "pool-only", 10, now=now) == []
        assert store.available_tasks(pool["id"], "someone", 10, now=now) == [task]
        assert store.available_tasks(pool["id"], "for-an-hour", 10, now=now + timedelta(hours=1)) == [task]
        (lifted,) = (r for r in store.restrictions.values() if r["user_id"] == "pool-only")
        assert store.delete_restriction(lifted["id"])
        assert store.available_tasks(pool["id"], "pool-only", 10, now=now) == [task]
    finally:
        store.close()
