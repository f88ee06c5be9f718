"""The emulator Store on its own: persistence, id order, task availability, auto-accept."""

from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path

from emulator.store import Store, json_dumps, json_loads

T0 = datetime(2026, 11, 22, 12, 0, 0, 123456)


def _pool(store: Store, **extra: object) -> dict:
    project = store.create_project({"public_name": "p", "task_spec": {"input_spec": {}}}, T0)
    return store.create_pool({"project_id": project["id"], "private_name": "pool",
                              "reward_per_assignment": Decimal("0.05"), **extra}, T0)


def test_restart_keeps_every_object(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    store = Store(db)
    pool = _pool(store)
    store.open_pool(pool["id"], T0)
    skill = store.create_skill("visit", T0)
    store.set_user_skill(skill["id"], "w1", 85.42, T0)
    tasks = store.create_tasks(pool["id"], [{"input_values": {"x": 1}, "overlap": 2}], T0)
    a = store.create_assignment(pool["id"], "w1", [tasks[0]["id"]], T0)
    att = store.add_attachment(a["id"], "p.jpg", "image/jpeg", b"\xff\xd8jpeg", T0)
    store.submit_assignment(a["id"], [{"output_values": {"photo": att["id"]}}], T0)
    store.create_bonuses([{"user_id": "w1", "amount": Decimal("0.015"),
                           "assignment_id": a["id"]}], T0)
    store.put_truth("worker", "w1", {"kind": "honest"})
    store.kv_set("scenario", {"name": "demo"})
    store.close()

    again = Store(db)
    assert again.get_pool(pool["id"])["status"] == "OPEN"
    assert again.get_task(tasks[0]["id"])["remaining_overlap"] == 1
    got = again.get_assignment(a["id"])
    assert got["status"] == "SUBMITTED" and got["reward"] == Decimal("0.05")
    assert again.attachment_bytes(att["id"]) == b"\xff\xd8jpeg"
    (bonus,) = again.bonuses(user_id="w1")
    assert bonus["amount"] == Decimal("0.015") and got["bonus_ids"] == [bonus["id"]]
    assert again.get_truth("worker", "w1") == {"kind": "honest"}
    assert again.kv_get("scenario") == {"name": "demo"}
    us = list(again.user_skills.values())[0]
    assert us["value"] == 85 and us["exact_value"] == Decimal("85.42")
    # New ids after a restart still sort after the old ones.
    more = again.create_tasks(pool["id"], [{"input_values": {"x": 2}, "overlap": 1}], T0)
    assert more[0]["id"] > tasks[0]["id"]
    again.close()


def test_ids_sort_in_creation_order_even_if_clock_goes_back(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.sqlite")
    pool = _pool(store)
    times = [T0, T0 + timedelta(seconds=5), T0 - timedelta(hours=1), T0 + timedelta(days=1)]
    ids = [store.create_tasks(pool["id"], [{"input_values": {}, "overlap": 1}], t)[0]["id"]
           for t in times]
    assert ids == sorted(ids) and len(set(ids)) == 4
    prefix, body = ids[0].split("--")
    assert prefix == f"{int(pool['id']):010x}" and len(body) == 24
    assert int(body[:8], 16) == int((T0 - datetime(1970, 1, 1)).total_seconds())
    bonus_ids = [store.create_bonuses([{"user_id": "u", "amount": Decimal(1)}], t)[0]["id"]
                 for t in times]
    assert bonus_ids == sorted(bonus_ids)
    p2 = store.create_pool({"project_id": pool["project_id"]}, T0)
    assert int(p2["id"]) > int(pool["id"]) and len(p2["id"]) == len(pool["id"])
    store.close()


def test_available_tasks_rules(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.sqlite")
    pool = _pool(store, defaults={"default_overlap_for_new_tasks": 2})
    t_default, t_one, t_unavail, t_reserved, t_inf = store.create_tasks(pool["id"], [
        {"input_values": {"n": 0}},
        {"input_values": {"n": 1}, "overlap": 1},
        {"input_values": {"n": 2}, "overlap": 5, "unavailable_for": ["w1"]},
        {"input_values": {"n": 3}, "overlap": 5, "reserved_for": ["w2"]},
        {"input_values": {"n": 4}, "infinite_overlap": True},
    ], T0)
    assert (t_default["overlap"], t_default["infinite_overlap"]) == (2, False)
    assert (t_inf["overlap"], t_inf["infinite_overlap"]) == (None, True)

    def ids(user: str) -> list[str]:
        return [t["id"] for t in store.available_tasks(pool["id"], user, 10)]

    assert ids("w1") == [t_default["id"], t_one["id"], t_inf["id"]]
    assert ids("w2") == [t_default["id"], t_one["id"], t_unavail["id"], t_reserved["id"],
                         t_inf["id"]]
    assert ids("w1")[:1] == [t["id"] for t in store.available_tasks(pool["id"], "w1", 1)]
    a = store.create_assignment(pool["id"], "w1", [t_one["id"]], T0)
    assert t_one["id"] not in ids("w2")           # overlap used up
    assert t_one["id"] not in ids("w1")           # w1 already has it
    store.skip_assignment(a["id"], T0)
    assert t_one["id"] in ids("w2")               # overlap given back on skip
    assert t_one["id"] not in ids("w1")           # but w1 does not get it again
    store.create_assignment(pool["id"], "w3", [t_inf["id"]], T0)
    assert t_inf["id"] in ids("w2")
    store.close()


def test_auto_accept_scales_with_speed(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.sqlite")
    pool = _pool(store, auto_accept_period_day=1)
    other = _pool(store)
    (task,) = store.create_tasks(pool["id"], [{"input_values": {}, "overlap": 3}], T0)
    (task2,) = store.create_tasks(other["id"], [{"input_values": {}, "overlap": 3}], T0)
    a = store.create_assignment(pool["id"], "w1", [task["id"]], T0)
    b = store.create_assignment(other["id"], "w1", [task2["id"]], T0)
    store.submit_assignment(a["id"], [{"output_values": {}}], T0)
    store.submit_assignment(b["id"], [{"output_values": {}}], T0)
    # speed 86400: a simulated day is one real second.
    assert store.auto_accept_due(T0 + timedelta(seconds=0.5), 86400) == []
    assert store.auto_accept_due(T0 + timedelta(seconds=1.5), 86400) == [a["id"]]
    assert store.get_assignment(a["id"])["status"] == "ACCEPTED"
    assert store.get_assignment(a["id"])["accepted"] is not None
    assert store.get_assignment(b["id"])["status"] == "SUBMITTED"   # pool without auto-accept
    assert store.auto_accept_due(T0 + timedelta(days=9), 86400) == []
    # A submission still waiting at a restart is auto-accepted by the restarted store.
    (task3,) = store.create_tasks(pool["id"], [{"input_values": {}, "overlap": 1}], T0)
    c = store.create_assignment(pool["id"], "w2", [task3["id"]], T0)
    store.submit_assignment(c["id"], [{"output_values": {}}], T0)
    store.close()
    again = Store(tmp_path / "e.sqlite")
    assert again.auto_accept_due(T0 + timedelta(seconds=2), 86400) == [c["id"]]
    again.close()


def test_pool_auto_accept_solutions_accepts_on_submit(tmp_path: Path) -> None:
    store = Store(tmp_path / "e.sqlite")
    pool = _pool(store, auto_accept_solutions=True)
    (task,) = store.create_tasks(pool["id"], [{"input_values": {}, "overlap": 1}], T0)
    a = store.create_assignment(pool["id"], "w1", [task["id"]], T0)
    done = store.submit_assignment(a["id"], [{"output_values": {"ok": True}}], T0)
    assert done["status"] == "ACCEPTED" and done["submitted"] == done["accepted"]
    store.close()


def test_json_keeps_decimals_exact() -> None:
    text = json_dumps({"amount": Decimal("0.10"), "n": 1, "s": "x"})
    assert text == '{"amount":0.10,"n":1,"s":"x"}'
    assert json_loads(text)["amount"] == Decimal("0.10")


def test_available_tasks_follow_overlap_changes_and_restart(tmp_path: Path) -> None:
    db = tmp_path / "e.sqlite"
    store = Store(db)
    pool = _pool(store)
    done, more = store.create_tasks(pool["id"], [{"input_values": {"n": 0}, "overlap": 1},
                                                 {"input_values": {"n": 1}, "overlap": 1}], T0)
    store.create_assignment(pool["id"], "w1", [done["id"]], T0)
    assert [t["id"] for t in store.available_tasks(pool["id"], "w2", 10)] == [more["id"]]
    store.set_task_overlap(done["id"], 2, False)                 # raised again: open again
    assert [t["id"] for t in store.available_tasks(pool["id"], "w2", 10)] == [done["id"],
                                                                              more["id"]]
    store.set_task_overlap(more["id"], 0, False, or_min=True)    # stopped
    store.close()
    again = Store(db)
    assert [t["id"] for t in again.available_tasks(pool["id"], "w2", 10)] == [done["id"]]
    assert again.get_task(done["id"])["remaining_overlap"] == 1
    again.close()
