"""Which waiting task creations and bonuses go out together (engine/batching.py, pure)."""

from __future__ import annotations

from decimal import Decimal

from engine.actions import CreateTasks, LinkTo, PayBonus, TaskSpec, operation_uuid
from engine.batching import BONUSES_PER_REQUEST, TASK_BYTES_PER_REQUEST, compose, task_bytes


def tasks(pool: str, name: str, n: int = 1, links: int = 0) -> CreateTasks:
    values: dict[str, object] = {"pedestrian_assignment_id": name, "photos": [LinkTo(f"k/{i}") for i in range(links)]}
    return CreateTasks(pool, operation_uuid("visit", name), tuple(TaskSpec(values, 3) for _ in range(n)))


def bonus(name: str) -> PayBonus:
    return PayBonus(name, "w", Decimal("0.1"), "Bonus", "thanks", operation_uuid("bonus", name))


def test_task_creations_go_together_per_pool_and_bonuses_together_in_chain_order() -> None:
    waiting = {"a": tasks("1", "a"), "b": tasks("2", "b"), "c": tasks("1", "c", n=3), "d": bonus("d"), "e": bonus("e")}
    planned = compose(waiting)
    assert [(p.batch.kind, p.batch.pool_id, p.chains) for p in planned] == [
        ("tasks", "1", ("a", "c")), ("tasks", "2", ("b",)), ("bonuses", "", ("d", "e"))]
    assert [p.recorded for p in planned] == [True, False, True]
    assert planned[0].batch.members == (waiting["a"], waiting["c"])


def test_a_group_of_one_keeps_its_own_operation_id_and_a_batch_gets_one_made_of_its_members() -> None:
    alone = compose({"a": tasks("1", "a")})[0].batch
    assert alone.operation_id == operation_uuid("visit", "a")
    pair = {"a": tasks("1", "a"), "b": tasks("1", "b")}
    first, again = compose(pair)[0].batch, compose(dict(pair))[0].batch
    assert first.operation_id == again.operation_id  # the same members, the same id
    assert first.operation_id not in (operation_uuid("visit", "a"), operation_uuid("visit", "b"))
    other = compose({"a": tasks("1", "a"), "c": tasks("1", "c")})[0].batch
    assert other.operation_id != first.operation_id


def test_a_request_is_cut_before_it_outgrows_its_limits() -> None:
    heavy = {f"t{i}": tasks("1", f"t{i}", links=100) for i in range(12)}  # about 100 KiB each
    cuts = [p.chains for p in compose(heavy)]
    assert sum(len(c) for c in cuts) == 12 and len(cuts) > 1
    for cut in cuts:
        assert sum(task_bytes(heavy[c].tasks[0].input_values) for c in cut) <= TASK_BYTES_PER_REQUEST
    many = {f"b{i}": bonus(f"b{i}") for i in range(BONUSES_PER_REQUEST + 1)}
    assert [len(p.chains) for p in compose(many)] == [BONUSES_PER_REQUEST, 1]


def test_a_link_counts_for_its_future_size() -> None:
    assert task_bytes({"p": [LinkTo("x"), LinkTo("y")]}) > 2000
    assert task_bytes({"p": "ab"}) < 100
