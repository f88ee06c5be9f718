"""Fidelity: toloka-kit 1.2.3's own TolokaClient runs full flows against the emulator.

toloka-kit is sync, so the emulator runs in an EmulatorThread; assignments are made
through the store on the emulator's loop (``emu.call``), as the crowd makes them.
"""

from __future__ import annotations

import io
import uuid
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Iterator

import pytest
import toloka.client as tc
from toloka.client.exceptions import (
    DoesNotExistApiError,
    IncorrectActionsApiError,
    ValidationApiError,
)

from emulator.app import EmulatorThread
from emulator.ids import utcnow


@pytest.fixture
def emu(tmp_path: Path, token: str) -> Iterator[EmulatorThread]:
    with EmulatorThread(tmp_path / "kit.sqlite", token=token, seed=5) as running:
        yield running


@pytest.fixture
def client(emu: EmulatorThread, token: str) -> tc.TolokaClient:
    # retry_quotas=None avoids toloka-kit 1.2.3's broken quota-retry path (toloka-api.md s.4).
    return tc.TolokaClient(token, url=emu.url, retry_quotas=None, timeout=10)


def _project(client: tc.TolokaClient) -> tc.Project:
    spec = tc.project.task_spec.TaskSpec(
        input_spec={"image": tc.project.field_spec.UrlSpec()},
        output_spec={"result": tc.project.field_spec.StringSpec()},
        view_spec=tc.project.view_spec.ClassicViewSpec(script="", markup="{{img src=image}}",
                                                       styles=""),
    )
    return client.create_project(tc.Project(public_name="Check photos",
                                            public_description="Is the photo good?",
                                            task_spec=spec))


def _pool(client: tc.TolokaClient, project: tc.Project, **extra: Any) -> tc.Pool:
    pool = tc.Pool(project_id=project.id, private_name="check", may_contain_adult_content=False,
                   will_expire=datetime.utcnow() + timedelta(days=30),
                   reward_per_assignment=Decimal("0.05"), assignment_max_duration_seconds=600,
                   defaults=tc.Pool.Defaults(default_overlap_for_new_task_suites=1), **extra)
    return client.create_pool(pool)


def _submit(emu: EmulatorThread, pool_id: str, task_ids: list[str]) -> list[str]:
    def work() -> list[str]:
        done = []
        for n, task_id in enumerate(task_ids):
            a = emu.store.create_assignment(pool_id, f"worker{n}", [task_id], utcnow())
            att = emu.store.add_attachment(a["id"], f"p{n}.jpg", "image/jpeg",
                                           b"\xff\xd8" + bytes([n]) * 10, utcnow())
            emu.store.submit_assignment(
                a["id"], [{"output_values": {"result": "OK", "photo": att["id"]}}], utcnow())
            done.append(a["id"])
        return done

    return emu.call(work)


def test_projects_pools_and_tasks(client: tc.TolokaClient, emu: EmulatorThread) -> None:
    project = _project(client)
    assert client.get_project(project.id).task_spec.input_spec["image"]
    pool = _pool(client, project)
    assert pool.status == tc.Pool.Status.CLOSED
    opened = client.open_pool(pool.id)
    assert opened.status == tc.Pool.Status.OPEN
    assert [p.id for p in client.get_pools(project_id=project.id)] == [pool.id]

    task = client.create_task(tc.Task(pool_id=pool.id, input_values={"image": "http://x/1.jpg"},
                                      overlap=2))                    # async_mode by default
    assert task.id and task.overlap == 2 and task.infinite_overlap is False
    assert client.get_task(task.id).input_values == {"image": "http://x/1.jpg"}

    result = client.create_tasks([
        tc.Task(pool_id=pool.id, input_values={"image": f"http://x/{n}.jpg"}, overlap=1)
        for n in range(3)
    ] + [tc.Task(pool_id=pool.id, input_values={}, overlap=1)], skip_invalid_items=True)
    assert sorted(result.items) == ["0", "1", "2"]
    assert list(result.validation_errors) == ["3"]
    assert [t.input_values["image"] for t in client.get_tasks(pool_id=pool.id)] == [
        "http://x/1.jpg", "http://x/0.jpg", "http://x/1.jpg", "http://x/2.jpg"]
    with pytest.raises(ValidationApiError):
        client.create_tasks([tc.Task(pool_id=pool.id, input_values={}, overlap=1)])
    sync = client.create_tasks([tc.Task(pool_id=pool.id, input_values={"image": "s"}, overlap=1)],
                               async_mode=False)
    assert list(sync.items) == ["0"]

    patched = client.patch_task_overlap_or_min(task.id, overlap=1)
    assert patched.overlap == 1
    client.close_pool(pool.id)
    assert client.get_pool(pool.id).status == tc.Pool.Status.CLOSED
    with pytest.raises(DoesNotExistApiError):
        client.get_pool("999999")


