"""Assignment search (filters, sorts, paging, time cursors), review transitions, attachments."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from emulator.ids import fmt_time, utcnow

EPOCH = "1970-01-01T00:00:00"


async def _page_by_id(api: Any, pool_id: str, limit: int) -> list[str]:
    """toloka-kit's get_assignments: sort=id, then id_gt=<last id> while has_more."""
    ids: list[str] = []
    params: dict[str, Any] = {"pool_id": pool_id, "sort": "id", "limit": limit}
    while True:
        status, page = await api.get("/assignments", **params)
        assert status == 200
        ids += [a["id"] for a in page["items"]]
        if not page["has_more"]:
            return ids
        params["id_gt"] = page["items"][-1]["id"]


async def _submitted_cursor(api: Any, pool_id: str, limit: int, lte: str) -> list[str]:
    """toloka-kit's AssignmentCursor on `submitted`, including its same-timestamp sub-cursor."""
    out: list[str] = []
    seen: set[str] = set()
    bound = ("submitted_gte", EPOCH)
    while True:
        _, page = await api.get("/assignments", pool_id=pool_id, sort="submitted", limit=limit,
                                submitted_lte=lte, **{bound[0]: bound[1]})
        items = page["items"]
        if not items:
            return out
        if len({a["submitted"] for a in items}) == 1 and page["has_more"]:
            stamp, last_id = items[0]["submitted"], None
            while True:          # a whole page shares one time: walk it by id
                params = {"pool_id": pool_id, "submitted_gte": stamp, "submitted_lte": stamp,
                          "sort": "id", "limit": limit}
                if last_id:
                    params["id_gt"] = last_id
                _, sub = await api.get("/assignments", **params)
                out += [a["id"] for a in sub["items"] if a["id"] not in seen]
                seen.update(a["id"] for a in sub["items"])
                if not sub["has_more"]:
                    break
                last_id = sub["items"][-1]["id"]
            bound, seen = ("submitted_gt", stamp), set()
            continue
        out += [a["id"] for a in items if a["id"] not in seen]
        seen = {a["id"] for a in items}
        bound = ("submitted_gte", items[-1]["submitted"])
        if not page["has_more"]:
            return out


async def test_paging_2500_assignments_by_id_and_by_submitted_cursor(
        api: Any, emu: Any, make_pool, submitted) -> None:
    pool = await make_pool()
    made = submitted(emu, pool["id"], 2500, per_timestamp=7)
    by_creation = [a["id"] for a in made]
    assert by_creation == sorted(by_creation)
    assert await _page_by_id(api, pool["id"], 1000) == by_creation
    assert await _page_by_id(api, pool["id"], 333) == by_creation
    status, first = await api.get("/assignments", pool_id=pool["id"])
    assert len(first["items"]) == 50 and first["has_more"]        # default limit
    lte = fmt_time(utcnow())
    expected = [a["id"] for a in sorted(made, key=lambda a: (a["submitted"], a["id"]))]
    assert await _submitted_cursor(api, pool["id"], 1000, lte) == expected
    assert await _submitted_cursor(api, pool["id"], 100, lte) == expected
    # A window on submitted with microsecond bounds (as the client sends them).
    lo, hi = made[700]["submitted"], made[1400]["submitted"]
    status, window = await api.get("/assignments", pool_id=pool["id"], sort="submitted",
                                   limit=2000, submitted_gte=lo + "000",
                                   submitted_lte=hi + "999")
    assert [a["id"] for a in window["items"]] == [
        a["id"] for a in made if lo <= a["submitted"] <= hi]
    status, window = await api.get("/assignments", pool_id=pool["id"], sort="submitted",
                                   submitted_gt=lo, submitted_lt=hi)
    assert all(lo < a["submitted"] < hi for a in window["items"])


async def test_cursor_walks_a_page_that_shares_one_timestamp(
        api: Any, emu: Any, make_pool, submitted) -> None:
    pool = await make_pool()
    made = submitted(emu, pool["id"], 600, per_timestamp=250)
    expected = [a["id"] for a in sorted(made, key=lambda a: (a["submitted"], a["id"]))]
    assert await _submitted_cursor(api, pool["id"], 100, fmt_time(utcnow())) == expected


