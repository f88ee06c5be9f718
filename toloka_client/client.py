"""The async Toloka client: the endpoints the daemon needs, made safe to repeat.

Idempotency is built in where the daemon needs it:

* creates (tasks, bonuses) take a caller-given, deterministic ``operation_id``;
  a repeat (after a retry, or after a crash and replay) gets 409
  ``OPERATION_ALREADY_EXISTS``, and the client then resumes that operation and
  returns the objects it created, so nothing is created twice;
* accept/reject treat "already in that status" as success;
* a task's overlap is set to an absolute value (a repeat changes nothing), and deleting a
  user restriction that is gone already (404) counts as done, so an undo can be repeated;
* pool and project look-ups are cached (``alru_cache``, bounded, with a TTL).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, TypeVar, get_args
from urllib.parse import quote

from async_lru import alru_cache

from common.secrets import Secret
from toloka_client.errors import (
    IncorrectAction,
    NotFound,
    OperationAlreadyExists,
    OperationFailed,
    UnexpectedResponse,
    ValidationError,
)
from toloka_client.http import HttpSettings, Sleep, TokenSource, TolokaHttp, resolve_base_url
from toloka_client.ids import operation_uuid
from toloka_client.paging import iterate_by_id
from toloka_client.records import (
    Assignment,
    Attachment,
    BatchCount,
    BatchResult,
    Operation,
    OperationLogItem,
    Page,
    Pool,
    Project,
    Record,
    Requester,
    Skill,
    Task,
    UserBonus,
    UserRestriction,
    UserSkill,
)

log = logging.getLogger(__name__)

#: Scopes :meth:`TolokaClient.restrict_user` sets (a pool, or every pool of a project).
RestrictionScope = Literal["POOL", "PROJECT"]
#: Scopes a restriction search may ask for (``ALL_PROJECTS`` and Toloka's own ``SYSTEM`` too).
_SEARCH_SCOPES = frozenset({"POOL", "PROJECT", "ALL_PROJECTS", "SYSTEM"})
#: Toloka's limit on a restriction's ``private_comment``.
MAX_RESTRICTION_COMMENT = 499
_RESTRICTION_PAGE = 300

R = TypeVar("R", bound=Record)

#: The deterministic ``operation_id`` of a create (one definition, in :mod:`toloka_client.ids`).
operation_id_for = operation_uuid

DEFAULT_ATTACHMENT_LIMIT = 20 * 1024 * 1024
_RANGE_FILTER = re.compile(r"^([a-z_]+)_(gt|gte|lt|lte)$")
# Fields each search can compare (toloka-api.md section 2); a typo fails loudly.
_ASSIGNMENT_TIMES = ("created", "submitted", "accepted", "rejected", "skipped", "expired")
_RANGES = {
    "/pools": frozenset({"id", "created", "last_started"}),
    "/tasks": frozenset({"id", "created", "overlap"}),
    "/assignments": frozenset({"id", *_ASSIGNMENT_TIMES}),
    "/attachments": frozenset({"id", "created"}),
    "/user-bonuses": frozenset({"id", "created"}),
    "/user-skills": frozenset({"id", "created", "modified"}),
}
_ITEM_IDX = "__item_idx"
#: The most objects one synchronous create takes (documented limits: 5,000 tasks, 100 bonuses).
MAX_SYNC_TASKS = 5000
MAX_SYNC_BONUSES = 100


def _check_ranges(path: str, filters: Mapping[str, Any]) -> None:
    """Refuse a misspelt range filter instead of letting the server ignore it."""
    allowed = _RANGES[path]
    for key in filters:
        m = _RANGE_FILTER.match(key)
        if not m or m.group(1) not in allowed:
            raise TypeError(f"unknown {path} search filter {key!r}; expected <field>_gt/_gte/_lt/_lte "
                            f"with a field in {sorted(allowed)}")


class TolokaClient:
    """Async Toloka client over one long-lived :class:`TolokaHttp` session.

    Use ``async with TolokaClient.connect(environment, token) as client:`` in the
    daemon, or wrap an existing transport with ``TolokaClient(http)``.
    """

    def __init__(
        self,
        http: TolokaHttp,
        *,
        cache_size: int = 256,
        cache_ttl_s: float = 300.0,
        operation_poll_s: float = 0.5,
        operation_timeout_s: float = 600.0,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        self.http = http
        self._sleep = sleep
        self.operation_poll_s = operation_poll_s
        self.operation_timeout_s = operation_timeout_s
        # Per-instance caches: no global state, and ``self`` is not part of the key.
        self.get_pool_cached = alru_cache(maxsize=cache_size, ttl=cache_ttl_s)(self.get_pool)
        self.get_project = alru_cache(maxsize=cache_size, ttl=cache_ttl_s)(self._get_project)

    @classmethod
    def connect(
        cls,
        environment: str,
        token: Secret,
        settings: HttpSettings | None = None,
        *,
        sleep: Sleep = asyncio.sleep,
        reread_token: TokenSource | None = None,
        **options: Any,
    ) -> TolokaClient:
        """A client for ``[Toloka] environment`` (PRODUCTION, SANDBOX or a URL).

        ``reread_token`` reads the token again after a 401 (a rotated token needs no restart).
        """
        http = TolokaHttp(resolve_base_url(environment), token, settings, sleep=sleep,
                          reread_token=reread_token)
        return cls(http, sleep=sleep, **options)

    def __repr__(self) -> str:
        return f"TolokaClient({self.http.base_url!r})"

    def __reduce__(self) -> Any:
        raise TypeError("a TolokaClient must not be pickled (checkpoints hold plain state only)")

    async def __aenter__(self) -> TolokaClient:
        await self.http.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Drop the caches and close the session."""
        self.get_pool_cached.cache_clear()
        self.get_project.cache_clear()
        await self.http.close()

    # --- small helpers ---------------------------------------------------------

    async def _get(self, path: str, params: Mapping[str, Any] | None = None) -> Any:
        return (await self.http.request("GET", path, params=params)).data

    async def _get_record(self, cls: type[R], path: str) -> R:
        data = await self._get(path)
        if not isinstance(data, Mapping):
            raise UnexpectedResponse("GET", path, 200, None, "expected a JSON object")
        return cls.from_json(data)

    async def _search(self, cls: type[R], path: str, params: Mapping[str, Any]) -> Page[R]:
        data = await self._get(path, params)
        if not isinstance(data, Mapping) or not isinstance(data.get("items"), list):
            raise UnexpectedResponse("GET", path, 200, None, "expected {items, has_more}")
        return Page(tuple(cls.from_json(d) for d in data["items"]), bool(data.get("has_more")))

    # --- requester, pools, projects --------------------------------------------

    async def get_requester(self) -> Requester:
        """The account behind the token (a cheap start-up check of the token)."""
        return await self._get_record(Requester, "/requester")

    async def get_pool(self, pool_id: str) -> Pool:
        """The pool as it is now (use ``get_pool_cached`` for the static fields)."""
        return await self._get_record(Pool, f"/pools/{pool_id}")

    async def open_pool(self, pool_id: str) -> Operation | None:
        """Open a pool (``POST /pools/{id}/open``) and wait for it; None when it was already open (204).

        Idempotent, so retried like a read. Toloka's refusal (409, e.g. ``EMPTY_POOL``, an archived
        pool) is :class:`IncorrectAction`; the returned operation may have ended ``FAIL``.
        """
        path = f"/pools/{_segment(pool_id)}/open"
        resp = await self.http.request("POST", path, retry_writes=True)
        if resp.status == 204 or resp.data is None:
            return None
        if not isinstance(resp.data, Mapping) or not resp.data.get("id"):
            raise UnexpectedResponse("POST", path, resp.status, None, "expected an operation")
        return await self.wait_operation(Operation.from_json(resp.data))

    async def _get_project(self, project_id: str) -> Project:
        return await self._get_record(Project, f"/projects/{project_id}")

    async def find_pools(
        self,
        *,
        project_id: str | None = None,
        status: str | None = None,
        sort: str | Sequence[str] | None = None,
        limit: int | None = None,
        **ranges: Any,
    ) -> Page[Pool]:
        """Search pools; ``ranges`` are ``id_gt=...``, ``created_gte=...`` and the like."""
        _check_ranges("/pools", ranges)
        params = {"project_id": project_id, "status": status, "sort": sort, "limit": limit, **ranges}
        return await self._search(Pool, "/pools", params)

    # --- tasks -------------------------------------------------------------------

    async def get_task(self, task_id: str) -> Task:
        return await self._get_record(Task, f"/tasks/{task_id}")

    async def find_tasks(
        self,
        *,
        pool_id: str | None = None,
        sort: str | Sequence[str] | None = "id",
        limit: int | None = None,
        **ranges: Any,
    ) -> Page[Task]:
        """Search tasks (``id_gt``, ``created_gte``, ... in ``ranges``)."""
        _check_ranges("/tasks", ranges)
        return await self._search(Task, "/tasks", {"pool_id": pool_id, "sort": sort, "limit": limit, **ranges})

    def iter_tasks(self, pool_id: str, *, batch_size: int = 1000, **ranges: Any) -> AsyncIterator[Task]:
        """Every task of a pool (matching ``ranges``) in id order, page by page."""
        _check_ranges("/tasks", ranges)
        ranges.pop("id_gt", None)

        async def fetch(id_gt: str | None) -> Page[Task]:
            return await self.find_tasks(pool_id=pool_id, sort="id", limit=batch_size, id_gt=id_gt, **ranges)

        return iterate_by_id(fetch)

    async def set_task_overlap(self, task_id: str, overlap: int) -> Task:
        """Set a task's overlap (``PATCH /tasks/{id}``), e.g. raise it so more workers answer.

        An absolute value, so a repeat changes nothing and the PATCH is retried like a read.
        Toloka keeps the change on a closed pool's task; workers take it once the pool is
        open. Errors: :class:`NotFound` (no such task), :class:`ValidationError` (a value
        Toloka refuses), :class:`IncorrectAction` (the task's state forbids it); ValueError
        for a negative or non-integer ``overlap``, before any request.
        """
        if isinstance(overlap, bool) or not isinstance(overlap, int) or overlap < 0:
            raise ValueError(f"overlap must be an integer >= 0, not {overlap!r}")
        path = f"/tasks/{_segment(task_id)}"
        resp = await self.http.request("PATCH", path, body={"overlap": overlap, "infinite_overlap": False},
                                       retry_writes=True)
        if isinstance(resp.data, Mapping) and resp.data.get("id"):
            return Task.from_json(resp.data)
        return await self.get_task(task_id)

    async def create_tasks(
        self,
        tasks: Sequence[Mapping[str, Any]],
        *,
        operation_id: str,
        skip_invalid_items: bool = True,
        allow_defaults: bool = False,
        open_pool: bool = False,
        read_back: bool = True,
    ) -> BatchResult[Task]:
        """Create tasks once, whatever happens to the connection.

        ``tasks`` are API task objects (``pool_id``, ``input_values``, ``overlap``,
        ``unavailable_for``, ...). Sent with ``async_mode=true``: the client waits
        for the operation, reads its log, and reads the created tasks back. A
        repeat with the same ``operation_id`` returns what the first call created.
        ``read_back=False`` skips that last read (one request per batch or task):
        the records then hold only the id and what was sent.
        """
        params = {
            "async_mode": True,
            "operation_id": operation_id,
            "skip_invalid_items": skip_invalid_items,
            "allow_defaults": allow_defaults or None,
            "open_pool": open_pool or None,
        }
        op, resumed = await self._start_create("/tasks", tasks, params, operation_id, "TASK.BATCH_CREATE")
        by_index, errors = await self._finished_log(op, "task_id")
        if not read_back:
            sent_only = {idx: Task.from_json({**sent, "id": task_id}) for idx, (task_id, sent) in by_index.items()}
            return BatchResult(sent_only, errors, resumed)
        created = await self._read_tasks(by_index)
        return BatchResult(created, errors, resumed)

    async def create_tasks_at_once(self, tasks: Sequence[Mapping[str, Any]], *, operation_id: str) -> BatchCount:
        """Create all ``tasks`` or none, in one synchronous request; :class:`ValidationError` if any is refused.

        Nothing is read back and no operation is polled: the answer itself says
        that every task was created. A repeat with the same ``operation_id`` (an
        answer lost on the way, a replay after a crash) finds the operation and
        creates nothing twice; only then is the operation read.
        """
        return await self._create_at_once("/tasks", tasks, operation_id, "TASK.BATCH_CREATE", MAX_SYNC_TASKS)

    async def pay_bonuses_at_once(self, bonuses: Sequence[Mapping[str, Any]], *, operation_id: str) -> BatchCount:
        """Pay all ``bonuses`` or none, in one synchronous request (see :meth:`create_tasks_at_once`)."""
        return await self._create_at_once("/user-bonuses", bonuses, operation_id, "USER_BONUS.BATCH_CREATE",
                                          MAX_SYNC_BONUSES)

    async def _create_at_once(self, path: str, objects: Sequence[Mapping[str, Any]], operation_id: str,
                              op_type: str, limit: int) -> BatchCount:
        if not objects or len(objects) > limit:
            raise ValueError(f"a synchronous create takes 1 to {limit} objects, not {len(objects)}")
        params = {"async_mode": False, "operation_id": operation_id, "skip_invalid_items": False}
        try:
            resp = await self.http.request("POST", path, params=params, body=list(objects), retry_writes=True)
        except OperationAlreadyExists:
            return await self._resume_at_once(path, operation_id, op_type, len(objects))
        items = resp.data.get("items") if isinstance(resp.data, Mapping) else None
        refused = resp.data.get("validation_errors") if isinstance(resp.data, Mapping) else None
        if not isinstance(items, Mapping) or refused or len(items) != len(objects):
            # All or nothing was asked for: anything else is not the documented answer.
            raise UnexpectedResponse("POST", path, resp.status, None,
                                     f"expected {len(objects)} created objects and no refusal")
        return BatchCount(len(items))

    async def _resume_at_once(self, path: str, operation_id: str, op_type: str, sent: int) -> BatchCount:
        """An earlier try of this all-or-nothing create got through: what did it do?"""
        op = await self.get_operation(operation_id)
        if op.type != op_type:
            raise OperationFailed("POST", path, 409, "OPERATION_ALREADY_EXISTS",
                                  f"operation {operation_id} exists with type {op.type}, not {op_type}")
        op = await self.wait_operation(op)
        log.info("resuming existing operation %s (%s): %s", operation_id, op_type, op.status)
        if op.status == "SUCCESS":
            return BatchCount(sent, resumed=True)
        # Refused as a whole the first time: the log says why (read only in this rare case).
        entries = await self.get_operation_log(operation_id)
        reasons = {str(i): e.output for i, e in enumerate(entries) if not e.success}
        raise ValidationError("POST", path, None, "VALIDATION_ERROR",
                              f"operation {operation_id} was refused", payload=reasons)

    async def _read_tasks(self, by_index: Mapping[int, tuple[str, Mapping[str, Any]]]) -> dict[int, Task]:
        if not by_index:
            return {}
        if len(by_index) == 1:
            ((idx, (task_id, _)),) = by_index.items()
            return {idx: await self.get_task(task_id)}
        # One ranged read per pool (ids are ordered within a pool), filtered to ours.
        per_pool: dict[str, list[str]] = {}
        for task_id, sent in by_index.values():
            per_pool.setdefault(str(sent.get("pool_id")), []).append(task_id)
        found: dict[str, Task] = {}
        for pool_id, ids in per_pool.items():
            wanted = set(ids)
            async for task in self.iter_tasks(pool_id, id_gte=min(ids), id_lte=max(ids)):
                if task.id in wanted:
                    found[task.id] = task
        return _by_index(by_index, found, "task")

    # --- assignments ---------------------------------------------------------

    async def get_assignment(self, assignment_id: str) -> Assignment:
        return await self._get_record(Assignment, f"/assignments/{assignment_id}")

    async def find_assignments(
        self,
        *,
        pool_id: str | None = None,
        task_id: str | None = None,
        task_suite_id: str | None = None,
        user_id: str | None = None,
        status: str | Sequence[str] | None = None,
        sort: str | Sequence[str] | None = None,
        limit: int | None = None,
        **ranges: Any,
    ) -> Page[Assignment]:
        """Search assignments; one of pool_id/task_id/task_suite_id is required by the API.

        ``ranges``: ``id_gt``, ``submitted_gte``, ``accepted_lte``, ... (datetimes
        or strings); ``sort`` e.g. ``["submitted", "id"]``.
        """
        _check_ranges("/assignments", ranges)
        params = {"pool_id": pool_id, "task_id": task_id, "task_suite_id": task_suite_id,
                  "user_id": user_id, "status": status, "sort": sort, "limit": limit, **ranges}
        return await self._search(Assignment, "/assignments", params)

    def iter_assignments(
        self,
        pool_id: str,
        *,
        status: str | Sequence[str] | None = None,
        batch_size: int = 1000,
        **ranges: Any,
    ) -> AsyncIterator[Assignment]:
        """Every matching assignment of a pool in id order (pages with ``id_gt``)."""
        _check_ranges("/assignments", ranges)
        ranges.pop("id_gt", None)

        async def fetch(id_gt: str | None) -> Page[Assignment]:
            return await self.find_assignments(pool_id=pool_id, status=status, sort="id",
                                               limit=batch_size, id_gt=id_gt, **ranges)

        return iterate_by_id(fetch)

    async def accept_assignment(self, assignment_id: str, public_comment: str = "") -> Assignment:
        """Accept; succeeds also when it is ACCEPTED already (a replay, or done in the UI)."""
        return await self._review(assignment_id, "ACCEPTED", public_comment)

    async def reject_assignment(self, assignment_id: str, public_comment: str) -> Assignment:
        """Reject (Toloka wants a reason); succeeds also when it is REJECTED already."""
        return await self._review(assignment_id, "REJECTED", public_comment)

    async def _review(self, assignment_id: str, status: str, comment: str) -> Assignment:
        path = f"/assignments/{assignment_id}"
        try:
            # Safe to repeat: a repeat of an applied PATCH ends in the conflict below.
            resp = await self.http.request("PATCH", path, body={"status": status, "public_comment": comment},
                                           retry_writes=True)
        except IncorrectAction as exc:
            current = await self.get_assignment(assignment_id)
            if current.status == status:
                log.info("assignment %s is already %s", assignment_id, status)
                return current
            exc.current_status = current.status
            raise
        if isinstance(resp.data, Mapping) and resp.data.get("id") and resp.data.get("status"):
            return Assignment.from_json(resp.data)
        return await self.get_assignment(assignment_id)

    # --- attachments -----------------------------------------------------------

    async def get_attachment(self, attachment_id: str) -> Attachment:
        return await self._get_record(Attachment, f"/attachments/{_segment(attachment_id)}")

    async def find_attachments(
        self,
        *,
        assignment_id: str | None = None,
        pool_id: str | None = None,
        user_id: str | None = None,
        sort: str | None = "id",
        limit: int | None = 100,
        **ranges: Any,
    ) -> Page[Attachment]:
        _check_ranges("/attachments", ranges)
        params = {"assignment_id": assignment_id, "pool_id": pool_id, "user_id": user_id,
                  "sort": sort, "limit": limit, **ranges}
        return await self._search(Attachment, "/attachments", params)

    async def download_attachment(self, attachment_id: str, *, max_bytes: int = DEFAULT_ATTACHMENT_LIMIT) -> bytes:
        """The attachment's bytes; :class:`AttachmentTooLarge` (without reading it all) past the limit."""
        return await self.http.download(f"/attachments/{_segment(attachment_id)}/download", max_bytes=max_bytes)

    # --- bonuses ---------------------------------------------------------------

    async def create_user_bonuses(
        self,
        bonuses: Sequence[Mapping[str, Any]],
        *,
        operation_id: str,
        skip_invalid_items: bool = False,
    ) -> BatchResult[UserBonus]:
        """Pay bonuses once: ``{user_id, amount: Decimal, assignment_id, public_title, ...}``."""
        params = {"async_mode": True, "operation_id": operation_id, "skip_invalid_items": skip_invalid_items}
        op, _ = await self._start_create("/user-bonuses", bonuses, params, operation_id, "USER_BONUS.BATCH_CREATE")
        by_index, errors = await self._finished_log(op, "user_bonus_id")
        found: dict[str, UserBonus] = {}
        ids = [bonus_id for bonus_id, _ in by_index.values()]
        if len(ids) == 1:
            found[ids[0]] = await self._get_record(UserBonus, f"/user-bonuses/{ids[0]}")
        elif ids:
            wanted = set(ids)

            async def fetch(id_gt: str | None) -> Page[UserBonus]:
                return await self.find_user_bonuses(id_gte=min(ids), id_lte=max(ids), id_gt=id_gt, limit=1000)

            async for bonus in iterate_by_id(fetch):
                if bonus.id in wanted:
                    found[bonus.id] = bonus
        return BatchResult(_by_index(by_index, found, "user bonus"), errors)

    async def create_user_bonus(self, bonus: Mapping[str, Any], *, operation_id: str) -> UserBonus:
        """One bonus; :class:`ValidationError` if Toloka refuses it."""
        result = await self.create_user_bonuses([bonus], operation_id=operation_id)
        if 0 in result.items:
            return result.items[0]
        raise ValidationError("POST", "/user-bonuses", None, "VALIDATION_ERROR",
                              "the bonus was refused", payload=dict(result.validation_errors.get(0, {})))

    async def find_user_bonuses(
        self,
        *,
        assignment_id: str | None = None,
        user_id: str | None = None,
        sort: str | None = "id",
        limit: int | None = None,
        **ranges: Any,
    ) -> Page[UserBonus]:
        _check_ranges("/user-bonuses", ranges)
        params = {"assignment_id": assignment_id, "user_id": user_id, "sort": sort, "limit": limit, **ranges}
        return await self._search(UserBonus, "/user-bonuses", params)

    async def bonuses_for_assignment(self, assignment_id: str) -> list[UserBonus]:
        """Every bonus already paid for an assignment (the "already paid?" look-up)."""

        async def fetch(id_gt: str | None) -> Page[UserBonus]:
            return await self.find_user_bonuses(assignment_id=assignment_id, id_gt=id_gt, limit=300)

        return [b async for b in iterate_by_id(fetch)]

    # --- skills ------------------------------------------------------------------

    async def find_user_skills(
        self,
        *,
        skill_id: str | None = None,
        user_id: str | None = None,
        sort: str | None = "id",
        limit: int | None = None,
        **ranges: Any,
    ) -> Page[UserSkill]:
        _check_ranges("/user-skills", ranges)
        params = {"skill_id": skill_id, "user_id": user_id, "sort": sort, "limit": limit, **ranges}
        return await self._search(UserSkill, "/user-skills", params)

    def iter_user_skills(self, skill_id: str, *, batch_size: int = 1000) -> AsyncIterator[UserSkill]:
        """Every worker's value of one skill (to weight answers)."""

        async def fetch(id_gt: str | None) -> Page[UserSkill]:
            return await self.find_user_skills(skill_id=skill_id, id_gt=id_gt, limit=batch_size)

        return iterate_by_id(fetch)

    # --- set-up: projects, pools, skills (``pipeline.py setup``) -------------------

    async def _create(self, cls: type[R], path: str, doc: Mapping[str, Any]) -> R:
        """POST one object (not retried after a failure that may have been applied: a
        repeat would make a second one; the caller finds the first by its marker)."""
        resp = await self.http.request("POST", path, body=dict(doc))
        if not isinstance(resp.data, Mapping) or not resp.data.get("id"):
            raise UnexpectedResponse("POST", path, resp.status, None, "expected the created object")
        return cls.from_json(resp.data)

    async def create_project(self, project: Mapping[str, Any]) -> Project:
        """``POST /projects``: a project with its task spec (input, output, view)."""
        return await self._create(Project, "/projects", project)

    async def create_pool(self, pool: Mapping[str, Any]) -> Pool:
        """``POST /pools``: a pool (Toloka creates it CLOSED)."""
        return await self._create(Pool, "/pools", pool)

    async def create_skill(self, skill: Mapping[str, Any]) -> Skill:
        """``POST /skills``: a skill (``name`` required)."""
        return await self._create(Skill, "/skills", skill)

    async def find_projects(self, *, status: str | None = None, batch_size: int = 300) -> list[Project]:
        """Every project of the account (optionally of one status), in id order."""

        async def fetch(id_gt: str | None) -> Page[Project]:
            return await self._search(Project, "/projects", {"status": status, "sort": "id",
                                                             "limit": batch_size, "id_gt": id_gt})

        return [p async for p in iterate_by_id(fetch)]

    async def find_all_pools(self, project_id: str, *, batch_size: int = 300) -> list[Pool]:
        """Every pool of a project, in id order."""

        async def fetch(id_gt: str | None) -> Page[Pool]:
            return await self.find_pools(project_id=project_id, sort="id", limit=batch_size, id_gt=id_gt)

        return [p async for p in iterate_by_id(fetch)]

    async def find_skills(self, *, name: str | None = None, batch_size: int = 300) -> list[Skill]:
        """Every skill (with this exact ``name``, if given), in id order."""

        async def fetch(id_gt: str | None) -> Page[Skill]:
            return await self._search(Skill, "/skills", {"name": name, "sort": "id", "limit": batch_size,
                                                         "id_gt": id_gt})

        return [s async for s in iterate_by_id(fetch)]

    # --- user restrictions -------------------------------------------------------

    async def restrict_user(
        self,
        *,
        user_id: str,
        scope: RestrictionScope,
        pool_id: str | None = None,
        project_id: str | None = None,
        private_comment: str = "",
        will_expire: datetime | None = None,
    ) -> UserRestriction:
        """Bar a worker from new tasks of a pool (``scope="POOL"``, ``pool_id``) or of every
        pool of a project (``"PROJECT"``, ``project_id``): ``PUT /user-restrictions``.

        Work the worker already holds may still be submitted. ``will_expire`` lifts it at that
        time (naive UTC); without it, it lasts until :meth:`delete_user_restriction`. A PUT
        is retried after a lost answer, so Toloka may hold two equal restrictions: an undo
        should delete what :meth:`find_user_restrictions` finds, not only the returned id.
        ValueError for a wrong combination of arguments (before any request);
        :class:`ValidationError` when Toloka refuses it (e.g. an unknown pool).
        """
        body = _restriction_body(user_id, scope, pool_id, project_id, private_comment, will_expire)
        resp = await self.http.request("PUT", "/user-restrictions", body=body)
        if not isinstance(resp.data, Mapping) or not resp.data.get("id"):
            raise UnexpectedResponse("PUT", "/user-restrictions", resp.status, None, "expected the restriction")
        return UserRestriction.from_json(resp.data)

    async def get_user_restriction(self, restriction_id: str) -> UserRestriction:
        """One restriction; :class:`NotFound` once it is deleted."""
        return await self._get_record(UserRestriction, f"/user-restrictions/{_segment(restriction_id)}")

    async def find_user_restrictions(
        self,
        *,
        user_id: str | None = None,
        pool_id: str | None = None,
        project_id: str | None = None,
        scope: str | None = None,
    ) -> list[UserRestriction]:
        """Every restriction matching the filters (all when none is given), in id order.

        Pages through the search (``sort=id``, ``id_gt``) to its end.
        """
        if scope is not None and scope not in _SEARCH_SCOPES:
            raise ValueError(f"scope must be one of {sorted(_SEARCH_SCOPES)}, not {scope!r}")
        params = {"user_id": user_id, "pool_id": pool_id, "project_id": project_id, "scope": scope,
                  "sort": "id", "limit": _RESTRICTION_PAGE}

        async def fetch(id_gt: str | None) -> Page[UserRestriction]:
            return await self._search(UserRestriction, "/user-restrictions", {**params, "id_gt": id_gt})

        return [r async for r in iterate_by_id(fetch)]

    async def delete_user_restriction(self, restriction_id: str) -> None:
        """Lift a restriction (``DELETE``, 204). One that is gone already (404) counts as
        lifted, so an undo can be repeated."""
        try:
            await self.http.request("DELETE", f"/user-restrictions/{_segment(restriction_id)}")
        except NotFound:
            log.info("user restriction %s is already deleted", restriction_id)

    # --- operations ----------------------------------------------------------

    async def get_operation(self, operation_id: str) -> Operation:
        return await self._get_record(Operation, f"/operations/{operation_id}")

    async def get_operation_log(self, operation_id: str) -> list[OperationLogItem]:
        data = await self._get(f"/operations/{operation_id}/log")
        if not isinstance(data, list):
            raise UnexpectedResponse("GET", f"/operations/{operation_id}/log", 200, None, "expected a list")
        return [OperationLogItem.from_json(d) for d in data]

    async def wait_operation(self, op: Operation) -> Operation:
        """Poll until SUCCESS or FAIL; :class:`OperationFailed` after ``operation_timeout_s``."""
        waited = 0.0
        while not op.is_finished:
            if waited >= self.operation_timeout_s:
                # Retryable: a repeat with the same operation_id resumes this operation.
                raise OperationFailed("GET", f"/operations/{op.id}", None, op.status,
                                      f"not finished after {self.operation_timeout_s:.0f} s", retryable=True)
            await self._sleep(self.operation_poll_s)
            waited += self.operation_poll_s
            op = await self.get_operation(str(op.id))
        return op

    async def _start_create(self, path: str, objects: Sequence[Mapping[str, Any]], params: Mapping[str, Any],
                            operation_id: str, op_type: str) -> tuple[Operation, bool]:
        """POST a batch with ``operation_id``, or pick up the operation a previous try started (True)."""
        body = [{**obj, _ITEM_IDX: str(i)} for i, obj in enumerate(objects)]
        try:
            resp = await self.http.request("POST", path, params=params, body=body, retry_writes=True)
        except OperationAlreadyExists:
            op = await self.get_operation(operation_id)
            if op.type != op_type:
                raise OperationFailed("POST", path, 409, "OPERATION_ALREADY_EXISTS",
                                      f"operation {operation_id} exists with type {op.type}, not {op_type}") from None
            log.info("resuming existing operation %s (%s)", operation_id, op_type)
            return op, True
        if not isinstance(resp.data, Mapping) or not resp.data.get("id"):
            raise UnexpectedResponse("POST", path, resp.status, None, "expected an operation")
        return Operation.from_json(resp.data), False

    async def _finished_log(self, op: Operation, id_key: str
                            ) -> tuple[dict[int, tuple[str, Mapping[str, Any]]], dict[int, Mapping[str, Any]]]:
        """Wait for ``op``; from its log: created ids (with the sent object) and errors, by index."""
        op = await self.wait_operation(op)
        entries = await self.get_operation_log(str(op.id))
        created: dict[int, tuple[str, Mapping[str, Any]]] = {}
        errors: dict[int, Mapping[str, Any]] = {}
        for entry in entries:
            raw_idx = entry.input.get(_ITEM_IDX)
            if raw_idx is None:
                continue  # e.g. the POOL_OPEN entry of open_pool=true
            idx = int(raw_idx)
            if entry.success and isinstance(entry.output, Mapping) and entry.output.get(id_key):
                created[idx] = (str(entry.output[id_key]), entry.input)
            else:
                errors[idx] = entry.output if isinstance(entry.output, Mapping) else {"error": entry.output}
        if op.status == "FAIL" and not created and not errors:
            raise OperationFailed("GET", f"/operations/{op.id}", None, "FAIL",
                                  f"operation {op.id} ({op.type}) failed: {dict(op.details)}")
        return created, errors


