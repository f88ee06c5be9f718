"""Every failure the emulator can produce comes out as a class whose ``retryable`` is right.

Each case runs the real client over loopback HTTP against the real emulator (faults
through ``PUT /_emulator/faults``), with three attempts allowed. It checks the class,
the flag the daemon will act on, and that the HTTP layer retried exactly the
retryable failures that are safe to repeat (a dropped unsafe POST is retryable for
the daemon, which repeats it only through an idempotent path, but never resent here).
"""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from client_helpers import TOKEN, Admin, Sleeper, make_client, make_tasks, utcnow

from common.errors import PipelineError
from common.secrets import Secret
from toloka_client import (
    AttachmentTooLarge,
    AuthenticationError,
    HttpSettings,
    InappropriateStatus,
    IncorrectAction,
    NotFound,
    Operation,
    OperationAlreadyExists,
    OperationFailed,
    RetryPolicy,
    ServerError,
    TolokaClient,
    TolokaError,
    TolokaHttp,
    TooManyRequests,
    TransportError,
    ValidationError,
    operation_id_for,
)
from toloka_client.errors import error_from_response

ATTEMPTS = 3


@dataclass
class Ctx:
    emu: Any
    admin: Admin
    sleeper: Sleeper
    client: TolokaClient


Trigger = Callable[[], Awaitable[object]]


async def validation_error(ctx: Ctx) -> Trigger:
    return lambda: ctx.client.find_assignments(status="SUBMITTED")  # no pool_id: 400


async def wrong_token(ctx: Ctx) -> Trigger:
    async def call() -> object:
        async with make_client(ctx.emu.url, ctx.sleeper, token="not-the-token", max_attempts=ATTEMPTS) as other:
            return await other.get_requester()

    return call


async def missing_pool(ctx: Ctx) -> Trigger:
    return lambda: ctx.client.get_pool("987654321")


async def method_not_allowed(ctx: Ctx) -> Trigger:
    return lambda: ctx.client.http.request("DELETE", "/requester")


async def reject_accepted(ctx: Ctx) -> Trigger:
    pool_id = await ctx.admin.create_pool()
    (aid,) = ctx.admin.submitted(pool_id, await make_tasks(ctx.client, pool_id, 1), utcnow())
    await ctx.client.accept_assignment(aid, "Good job")
    body = {"status": "REJECTED", "public_comment": "Incorrect object"}
    return lambda: ctx.client.http.request("PATCH", f"/assignments/{aid}", body=body)


async def open_archived_pool(ctx: Ctx) -> Trigger:
    pool_id = await ctx.admin.create_pool()
    await ctx.client.http.request("POST", f"/pools/{pool_id}/archive")
    return lambda: ctx.client.http.request("POST", f"/pools/{pool_id}/open")  # 409 POOL_INAPPROPRIATE_STATUS


async def repeated_operation_id(ctx: Ctx) -> Trigger:
    pool_id = await ctx.admin.create_pool()
    params = {"async_mode": True, "operation_id": operation_id_for("twice", pool_id)}
    body = [{"pool_id": pool_id, "input_values": {}, "overlap": 1}]
    await ctx.client.http.request("POST", "/tasks", params=params, body=body)
    return lambda: ctx.client.http.request("POST", "/tasks", params=params, body=body)


async def too_many_items(ctx: Ctx) -> Trigger:
    return lambda: ctx.client.http.request("POST", "/user-bonuses", body=[{}] * 101)  # 413 TOO_MANY_ITEMS


def fault(**config: Any) -> Callable[[Ctx], Awaitable[Trigger]]:
    async def setup(ctx: Ctx) -> Trigger:
        await ctx.admin.faults(**config)
        return ctx.client.get_requester

    return setup


async def timeout(ctx: Ctx) -> Trigger:
    await ctx.admin.faults(latency_seconds=2.0, latency_rate=1.0)
    settings = HttpSettings(connect_timeout_s=1.0, total_timeout_s=0.3, retry=RetryPolicy(max_attempts=ATTEMPTS))
    http = TolokaHttp(ctx.emu.url, Secret("toloka_token", TOKEN), settings, sleep=ctx.sleeper, rand=lambda: 0.5)

    async def call() -> object:
        async with TolokaClient(http, sleep=ctx.sleeper) as slow:
            return await slow.get_requester()

    return call


async def refused(ctx: Ctx) -> Trigger:
    with socket.socket() as s:  # a port that nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    async def call() -> object:
        async with make_client(f"http://127.0.0.1:{port}", ctx.sleeper, max_attempts=ATTEMPTS) as nowhere:
            return await nowhere.get_requester()

    return call


async def dropped_unsafe_post(ctx: Ctx) -> Trigger:
    await ctx.admin.faults(drop_after_write_rate=1.0, path_prefix="/api/v1/projects")
    return lambda: ctx.client.http.request("POST", "/projects", body={"public_name": "once"})


async def attachment_too_large(ctx: Ctx) -> Trigger:
    pool_id = await ctx.admin.create_pool()
    task_ids = await make_tasks(ctx.client, pool_id, 1)
    a = ctx.admin.store.create_assignment(pool_id, "w1", task_ids, utcnow())
    meta = ctx.admin.store.add_attachment(a["id"], "facade.jpg", "image/jpeg", b"x" * 2048, utcnow())
    return lambda: ctx.client.download_attachment(meta["id"], max_bytes=1024)