async def test_filters_sorts_and_nulls(api: Any, emu: Any, make_pool, submitted) -> None:
    pool = await make_pool()
    made = submitted(emu, pool["id"], 12, users=3)
    now = utcnow()
    store = emu.store
    store.review_assignment(made[0]["id"], "ACCEPTED", "ok", now)
    store.review_assignment(made[1]["id"], "REJECTED", "bad", now + timedelta(seconds=1))
    store.review_assignment(made[2]["id"], "ACCEPTED", "ok", now + timedelta(seconds=2))
    (task,) = store.create_tasks(pool["id"], [{"input_values": {"image": "i"}, "overlap": 2}], now)
    active = store.create_assignment(pool["id"], "user9", [task["id"]], now)
    pid = pool["id"]

    async def ids(**params: Any) -> list[str]:
        status, page = await api.get("/assignments", pool_id=pid, **params)
        assert status == 200, page
        return [a["id"] for a in page["items"]]

    assert await ids(status="ACCEPTED,REJECTED") == [m["id"] for m in made[:3]]
    assert await ids(status="ACTIVE") == [active["id"]]
    assert await ids(status="SUBMITTED,ACTIVE", limit=100) == [m["id"] for m in made[3:]] + [
        active["id"]]
    assert await ids(user_id="user1") == [m["id"] for m in made if m["user_id"] == "user1"]
    # Range filters exclude nulls: only reviewed ones have `accepted`/`rejected`.
    assert await ids(accepted_gte=EPOCH) == [made[0]["id"], made[2]["id"]]
    assert await ids(rejected_lt="2999-01-01T00:00:00") == [made[1]["id"]]
    assert await ids(sort="-accepted", accepted_gt=EPOCH) == [made[2]["id"], made[0]["id"]]
    assert await ids(sort="-submitted", limit=3) == [m["id"] for m in made[::-1][:3]]
    status, body = await api.get("/assignments", pool_id=pid, sort="user_id")
    assert status == 400 and body["code"] == "VALIDATION_ERROR"
    assert await ids(sort="-created,-id", limit=2) == [active["id"], made[-1]["id"]]
    # Comma lists: ties on the first key are ordered by the second (then by id).
    twin = store.create_assignment(pool["id"], "user8", [task["id"]], now)
    assert twin["created"] == active["created"]
    assert await ids(sort="-created,-id", limit=2) == [twin["id"], active["id"]]
    assert await ids(sort="-created,id", limit=2) == [active["id"], twin["id"]]
    assert await ids(sort="-created", limit=2) == [active["id"], twin["id"]]   # id tie-break
    assert await ids(created_gte=made[5]["created"], created_lte=made[5]["created"]) == [
        made[5]["id"]]
    # task_id and task_suite_id narrow without a pool_id.
    status, page = await api.get("/assignments", task_id=made[4]["tasks"][0]["id"])
    assert [a["id"] for a in page["items"]] == [made[4]["id"]]
    status, page = await api.get("/assignments", task_suite_id=made[4]["task_suite_id"])
    assert [a["id"] for a in page["items"]] == [made[4]["id"]]
    status, body = await api.get("/assignments", status="SUBMITTED")
    assert status == 400 and "pool_id" in body["payload"]
    status, body = await api.get("/assignments", pool_id=pid, limit=100001)
    assert status == 400 and body["payload"]["limit"]["code"] == "VALUE_GREATER_THAN_MAX"
    assert (await api.get("/assignments", pool_id=pid, limit=100000))[0] == 200
    status, body = await api.get("/assignments", pool_id=pid, submitted_gte="yesterday")
    assert status == 400 and "submitted_gte" in body["payload"]
    # Dates with 0..6 fractional digits and a trailing Z all parse.
    for stamp in ["2000-01-01T00:00:00", "2000-01-01T00:00:00.1", "2000-01-01T00:00:00.123456",
                  "2000-01-01T00:00:00Z", "2000-01-01T00:00:00.5+00:00"]:
        assert len(await ids(submitted_gte=stamp, limit=100)) == 12