def _restriction_body(user_id: str, scope: str, pool_id: str | None, project_id: str | None,
                      private_comment: str, will_expire: datetime | None) -> dict[str, Any]:
    """The ``PUT /user-restrictions`` body; ValueError for arguments that do not fit together."""
    if not isinstance(user_id, str) or not user_id:
        raise ValueError("user_id is required")
    if scope not in get_args(RestrictionScope):
        raise ValueError(f"scope must be one of {list(get_args(RestrictionScope))}, not {scope!r}")
    target, other = ("pool_id", "project_id") if scope == "POOL" else ("project_id", "pool_id")
    value, stray = (pool_id, project_id) if scope == "POOL" else (project_id, pool_id)
    if not value:
        raise ValueError(f"scope {scope} needs {target}")
    if stray is not None:
        raise ValueError(f"{other} does not go with scope {scope}")
    if len(private_comment) > MAX_RESTRICTION_COMMENT:
        raise ValueError(f"private_comment is longer than {MAX_RESTRICTION_COMMENT} characters")
    body: dict[str, Any] = {"scope": scope, "user_id": user_id, target: str(value),
                            "private_comment": private_comment}
    if will_expire is not None:
        body["will_expire"] = will_expire
    return body


def _by_index(by_index: Mapping[int, tuple[str, Mapping[str, Any]]], found: Mapping[str, R],
              what: str) -> dict[int, R]:
    missing = [oid for oid, _ in by_index.values() if oid not in found]
    if missing:
        # Retryable: searches may show new objects late; the next try resumes the same
        # operation (by its operation_id) and reads them back again.
        raise UnexpectedResponse("GET", "/search", 200, None,
                                 f"created {what}s not found when read back: {missing[:5]}", retryable=True)
    return {idx: found[oid] for idx, (oid, _) in by_index.items()}


def _segment(value: str) -> str:
    """``value`` as one path segment: attachment ids come from worker output, so ``/``, ``..``,
    ``?`` or ``%`` in them must not steer the request to another resource."""
    text = quote(str(value), safe="")
    # "." and ".." are unreserved, so quote() keeps them; URL normalisation would then walk up.
    return text.replace(".", "%2E") if text.strip(".") == "" else text
