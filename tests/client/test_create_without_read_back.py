"""Creating tasks without reading them back: one request fewer per task, same ids."""

from __future__ import annotations

from client_helpers import Admin

from toloka_client import TolokaClient, operation_id_for


async def test_read_back_false_returns_the_ids_without_reading_tasks(client: TolokaClient, admin: Admin) -> None:
    pool_id = await admin.create_pool()
    await admin.call("POST", f"/api/v1/pools/{pool_id}/open")
    reads_before = await admin.route_count("GET /api/v1/tasks/{id}") + await admin.route_count("GET /api/v1/tasks")
    tasks = [{"pool_id": pool_id, "input_values": {"n": i}, "overlap": 1} for i in range(3)]
    result = await client.create_tasks(tasks, operation_id=operation_id_for("no-read", pool_id), read_back=False)
    reads_after = await admin.route_count("GET /api/v1/tasks/{id}") + await admin.route_count("GET /api/v1/tasks")
    assert reads_after == reads_before
    created = result.created
    assert [t.input_values["n"] for t in created] == [0, 1, 2]
    for task in created:
        assert admin.store.get_task(str(task.id))["input_values"] == task.input_values