def test_assignments_review_bonuses_attachments_and_operation_log(
        client: tc.TolokaClient, emu: EmulatorThread) -> None:
    project = _project(client)
    pool = client.open_pool(_pool(client, project).id)
    tasks = client.create_tasks([
        tc.Task(pool_id=pool.id, input_values={"image": f"http://x/{n}.jpg"}, overlap=1)
        for n in range(4)])
    task_ids = [tasks.items[str(n)].id for n in range(4)]
    assignment_ids = _submit(emu, pool.id, task_ids)

    got = list(client.get_assignments(pool_id=pool.id))
    assert [a.id for a in got] == assignment_ids
    assert all(a.status == tc.Assignment.SUBMITTED and isinstance(a.reward, Decimal) for a in got)
    assert got[0].tasks[0].input_values == {"image": "http://x/0.jpg"}
    found = client.find_assignments(pool_id=pool.id, status=["SUBMITTED"], sort=["-submitted", "-id"],
                                    limit=2)
    assert [a.id for a in found.items] == assignment_ids[::-1][:2] and found.has_more

    accepted = client.accept_assignment(assignment_ids[0], "Well done")
    assert accepted.status == tc.Assignment.ACCEPTED and accepted.accepted is not None
    rejected = client.reject_assignment(assignment_ids[1], "Blurry photo")
    assert rejected.status == tc.Assignment.REJECTED
    with pytest.raises(IncorrectActionsApiError):
        client.accept_assignment(assignment_ids[0], "again")

    bonus = client.create_user_bonus(tc.user_bonus.UserBonus(
        user_id=got[0].user_id, amount=Decimal("0.15"), assignment_id=assignment_ids[0],
        public_title={"EN": "Bonus"}, public_message={"EN": "Thanks"}),
        operation_id=str(uuid.uuid4()))
    assert bonus.amount == Decimal("0.15") and bonus.id
    batch = client.create_user_bonuses([
        tc.user_bonus.UserBonus(user_id="worker2", amount=Decimal("0.01"), without_message=True),
        tc.user_bonus.UserBonus(user_id="worker3", amount=Decimal("0.001"),
                                without_message=True),
    ], skip_invalid_items=True)
    assert list(batch.items) == ["0"] and list(batch.validation_errors) == ["1"]
    bonuses = list(client.get_user_bonuses(user_id=got[0].user_id))
    assert [b.id for b in bonuses] == [bonus.id]
    page = client.find_user_bonuses(assignment_id=assignment_ids[0], sort=["-id"], limit=10)
    assert [b.amount for b in page.items] == [Decimal("0.15")] and page.has_more is False
    assert client.get_assignment(assignment_ids[0]).bonus_ids == [bonus.id]

    photo_id = got[2].solutions[0].output_values["photo"]
    meta = client.get_attachment(photo_id)
    assert meta.name == "p2.jpg" and meta.details.assignment_id == assignment_ids[2]
    out = io.BytesIO()
    client.download_attachment(photo_id, out)
    assert out.getvalue() == b"\xff\xd8" + bytes([2]) * 10
    assert [a.id for a in client.get_attachments(pool_id=pool.id)] == sorted(
        a.solutions[0].output_values["photo"] for a in got)

    op = client.create_tasks_async([tc.Task(pool_id=pool.id, input_values={"image": "z"},
                                            overlap=1)])
    log = client.get_operation_log(op.id)
    assert [(item.type, item.success) for item in log] == [("TASK_CREATE", True)]
    assert client.get_operation(op.id).status == tc.operations.Operation.Status.SUCCESS


def test_idempotent_retry_with_the_same_operation_id(client: tc.TolokaClient,
                                                     emu: EmulatorThread) -> None:
    project = _project(client)
    pool = _pool(client, project)
    op_id = uuid.uuid4()
    tasks = [tc.Task(pool_id=pool.id, input_values={"image": "a"}, overlap=1)]
    first = client.create_tasks(tasks, operation_id=op_id)
    second = client.create_tasks(tasks, operation_id=op_id)     # 409, then reads the op
    assert [t.id for t in first.items.values()] == [t.id for t in second.items.values()]
    assert len(list(client.get_tasks(pool_id=pool.id))) == 1