async def test_assignment_shape_and_review_transitions(api: Any, emu: Any, make_pool,
                                                       submitted) -> None:
    pool = await make_pool()
    a, b, c = submitted(emu, pool["id"], 3)
    status, got = await api.get(f"/assignments/{a['id']}")
    assert status == 200 and got["status"] == "SUBMITTED" and got["reward"] == pool[
        "reward_per_assignment"]
    assert set(got["tasks"][0]) == {"id", "pool_id", "input_values", "origin_task_id"}
    assert got["solutions"] == [{"output_values": {"result": "OK"}}]
    assert got["created"][-4] == "." and got["accepted"] is None

    status, body = await api.patch(f"/assignments/{a['id']}", {"status": "REJECTED"})
    assert status == 400 and body["payload"]["public_comment"]["code"] == "VALUE_REQUIRED"
    status, body = await api.patch(f"/assignments/{a['id']}",
                                   {"status": "REJECTED", "public_comment": "  "})
    assert status == 400
    status, rejected = await api.patch(f"/assignments/{a['id']}",
                                       {"status": "REJECTED", "public_comment": "blurry"})
    assert status == 200 and rejected["status"] == "REJECTED" and rejected["rejected"]
    assert rejected["public_comment"] == "blurry" and rejected["tasks"] == got["tasks"]
    status, body = await api.patch(f"/assignments/{a['id']}",
                                   {"status": "REJECTED", "public_comment": "again"})
    assert status == 409 and body["code"] == "INAPPROPRIATE_STATUS"
    assert body["payload"]["appropriate_statuses"] == ["SUBMITTED"]
    status, accepted = await api.patch(f"/assignments/{a['id']}",
                                       {"status": "ACCEPTED", "public_comment": "sorry"})
    assert status == 200 and accepted["status"] == "ACCEPTED" and accepted["accepted"]
    status, body = await api.patch(f"/assignments/{a['id']}", {"status": "ACCEPTED"})
    assert status == 409 and body["payload"]["appropriate_statuses"] == ["SUBMITTED", "REJECTED"]
    status, body = await api.patch(f"/assignments/{b['id']}", {"status": "SUBMITTED"})
    assert status == 400 and body["payload"]["status"]["code"] == "VALUE_NOT_ALLOWED"
    status, done = await api.patch(f"/assignments/{b['id']}", {"status": "ACCEPTED"})
    assert status == 200 and done["status"] == "ACCEPTED"
    (task,) = emu.store.create_tasks(pool["id"], [{"input_values": {"image": "i"}}], utcnow())
    active = emu.store.create_assignment(pool["id"], "u", [task["id"]], utcnow())
    status, body = await api.patch(f"/assignments/{active['id']}", {"status": "ACCEPTED"})
    assert status == 409 and body["code"] == "INAPPROPRIATE_STATUS"
    status, body = await api.patch(f"/assignments/{c['id']}",
                                   {"status": "ACCEPTED", "public_comment": "x" * 2049})
    assert status == 400


async def test_attachments_search_metadata_and_download(api: Any, emu: Any, make_pool,
                                                        submitted) -> None:
    pool = await make_pool()
    a, b = submitted(emu, pool["id"], 2, users=2)
    jpeg = b"\xff\xd8\xff\xe0fake-jpeg-bytes\xff\xd9"
    att = emu.store.add_attachment(a["id"], "front.jpg", "image/jpeg", jpeg, utcnow())
    emu.store.add_attachment(b["id"], "other.png", "image/png", b"png", utcnow())
    status, meta = await api.get(f"/attachments/{att['id']}")
    assert meta["attachment_type"] == "ASSIGNMENT_ATTACHMENT" and meta["media_type"] == "image/jpeg"
    assert meta["details"] == {"user_id": a["user_id"], "assignment_id": a["id"],
                               "pool_id": pool["id"]}
    status, found = await api.get("/attachments", assignment_id=a["id"],
                                  type="ASSIGNMENT_ATTACHMENT", sort="id", limit=100)
    assert [x["id"] for x in found["items"]] == [att["id"]]
    status, found = await api.get("/attachments", pool_id=pool["id"])
    assert len(found["items"]) == 2
    status, found = await api.get("/attachments", user_id=b["user_id"], name="other.png")
    assert len(found["items"]) == 1
    status, body = await api.get("/attachments", pool_id=pool["id"], limit=101)
    assert status == 400
    async with api.session.get(f"/api/v1/attachments/{att['id']}/download") as resp:
        assert resp.status == 200 and resp.content_type == "image/jpeg"
        assert await resp.read() == jpeg