async def operation_not_finished(ctx: Ctx) -> Trigger:
    ctx.client.operation_timeout_s = 0
    running = Operation.from_json({"id": "op-1", "type": "TASK.BATCH_CREATE", "status": "RUNNING"})
    return lambda: ctx.client.wait_operation(running)


async def operation_id_of_another_kind(ctx: Ctx) -> Trigger:
    pool_id = await ctx.admin.create_pool()
    (aid,) = ctx.admin.submitted(pool_id, await make_tasks(ctx.client, pool_id, 1), utcnow())
    op_id = operation_id_for("shared", aid)
    await ctx.client.create_user_bonus(
        {"user_id": "w1", "amount": Decimal("0.01"), "assignment_id": aid, "without_message": True},
        operation_id=op_id,
    )
    tasks = [{"pool_id": pool_id, "input_values": {}, "overlap": 1}]
    return lambda: ctx.client.create_tasks(tasks, operation_id=op_id)


# (setup, exact class, retryable, retries the HTTP layer makes within ATTEMPTS)
CASES: dict[str, tuple[Callable[[Ctx], Awaitable[Trigger]], type[TolokaError], bool, int]] = {
    "400 VALIDATION_ERROR": (validation_error, ValidationError, False, 0),
    "401 AUTHENTICATION_ERROR": (wrong_token, AuthenticationError, False, 0),
    "404 DOES_NOT_EXIST": (missing_pool, NotFound, False, 0),
    "405 METHOD_NOT_ALLOWED": (method_not_allowed, TolokaError, False, 0),
    "409 INAPPROPRIATE_STATUS": (reject_accepted, InappropriateStatus, False, 0),
    "409 POOL_INAPPROPRIATE_STATUS": (open_archived_pool, IncorrectAction, False, 0),
    "409 OPERATION_ALREADY_EXISTS": (repeated_operation_id, OperationAlreadyExists, False, 0),
    "413 TOO_MANY_ITEMS": (too_many_items, TolokaError, False, 0),
    "429": (fault(rate_429=1.0), TooManyRequests, True, ATTEMPTS - 1),
    "429 Retry-After": (fault(rate_429_retry_after=1.0, retry_after_seconds=1), TooManyRequests, True, ATTEMPTS - 1),
    "429 quota MIN": (fault(rate_429_interval=1.0, interval="MIN"), TooManyRequests, True, ATTEMPTS - 1),
    "500 INTERNAL_ERROR": (fault(rate_500=1.0), ServerError, True, ATTEMPTS - 1),
    "503 REMOTE_SERVICE_UNAVAILABLE": (fault(rate_503=1.0), ServerError, True, ATTEMPTS - 1),
    "500 empty body": (fault(rate_500_empty=1.0), ServerError, True, ATTEMPTS - 1),
    "timeout": (timeout, TransportError, True, ATTEMPTS - 1),
    "connection refused": (refused, TransportError, True, ATTEMPTS - 1),
    "connection dropped after an unsafe POST": (dropped_unsafe_post, TransportError, True, 0),
    "attachment past the limit": (attachment_too_large, AttachmentTooLarge, False, 0),
    "operation not finished in time": (operation_not_finished, OperationFailed, True, 0),
    "operation id taken by another kind": (operation_id_of_another_kind, OperationFailed, False, 0),
}


@pytest.mark.parametrize("case", CASES)
async def test_each_failure_has_its_class_and_retryable_flag(case: str, emu: Any, admin: Admin,
                                                               sleeper: Sleeper) -> None:
    """Class and flag per failure; the transport retries the retryable ones it may repeat, only those."""
    setup, cls, retryable, retries = CASES[case]
    async with make_client(emu.url, sleeper, max_attempts=ATTEMPTS) as client:
        trigger = await setup(Ctx(emu, admin, sleeper, client))
        sleeper.delays.clear()
        with pytest.raises(PipelineError) as info:
            await trigger()
    await admin.faults()
    assert type(info.value) is cls, info.value
    assert info.value.retryable is retryable, info.value
    assert len(sleeper.delays) == retries


@pytest.mark.parametrize(
    ("status", "body", "cls", "retryable"),
    [
        (403, b'{"code": "ACCESS_DENIED"}', "AccessDenied", False),
        (409, b'{"code": "CONFLICT_STATE"}', "ConflictState", False),
        (408, b"", "TolokaError", True),  # no class of its own; its status marks it
        (502, b"<html>Bad gateway</html>", "ServerError", True),
        (504, b"", "ServerError", True),
        # Code and status disagree: the class follows the code, the flag the status,
        # exactly as the transport has always retried.
        (503, b'{"code": "DOES_NOT_EXIST"}', "NotFound", True),
        (400, b'{"code": "INTERNAL_ERROR"}', "ServerError", False),
    ],
)
def test_answers_the_emulator_cannot_give(status: int, body: bytes, cls: str, retryable: bool) -> None:
    """Statuses real Toloka (or a proxy before it) may send; the same mapping as above."""
    err = error_from_response("GET", "/pools/1", status, body)
    assert type(err).__name__ == cls
    assert err.retryable is retryable