def test_streaming_assignment_cursor_sees_each_submission_once(
        client: tc.TolokaClient, emu: EmulatorThread) -> None:
    from toloka.streaming.cursor import AssignmentCursor

    project = _project(client)
    pool = client.open_pool(_pool(client, project).id)
    created = client.create_tasks([
        tc.Task(pool_id=pool.id, input_values={"image": f"http://x/{n}.jpg"}, overlap=1)
        for n in range(5)])
    ids = _submit(emu, pool.id, [created.items[str(n)].id for n in range(5)])
    cursor = AssignmentCursor(pool_id=pool.id, event_type="SUBMITTED", toloka_client=client,
                              time_lag=timedelta(0))
    assert sorted(event.assignment.id for event in cursor) == ids
    assert list(cursor) == []                                  # nothing new: nothing again
    more = client.create_tasks([tc.Task(pool_id=pool.id, input_values={"image": "late"},
                                        overlap=1)])
    late = _submit(emu, pool.id, [more.items["0"].id])
    assert [event.assignment.id for event in cursor] == late


def _seed_dropping_first_write_only(rate: float) -> int:
    """A seed whose first faulted request is dropped and whose second is not.

    The fault middleware draws (latency, error, drop) per request under the prefix, so
    the drop draws are the 3rd and 6th numbers of ``random.Random(seed)``.
    """
    import random

    for seed in range(1000):
        rng = random.Random(seed)
        draws = [rng.random() for _ in range(6)]
        if draws[2] < rate <= draws[5]:
            return seed
    raise AssertionError("no seed found")


def test_lost_answer_after_an_applied_write_is_recovered_without_duplicates(
        tmp_path: Path, token: str) -> None:
    seed = _seed_dropping_first_write_only(0.5)
    faults = {"drop_after_write_rate": 0.5, "path_prefix": "/api/v1/tasks"}
    with EmulatorThread(tmp_path / "drop.sqlite", token=token, seed=seed, faults=faults) as emu:
        client = tc.TolokaClient(token, url=emu.url, retry_quotas=None, timeout=10)
        pool = _pool(client, _project(client))       # outside the faulted prefix
        # The first POST /tasks is applied and its answer lost; toloka-kit retries with the
        # same operation_id, gets 409 OPERATION_ALREADY_EXISTS and reads that operation.
        result = client.create_tasks([tc.Task(pool_id=pool.id, input_values={"image": "a"},
                                              overlap=1)])
        assert emu.state is not None
        state = emu.call(emu.state.faults.state)
        assert state["injected"] == {"drop_after_write": 1}
        assert list(result.items) == ["0"]
        assert [t.id for t in client.get_tasks(pool_id=pool.id)] == [result.items["0"].id]


def test_the_streaming_examples_quality_control_rule(client: tc.TolokaClient, emu: EmulatorThread) -> None:
    """As in toloka-kit's streaming example: the rule added with ``add_action`` and sent by
    ``create_pool``/``update_pool`` is kept, and a rejection raises the task's overlap and
    reopens the pool."""
    from toloka.client.actions import ChangeOverlap
    from toloka.client.collectors import AssignmentsAssessment
    from toloka.client.conditions import AssessmentEvent

    project = _project(client)
    pool = _pool(client, project)
    pool.quality_control.add_action(collector=AssignmentsAssessment(),
                                    conditions=[AssessmentEvent == AssessmentEvent.REJECT],
                                    action=ChangeOverlap(delta=1, open_pool=True))
    updated = client.update_pool(pool.id, pool)
    (config,) = updated.quality_control.configs
    assert isinstance(config.collector_config, AssignmentsAssessment)
    assert isinstance(config.rules[0].action, ChangeOverlap) and config.rules[0].action.parameters.delta == 1
    created = _pool(client, project, quality_control=pool.quality_control)    # create_pool with the rule
    assert created.quality_control.configs[0].rules[0].conditions[0].value == AssessmentEvent.REJECT

    client.open_pool(pool.id)
    task = client.create_task(tc.Task(pool_id=pool.id, input_values={"image": "http://x/1.jpg"}, overlap=1))
    (assignment_id,) = _submit(emu, pool.id, [task.id])
    client.close_pool(pool.id)
    client.reject_assignment(assignment_id, "Incorrect object.")
    after = client.get_task(task.id)
    assert (after.overlap, after.remaining_overlap) == (2, 1)
    assert client.get_pool(pool.id).status == tc.Pool.Status.OPEN
