"""The emulator's state: JSON-shaped documents in memory, written through to SQLite.

Every object is kept exactly as the API returns it (a dict), so reads cost no
conversion. Each mutating method writes the changed documents to SQLite (WAL,
synchronous=NORMAL) before it returns, so a restarted emulator on the same file
has every object back. Methods are synchronous and must be called from one
thread (the app's event loop); they never read the clock: ``now`` is an argument.

Side indexes (per-pool id lists in creation order, per-pool time indexes, the
users that already worked on a task) are rebuilt at load time and kept in step
by the mutating methods; :mod:`emulator.search` serves searches from them.
"""

from __future__ import annotations

import bisect
import json
import os
import re
import sqlite3
from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from common.errors import PipelineError

from .ids import (
    FIRST_BONUS_ID,
    FIRST_DECIMAL_ID,
    IdClock,
    fmt_time,
    parse_stored_time,
    parse_time,
    pooled_id,
    truncate_ms,
)
from .quality_control import assessment_event, overlap_changes

# --- JSON with exact decimals -------------------------------------------------

_DEC_MARK = "\x00dec:"
_DEC_RE = re.compile(r'"\\u0000dec:([-+0-9.eE]+)"')


def _encode_default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        if not obj.is_finite():
            raise ValueError(f"non-finite number {obj}")
        return _DEC_MARK + str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"not JSON serializable: {type(obj).__name__}")


def json_dumps(obj: Any) -> str:
    """JSON text where Decimals are written as exact JSON numbers (not strings)."""
    text = json.dumps(obj, default=_encode_default, separators=(",", ":"), ensure_ascii=False)
    if "\\u0000dec:" in text:
        text = _DEC_RE.sub(r"\1", text)
    return text


def json_loads(text: str | bytes) -> Any:
    """Parse JSON with every float as a Decimal, so amounts stay exact."""
    return json.loads(text, parse_float=Decimal)


# Every stored object is a JSON object exactly as the API returns it.
Doc = dict[str, Any]


class StoreError(PipelineError):
    """A store call referred to a missing object or broke an invariant."""


# Time fields of an assignment, each set when its transition happens.
ASSIGNMENT_TIME_FIELDS = ("created", "submitted", "accepted", "rejected", "skipped", "expired")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (kind TEXT NOT NULL, id TEXT NOT NULL, doc TEXT NOT NULL,
                                    PRIMARY KEY (kind, id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS blobs (id TEXT PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS truth (kind TEXT NOT NULL, key TEXT NOT NULL, doc TEXT NOT NULL,
                                  PRIMARY KEY (kind, key)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS kv (name TEXT PRIMARY KEY, value TEXT NOT NULL);
"""

# Keys a task keeps from the submitted item, besides the ones the store computes.
_TASK_OPTIONAL_KEYS = (
    "known_solutions",
    "baseline_solutions",
    "message_on_unknown_solution",
    "reserved_for",
    "unavailable_for",
    "traits_all_of",
    "traits_any_of",
    "traits_none_of_any",
)

# Kinds whose serialized JSON the store keeps for fast search answers.
_CACHED_KINDS = frozenset({"task", "assignment"})

OWNER = {"id": "emulated-requester", "myself": True, "company_id": "emulated-company"}


class TimeIndex:
    """A sorted list of ``(time, id)`` for one (pool, time field): range scans by bisect."""

    __slots__ = ("keys",)

    def __init__(self) -> None:
        self.keys: list[tuple[datetime, str]] = []

    def add(self, at: datetime, object_id: str) -> None:
        key = (at, object_id)
        # Times mostly arrive in order, so this is an append in the common case.
        if not self.keys or self.keys[-1] <= key:
            self.keys.append(key)
        else:
            bisect.insort(self.keys, key)

    def remove(self, at: datetime, object_id: str) -> None:
        i = bisect.bisect_left(self.keys, (at, object_id))
        if i < len(self.keys) and self.keys[i] == (at, object_id):
            del self.keys[i]


class Store:
    """All emulator objects; see the module docstring and docs/emulator-contract."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        self._pending: list[tuple[str, str, str]] = []
        # The visibility delay applied by submit_assignment when the caller gives none;
        # the fault configuration sets it.
        self.default_visibility_delay = timedelta(0)
        self._reset_memory()
        self._load()

    # ------------------------------------------------------------------ internals

    def _reset_memory(self) -> None:
        self.projects: dict[str, Doc] = {}
        self.pools: dict[str, Doc] = {}
        self.skills: dict[str, Doc] = {}
        self.user_skills: dict[str, Doc] = {}
        self._user_skill_by_pair: dict[tuple[str, str], str] = {}
        self.tasks: dict[str, Doc] = {}
        self.pool_tasks: dict[str, list[str]] = defaultdict(list)
        # Per pool, the sorted ids of tasks with overlap left (or infinite): what
        # available_tasks scans, so finished tasks cost nothing on every crowd step.
        self.pool_open_tasks: dict[str, list[str]] = defaultdict(list)
        self._task_users: dict[str, set[str]] = defaultdict(set)
        self.suites: dict[str, Doc] = {}
        self.assignments_by_id: dict[str, Doc] = {}
        self.pool_assignments: dict[str, list[str]] = defaultdict(list)
        self.task_assignments: dict[str, list[str]] = defaultdict(list)
        self._suite_assignments: dict[str, list[str]] = defaultdict(list)
        self.time_index: dict[tuple[str, str], TimeIndex] = defaultdict(TimeIndex)
        self.visible_after: dict[str, datetime] = {}
        # Per pool, SUBMITTED assignments not reviewed yet -> submitted time (auto-accept).
        self._unreviewed: dict[str, dict[str, datetime]] = defaultdict(Doc)
        self.attachments: dict[str, Doc] = {}
        self.bonuses_by_id: dict[str, Doc] = {}
        self.bonus_order: list[str] = []
        self.operations: dict[str, Doc] = {}
        self.operation_logs: dict[str, list[Doc]] = {}
        # Operations shown RUNNING although their work is done: id -> final status, due time, polls.
        self.running_operations: dict[str, Doc] = {}
        self.restrictions: dict[str, Doc] = {}
        # (scope, target) -> user -> ids of its restrictions there; target is the pool id (POOL),
        # the project id (PROJECT) or "" (ALL_PROJECTS). What available_tasks and the crowd ask.
        self._restriction_index: dict[tuple[str, str], dict[str, set[str]]] = defaultdict(dict)
        self._kv: dict[str, Any] = {}
        self._clock = IdClock()
        # Serialized JSON of each saved task/assignment, kept current by _save (every
        # mutation saves), so large search answers are joined, not re-encoded.
        self._json: dict[str, str] = {}

    def _load(self) -> None:
        for name, value in self._db.execute("SELECT name, value FROM kv"):
            self._kv[name] = json_loads(value)
        clock = self._kv.get("_id_clock")
        if clock:
            self._clock = IdClock(clock["last_seconds"], clock["counter"])
        rows = self._db.execute("SELECT kind, id, doc FROM objects ORDER BY kind, id")
        for kind, object_id, text in rows:
            doc = json_loads(text)
            if kind == "visible_after":
                self.visible_after[object_id] = parse_stored_time(doc)
                continue
            if kind == "oplog":
                self.operation_logs[object_id] = doc
                continue
            if kind == "op_running":
                if doc is not None:  # null: finished since
                    self.running_operations[object_id] = doc
                continue
            if kind in _CACHED_KINDS:
                self._json[object_id] = text
            self._index(kind, doc)

    def _index(self, kind: str, doc: Doc) -> None:
        """Put a freshly loaded or created document into memory and the side indexes."""
        object_id = doc["id"]
        if kind == "project":
            self.projects[object_id] = doc
        elif kind == "pool":
            self.pools[object_id] = doc
        elif kind == "skill":
            self.skills[object_id] = doc
        elif kind == "user_skill":
            self.user_skills[object_id] = doc
            self._user_skill_by_pair[(doc["skill_id"], doc["user_id"])] = object_id
        elif kind == "task":
            self.tasks[object_id] = doc
            _append_sorted(self.pool_tasks[doc["pool_id"]], object_id)
            self._refresh_open(doc)
        elif kind == "suite":
            self.suites[object_id] = doc
        elif kind == "assignment":
            self._index_assignment(object_id, doc)
        elif kind == "attachment":
            self.attachments[object_id] = doc
        elif kind == "bonus":
            self.bonuses_by_id[object_id] = doc
            _append_sorted(self.bonus_order, object_id)
        elif kind == "operation":
            self.operations[object_id] = doc
        elif kind == "restriction":
            self.restrictions[object_id] = doc
            self._restriction_index[_restriction_key(doc)].setdefault(str(doc.get("user_id")), set()).add(object_id)
        else:  # pragma: no cover - a newer db read by older code
            raise StoreError(f"unknown object kind {kind!r} in {self.path}")

    def _index_assignment(self, object_id: str, doc: Doc) -> None:
        self.assignments_by_id[object_id] = doc
        pool_id = doc["pool_id"]
        _append_sorted(self.pool_assignments[pool_id], object_id)
        self._suite_assignments[doc["task_suite_id"]].append(object_id)
        for task in doc["tasks"]:
            self.task_assignments[task["id"]].append(object_id)
            self._task_users[task["id"]].add(doc["user_id"])
        for field in ASSIGNMENT_TIME_FIELDS:
            if doc.get(field):
                self.time_index[(pool_id, field)].add(parse_stored_time(doc[field]), object_id)
        if doc["status"] == "SUBMITTED":
            self._unreviewed[pool_id][object_id] = parse_stored_time(doc["submitted"])

    def _save(self, kind: str, object_id: str, doc: Any) -> None:
        text = json_dumps(doc)
        if kind in _CACHED_KINDS:
            self._json[object_id] = text
        if kind == "task":
            self._refresh_open(doc)
        self._pending.append((kind, object_id, text))

    def _refresh_open(self, task: Doc) -> None:
        """Keep the task's membership in its pool's open-task list in step with its overlap."""
        ids = self.pool_open_tasks[task["pool_id"]]
        task_id = task["id"]
        is_open = bool(task["infinite_overlap"]) or (task["remaining_overlap"] or 0) > 0
        i = bisect.bisect_left(ids, task_id)
        present = i < len(ids) and ids[i] == task_id
        if is_open and not present:
            ids.insert(i, task_id)
        elif present and not is_open:
            del ids[i]

    def doc_json(self, object_id: str) -> str | None:
        """The current JSON text of a task or assignment (None for other kinds)."""
        return self._json.get(object_id)

    def _kv_save(self, name: str, value: Any) -> None:
        self._kv[name] = value
        self._db.execute(
            "INSERT OR REPLACE INTO kv (name, value) VALUES (?, ?)", (name, json_dumps(value))
        )

    def _flush(self) -> None:
        """Write pending documents in one transaction (commit per public call)."""
        if not self._pending:
            return
        rows, self._pending = self._pending, []
        with self._db:
            self._db.execute("BEGIN")
            self._db.executemany(
                "INSERT OR REPLACE INTO objects (kind, id, doc) VALUES (?, ?, ?)", rows
            )
            clock = {"last_seconds": self._clock.last_seconds, "counter": self._clock.counter}
            self._db.execute(
                "INSERT OR REPLACE INTO kv (name, value) VALUES ('_id_clock', ?)",
                (json_dumps(clock),),
            )

    def _object_body(self, now: datetime) -> str:
        return self._clock.next_hex(now)

    def _bonus_id(self) -> str:
        """A user bonus id as Toloka gives it: a decimal number (as a string), here of a fixed
        width (9 digits), so string order is creation order (clients page by ``id_gt``)."""
        name = "_seq:user_bonus"
        value = int(self._kv.get(name, FIRST_BONUS_ID - 1)) + 1
        self._kv_save(name, value)
        return str(value)

    def _decimal_id(self, kind: str) -> str:
        name = f"_seq:{kind}"
        value = int(self._kv.get(name, FIRST_DECIMAL_ID - 1)) + 1
        self._kv_save(name, value)
        return str(value)

    def close(self) -> None:
        """Flush and close the database."""
        self._flush()
        self._db.close()

    # ------------------------------------------------------------------ projects

    def create_project(self, doc: Doc, now: datetime) -> Doc:
        """Create a project; ``task_spec`` and every other given field are kept as given."""
        project = {k: v for k, v in doc.items() if k not in ("id", "created", "owner")}
        project.setdefault("status", "ACTIVE")
        project.update(id=self._decimal_id("project"), created=fmt_time(truncate_ms(now)))
        project["owner"] = dict(OWNER)
        self._index("project", project)
        self._save("project", project["id"], project)
        self._flush()
        return project

    def get_project(self, project_id: str) -> Doc | None:
        return self.projects.get(project_id)

    # ------------------------------------------------------------------ pools

    def create_pool(self, doc: Doc, now: datetime) -> Doc:
        """Create a pool; like Toloka, a new pool is CLOSED."""
        readonly = ("id", "status", "created", "last_started", "last_stopped", "owner")
        pool = {k: v for k, v in doc.items() if k not in readonly}
        pool.setdefault("type", "REGULAR")
        pool.setdefault("priority", 0)
        pool.update(
            id=self._decimal_id("pool"),
            status="CLOSED",
            created=fmt_time(truncate_ms(now)),
            owner=dict(OWNER),
        )
        self._index("pool", pool)
        self._save("pool", pool["id"], pool)
        self._flush()
        return pool

    def _pool(self, pool_id: str) -> Doc:
        pool = self.pools.get(pool_id)
        if pool is None:
            raise StoreError(f"no pool {pool_id}")
        return pool

    def _set_pool(self, pool: Doc) -> Doc:
        self._save("pool", pool["id"], pool)
        self._flush()
        return pool

    def open_pool(self, pool_id: str, now: datetime) -> Doc:
        pool = self._pool(pool_id)
        pool["status"] = "OPEN"
        pool["last_started"] = fmt_time(truncate_ms(now))
        return self._set_pool(pool)

    def close_pool(self, pool_id: str, now: datetime, reason: str = "MANUAL") -> Doc:
        pool = self._pool(pool_id)
        pool["status"] = "CLOSED"
        pool["last_stopped"] = fmt_time(truncate_ms(now))
        pool["last_close_reason"] = reason
        return self._set_pool(pool)

    def archive_pool(self, pool_id: str, now: datetime) -> Doc:
        pool = self._pool(pool_id)
        if pool["status"] == "OPEN":
            pool["last_stopped"] = fmt_time(truncate_ms(now))
            pool["last_close_reason"] = "MANUAL"
        pool["status"] = "ARCHIVED"
        return self._set_pool(pool)

    def update_pool(self, pool_id: str, fields: Doc) -> Doc:
        """Replace the writable fields of a pool (PUT) or patch some (PATCH priority)."""
        pool = self._pool(pool_id)
        readonly = ("id", "status", "created", "last_started", "last_stopped", "owner",
                    "last_close_reason", "project_id")
        for key, value in fields.items():
            if key not in readonly:
                pool[key] = value
        return self._set_pool(pool)

    def get_pool(self, pool_id: str) -> Doc | None:
        return self.pools.get(pool_id)

    def list_pools(self) -> list[Doc]:
        return [self.pools[k] for k in sorted(self.pools, key=int)]

    # ------------------------------------------------------------------ skills

    def create_skill(self, name: str, now: datetime, extra: Doc | None = None) -> Doc:
        """Create a skill ``{"id", "name", "created"}`` (plus any extra given fields)."""
        skill = dict(extra or {})
        skill.update(id=self._decimal_id("skill"), name=name, created=fmt_time(truncate_ms(now)))
        skill.setdefault("owner", dict(OWNER))
        self._index("skill", skill)
        self._save("skill", skill["id"], skill)
        self._flush()
        return skill

    def set_user_skill(self, skill_id: str, user_id: str, value: float | Decimal,
                       now: datetime) -> Doc:
        """Set a worker's skill; ``value`` is the rounded int, ``exact_value`` the given one."""
        exact = value if isinstance(value, Decimal) else Decimal(str(value))
        stamp = fmt_time(truncate_ms(now))
        existing = self._user_skill_by_pair.get((skill_id, user_id))
        if existing is not None:
            doc = self.user_skills[existing]
            doc.update(value=int(exact.to_integral_value()), exact_value=exact, modified=stamp)
        else:
            doc = {
                "id": self._decimal_id("user_skill"),
                "skill_id": skill_id,
                "user_id": user_id,
                "value": int(exact.to_integral_value()),
                "exact_value": exact,
                "created": stamp,
                "modified": stamp,
            }
            self._index("user_skill", doc)
        self._save("user_skill", doc["id"], doc)
        self._flush()
        return doc

    def delete_user_skill(self, user_skill_id: str) -> bool:
        doc = self.user_skills.pop(user_skill_id, None)
        if doc is None:
            return False
        self._user_skill_by_pair.pop((doc["skill_id"], doc["user_id"]), None)
        self._db.execute("DELETE FROM objects WHERE kind='user_skill' AND id=?", (user_skill_id,))
        return True

    # ------------------------------------------------------------------ restrictions

    def put_restriction(self, doc: Doc, now: datetime) -> tuple[Doc, bool]:
        """Restrict a user (``PUT /user-restrictions``); returns (restriction, created).

        A PUT for a (user, scope, pool or project) that already has a restriction replaces
        that one's ``private_comment`` and ``will_expire`` and keeps its id, so a retried
        PUT (the client repeats PUTs after a lost answer) makes no second restriction.
        ``doc`` is validated by the route; its ``id`` and ``created`` are ignored.
        """
        fields = {k: v for k, v in doc.items() if k not in ("id", "created")}
        same = self._restriction_index.get(_restriction_key(fields), {}).get(str(fields.get("user_id")))
        if same:
            existing = self.restrictions[min(same)]
            kept = {"id": existing["id"], "created": existing["created"]}
            existing.clear()
            existing.update(fields, **kept)
            self._save("restriction", existing["id"], existing)
            self._flush()
            return existing, False
        restriction = {**fields, "id": self._decimal_id("restriction"), "created": fmt_time(truncate_ms(now))}
        self._index("restriction", restriction)
        self._save("restriction", restriction["id"], restriction)
        self._flush()
        return restriction, True

    def set_restriction(self, doc: Doc, now: datetime) -> Doc:
        """:meth:`put_restriction` without the "created" flag."""
        return self.put_restriction(doc, now)[0]

    def get_restriction(self, restriction_id: str) -> Doc | None:
        return self.restrictions.get(restriction_id)

    def delete_restriction(self, restriction_id: str) -> bool:
        doc = self.restrictions.pop(restriction_id, None)
        if doc is None:
            return False
        users = self._restriction_index.get(_restriction_key(doc), {})
        ids = users.get(str(doc.get("user_id")), set())
        ids.discard(restriction_id)
        if not ids:
            users.pop(str(doc.get("user_id")), None)
        self._db.execute("DELETE FROM objects WHERE kind='restriction' AND id=?", (restriction_id,))
        return True

    def _restricting(self, pool_id: str) -> list[dict[str, set[str]]]:
        """user -> restriction ids, for each scope that covers the pool (pool, project, all)."""
        pool = self.pools.get(pool_id)
        if pool is None:
            return []
        keys = (("POOL", pool_id), ("PROJECT", str(pool.get("project_id"))), ("ALL_PROJECTS", ""))
        return [self._restriction_index[k] for k in keys if k in self._restriction_index]

    def restricted_users(self, pool_id: str, now: datetime) -> frozenset[str]:
        """Users who may take no new task in the pool at ``now``: restricted on the pool, on its
        project or on all projects, by a restriction whose ``will_expire`` has not passed."""
        return frozenset(user for users in self._restricting(pool_id) for user, ids in users.items()
                         if any(_restriction_active(self.restrictions[i], now) for i in ids))

    def is_restricted(self, user_id: str, pool_id: str, now: datetime) -> bool:
        """``user_id`` may take no new task in the pool at ``now`` (see :meth:`restricted_users`)."""
        return any(_restriction_active(self.restrictions[i], now)
                   for users in self._restricting(pool_id) for i in users.get(user_id, ()))

    # ------------------------------------------------------------------ tasks

    def create_tasks(self, pool_id: str, items: list[Doc], now: datetime) -> list[Doc]:
        """Create tasks in order; overlap comes from the item, else the pool default, else 1.

        The overlap pair is always consistent: a number with ``infinite_overlap: false``,
        or ``null`` with ``true`` (toloka-kit rejects anything else).
        """
        pool = self._pool(pool_id)
        default_overlap = (pool.get("defaults") or {}).get("default_overlap_for_new_tasks")
        stamp = fmt_time(truncate_ms(now))
        created: list[Doc] = []
        for item in items:
            task_id = pooled_id(pool_id, self._object_body(now))
            task: dict[str, Any] = {"id": task_id, "pool_id": pool_id,
                                    "input_values": item["input_values"]}
            if item.get("infinite_overlap"):
                task.update(overlap=None, infinite_overlap=True, remaining_overlap=None)
            else:
                overlap = item.get("overlap")
                if overlap is None:
                    overlap = default_overlap if default_overlap is not None else 1
                task.update(overlap=int(overlap), infinite_overlap=False,
                            remaining_overlap=int(overlap))
            for key in _TASK_OPTIONAL_KEYS:
                if item.get(key) is not None:
                    task[key] = item[key]
            task["created"] = stamp
            task["origin_task_id"] = task_id
            self._index("task", task)
            self._save("task", task_id, task)
            created.append(task)
        self._flush()
        return created

    def get_task(self, task_id: str) -> Doc | None:
        return self.tasks.get(task_id)

    def set_task_overlap(self, task_id: str, overlap: int | None, infinite: bool,
                         or_min: bool = False) -> Doc:
        """Change a task's overlap; ``or_min`` never goes below the overlap already used."""
        task = self.tasks[task_id]
        used = len(self.task_assignments.get(task_id, ())) - self._returned_count(task_id)
        if infinite:
            task.update(overlap=None, infinite_overlap=True, remaining_overlap=None)
        else:
            value = int(overlap or 0)
            if or_min:
                value = max(value, used)
            task.update(overlap=value, infinite_overlap=False,
                        remaining_overlap=max(value - used, 0))
        self._save("task", task_id, task)
        self._flush()
        return task

    def patch_task(self, task_id: str, fields: Doc) -> Doc:
        task = self.tasks[task_id]
        for key in ("baseline_solutions", "known_solutions", "message_on_unknown_solution"):
            if key in fields:
                task[key] = fields[key]
        self._save("task", task_id, task)
        self._flush()
        return task

    def _returned_count(self, task_id: str) -> int:
        return sum(
            1
            for a in self.task_assignments.get(task_id, ())
            if self.assignments_by_id[a]["status"] in ("SKIPPED", "EXPIRED")
        )

    def available_tasks(self, pool_id: str, user_id: str, limit: int, *, now: datetime | None = None) -> list[Doc]:
        """Tasks a worker may take now, in creation order.

        remaining_overlap > 0 (or infinite), the user is not in ``unavailable_for``,
        ``reserved_for`` is empty or names the user, and the user has no assignment on
        the task yet. Given ``now``, a user restricted on the pool (its project, all
        projects) at that time gets none; without it restrictions are not looked at.
        """
        if now is not None and self.is_restricted(user_id, pool_id, now):
            return []
        found: list[Doc] = []
        for task_id in self.pool_open_tasks.get(pool_id, ()):
            task = self.tasks[task_id]
            if user_id in (task.get("unavailable_for") or ()):
                continue
            reserved = task.get("reserved_for")
            if reserved and user_id not in reserved:
                continue
            if user_id in self._task_users.get(task_id, ()):
                continue
            found.append(task)
            if len(found) >= limit:
                break
        return found

    def is_open(self, task_id: str) -> bool:
        """The task has overlap left (or infinite overlap)."""
        task = self.tasks.get(task_id)
        if task is None:
            return False
        ids = self.pool_open_tasks.get(task["pool_id"], [])
        i = bisect.bisect_left(ids, task_id)
        return i < len(ids) and ids[i] == task_id

    def has_worked_on(self, task_id: str, user_id: str) -> bool:
        """The user has (or had) an assignment with this task."""
        return user_id in self._task_users.get(task_id, ())

    # ------------------------------------------------------------------ assignments

    def create_assignment(self, pool_id: str, user_id: str, task_ids: list[str],
                          now: datetime, *, mixed: bool = False) -> Doc:
        """A worker takes a suite of tasks: an ACTIVE assignment; overlaps go down by one.

        A task with ``known_solutions`` (a control task) carries them inside the assignment,
        as Toloka serves it; ``mixed`` says the suite got control tasks from the mixer.
        """
        pool = self._pool(pool_id)
        stamp = fmt_time(truncate_ms(now))
        suite_id = pooled_id(pool_id, self._object_body(now))
        assignment_id = pooled_id(pool_id, self._object_body(now))
        embedded = []
        for task_id in task_ids:
            task = self.tasks.get(task_id)
            if task is None or task["pool_id"] != pool_id:
                raise StoreError(f"task {task_id} is not in pool {pool_id}")
            if not task["infinite_overlap"]:
                task["remaining_overlap"] = max((task["remaining_overlap"] or 0) - 1, 0)
                self._save("task", task_id, task)
            served: Doc = {"id": task_id, "pool_id": pool_id,
                           "input_values": task["input_values"],
                           "origin_task_id": task.get("origin_task_id", task_id)}
            for key in ("known_solutions", "message_on_unknown_solution"):
                if task.get(key) is not None:
                    served[key] = task[key]
            embedded.append(served)
        suite = {"id": suite_id, "pool_id": pool_id, "tasks": [{"task_id": t} for t in task_ids],
                 "created": stamp, "overlap": 1, "infinite_overlap": False}
        assignment = {
            "id": assignment_id,
            "task_suite_id": suite_id,
            "pool_id": pool_id,
            "user_id": user_id,
            "status": "ACTIVE",
            "reward": pool.get("reward_per_assignment", 0),
            "bonus_ids": [],
            "tasks": embedded,
            "mixed": mixed,
            "automerged": False,
            "created": stamp,
            "submitted": None,
            "accepted": None,
            "rejected": None,
            "skipped": None,
            "expired": None,
            "owner": dict(OWNER),
        }
        self._index("suite", suite)
        self._index("assignment", assignment)
        self._save("suite", suite_id, suite)
        self._save("assignment", assignment_id, assignment)
        self._flush()
        return assignment

    def _assignment(self, assignment_id: str) -> Doc:
        doc = self.assignments_by_id.get(assignment_id)
        if doc is None:
            raise StoreError(f"no assignment {assignment_id}")
        return doc

    def _stamp(self, doc: Doc, field: str, now: datetime) -> None:
        at = truncate_ms(now)
        doc[field] = fmt_time(at)
        self.time_index[(doc["pool_id"], field)].add(at, doc["id"])

    def add_attachment(self, assignment_id: str, name: str, media_type: str, data: bytes,
                       now: datetime) -> Doc:
        """Store a file a worker uploaded; returns the metadata document."""
        assignment = self._assignment(assignment_id)
        attachment_id = pooled_id(assignment["pool_id"], self._object_body(now))
        doc = {
            "id": attachment_id,
            "attachment_type": "ASSIGNMENT_ATTACHMENT",
            "name": name,
            "media_type": media_type,
            "details": {"user_id": assignment["user_id"], "assignment_id": assignment_id,
                        "pool_id": assignment["pool_id"]},
            "created": fmt_time(truncate_ms(now)),
            "owner": dict(OWNER),
        }
        self._index("attachment", doc)
        self._save("attachment", attachment_id, doc)
        self._db.execute("INSERT OR REPLACE INTO blobs (id, data) VALUES (?, ?)",
                         (attachment_id, bytes(data)))
        self._flush()
        return doc

    def submit_assignment(self, assignment_id: str, solutions: list[Doc], now: datetime,
                          visible_after: datetime | None = None) -> Doc:
        """ACTIVE -> SUBMITTED (then ACCEPTED at once if the pool auto-accepts).

        ``visible_after`` hides the assignment from searches until then; by default
        ``now + default_visibility_delay`` (the fault configuration).
        """
        doc = self._assignment(assignment_id)
        if doc["status"] != "ACTIVE":
            raise StoreError(f"assignment {assignment_id} is {doc['status']}, not ACTIVE")
        doc["status"] = "SUBMITTED"
        doc["solutions"] = solutions
        self._stamp(doc, "submitted", now)
        if visible_after is None and self.default_visibility_delay > timedelta(0):
            visible_after = now + self.default_visibility_delay
        if visible_after is not None:
            self.visible_after[assignment_id] = visible_after
            self._save("visible_after", assignment_id, fmt_time(visible_after))
        pool = self.pools.get(doc["pool_id"]) or {}
        if pool.get("auto_accept_solutions"):
            doc["status"] = "ACCEPTED"
            self._stamp(doc, "accepted", now)
        else:
            self._unreviewed[doc["pool_id"]][assignment_id] = truncate_ms(now)
        self._save("assignment", assignment_id, doc)
        self._flush()
        return doc

    def _give_back(self, doc: Doc) -> None:
        for task in doc["tasks"]:
            stored = self.tasks.get(task["id"])
            if stored is not None and not stored["infinite_overlap"]:
                stored["remaining_overlap"] = (stored["remaining_overlap"] or 0) + 1
                self._save("task", stored["id"], stored)

    def skip_assignment(self, assignment_id: str, now: datetime) -> Doc:
        """ACTIVE -> SKIPPED; the tasks' overlap is given back."""
        return self._end_active(assignment_id, "SKIPPED", "skipped", now)

    def expire_assignment(self, assignment_id: str, now: datetime) -> Doc:
        """ACTIVE -> EXPIRED; the tasks' overlap is given back."""
        return self._end_active(assignment_id, "EXPIRED", "expired", now)

    def _end_active(self, assignment_id: str, status: str, field: str, now: datetime) -> Doc:
        doc = self._assignment(assignment_id)
        if doc["status"] != "ACTIVE":
            raise StoreError(f"assignment {assignment_id} is {doc['status']}, not ACTIVE")
        doc["status"] = status
        self._stamp(doc, field, now)
        self._give_back(doc)
        self._save("assignment", assignment_id, doc)
        self._flush()
        return doc

    def review_assignment(self, assignment_id: str, status: str, public_comment: str | None,
                          now: datetime) -> Doc:
        """Accept or reject (the API checks the transition first).

        The pool's ``AssignmentsAssessment`` -> ``ChangeOverlap`` rules fire in the same
        transaction (see :mod:`emulator.quality_control`), so a rejection raises the overlap
        exactly once, and a restart finds both changes or neither.
        """
        doc = self._assignment(assignment_id)
        event = assessment_event(doc["status"], status)
        doc["status"] = status
        self._unreviewed[doc["pool_id"]].pop(assignment_id, None)
        if public_comment is not None:
            doc["public_comment"] = public_comment
        self._stamp(doc, "accepted" if status == "ACCEPTED" else "rejected", now)
        self._save("assignment", assignment_id, doc)
        self._apply_assessment_rules(doc, event, now)
        self._flush()
        return doc

    def _apply_assessment_rules(self, doc: Doc, event: str | None, now: datetime) -> None:
        """Carry out the pool's ``CHANGE_OVERLAP`` rules that fire on ``event`` (unflushed)."""
        pool = self.pools.get(doc["pool_id"])
        if pool is None:
            return
        for change in overlap_changes(pool.get("quality_control"), event):
            for embedded in doc["tasks"]:
                task = self.tasks.get(embedded["id"])
                if task is None or task["infinite_overlap"]:
                    continue
                overlap = max(int(task["overlap"] or 0) + change.delta, 0)
                remaining = max(int(task["remaining_overlap"] or 0) + change.delta, 0)
                task.update(overlap=overlap, remaining_overlap=min(remaining, overlap))
                self._save("task", task["id"], task)
            if change.open_pool and pool["status"] == "CLOSED":
                pool["status"] = "OPEN"
                pool["last_started"] = fmt_time(truncate_ms(now))
                self._save("pool", pool["id"], pool)

    def auto_accept_due(self, now: datetime, speed: float) -> list[str]:
        """Accept SUBMITTED assignments older than their pool's ``auto_accept_period_day``.

        A simulated day lasts ``86400 / speed`` real seconds.
        """
        accepted: list[str] = []
        for pool_id, pool in self.pools.items():
            days = pool.get("auto_accept_period_day")
            if days is None:
                continue
            period = timedelta(seconds=float(days) * 86400.0 / max(speed, 1e-9))
            limit = now - period
            waiting = self._unreviewed.get(pool_id)
            if not waiting:
                continue
            due = sorted((at, a) for a, at in waiting.items() if at <= limit)
            for _, assignment_id in due:
                doc = self.assignments_by_id[assignment_id]
                del waiting[assignment_id]
                if doc["status"] == "SUBMITTED":
                    doc["status"] = "ACCEPTED"
                    self._stamp(doc, "accepted", now)
                    self._save("assignment", assignment_id, doc)
                    accepted.append(assignment_id)
        self._flush()
        return accepted

    def get_assignment(self, assignment_id: str) -> Doc | None:
        return self.assignments_by_id.get(assignment_id)

    def assignments(self, pool_id: str | None = None, status: str | None = None) -> list[Doc]:
        """Assignments of a pool (or all), in creation order, optionally of one status."""
        if pool_id is not None:
            docs: Iterable[Doc] = (self.assignments_by_id[a]
                                    for a in self.pool_assignments.get(pool_id, ()))
        else:
            docs = (self.assignments_by_id[a] for p in sorted(self.pool_assignments, key=int)
                    for a in self.pool_assignments[p])
        return [d for d in docs if status is None or d["status"] == status]

    def get_suite(self, suite_id: str) -> Doc | None:
        return self.suites.get(suite_id)

    def suite_assignments(self, suite_id: str) -> list[str]:
        """Assignment ids of a task suite (one per suite in this emulator)."""
        return list(self._suite_assignments.get(suite_id, ()))

    # ------------------------------------------------------------------ attachments

    def get_attachment(self, attachment_id: str) -> Doc | None:
        return self.attachments.get(attachment_id)

    def attachment_bytes(self, attachment_id: str) -> bytes | None:
        row = self._db.execute("SELECT data FROM blobs WHERE id=?", (attachment_id,)).fetchone()
        return None if row is None else bytes(row[0])

    # ------------------------------------------------------------------ bonuses

    def create_bonuses(self, items: list[Doc], now: datetime) -> list[Doc]:
        """Create validated bonuses; each is linked from its assignment's ``bonus_ids``."""
        stamp = fmt_time(truncate_ms(now))
        created = []
        for item in items:
            doc = {k: v for k, v in item.items() if k not in ("id", "created", "__item_idx")}
            doc["id"] = self._bonus_id()
            doc["created"] = stamp
            doc.setdefault("without_message", False)
            doc["owner"] = dict(OWNER)
            self._index("bonus", doc)
            self._save("bonus", doc["id"], doc)
            assignment = self.assignments_by_id.get(doc.get("assignment_id") or "")
            if assignment is not None:
                assignment.setdefault("bonus_ids", []).append(doc["id"])
                self._save("assignment", assignment["id"], assignment)
            created.append(doc)
        self._flush()
        return created

    def get_bonus(self, bonus_id: str) -> Doc | None:
        return self.bonuses_by_id.get(bonus_id)

    def bonuses(self, user_id: str | None = None, assignment_id: str | None = None) -> list[Doc]:
        """Bonuses in creation order, optionally of one user and/or assignment."""
        out = []
        for bonus_id in self.bonus_order:
            doc = self.bonuses_by_id[bonus_id]
            if user_id is not None and doc.get("user_id") != user_id:
                continue
            if assignment_id is not None and doc.get("assignment_id") != assignment_id:
                continue
            out.append(doc)
        return out

    # ------------------------------------------------------------------ operations

    def put_operation(self, doc: Doc, log: list[Doc] | None = None, *,
                      running_until: datetime | None = None, running_polls: int = 0) -> Doc:
        """Record an operation (keyed by its id, the client's operation_id) and its log.

        With ``running_until`` or ``running_polls``, a finished operation (``doc`` says SUCCESS
        or FAIL) is shown RUNNING instead until both ``running_until`` has passed and
        ``running_polls`` GETs have seen it RUNNING (:meth:`poll_operation`); its work is done
        already, only its status lags, as Toloka's does.
        """
        if running_until is not None or running_polls > 0:
            pending = {"final": doc["status"], "finished": doc.get("finished"),
                       "until": fmt_time(running_until), "polls": int(running_polls), "seen": 0}
            doc = {**doc, "status": "RUNNING", "finished": None, "progress": 0}
            self.running_operations[doc["id"]] = pending
            self._save("op_running", doc["id"], pending)
        self.operations[doc["id"]] = doc
        self._save("operation", doc["id"], doc)
        if log is not None:
            self.operation_logs[doc["id"]] = log
            self._save("oplog", doc["id"], log)
        self._flush()
        return doc

    def poll_operation(self, operation_id: str, now: datetime, *, count: bool = True) -> Doc | None:
        """The operation as a GET shows it now (``count``: this look is one of the polls a
        RUNNING operation waits for); a RUNNING one whose time and polls are up finishes."""
        doc = self.operations.get(operation_id)
        pending = self.running_operations.get(operation_id)
        if doc is None or pending is None:
            return doc
        if count:
            pending["seen"] = int(pending["seen"]) + 1
        until = pending.get("until")
        due = until is None or now >= parse_stored_time(until)
        if due and int(pending["seen"]) > int(pending["polls"]):
            doc.update(status=pending["final"], progress=100,
                       finished=fmt_time(truncate_ms(max(now, parse_stored_time(doc["submitted"])))))
            del self.running_operations[operation_id]
            self._pending.append(("op_running", operation_id, json_dumps(None)))
            self._save("operation", operation_id, doc)
        else:
            self._save("op_running", operation_id, pending)
        self._flush()
        return doc

    def get_operation(self, operation_id: str) -> Doc | None:
        return self.operations.get(operation_id)

    def operation_log(self, operation_id: str) -> list[Doc] | None:
        """The operation's log; empty while the operation still shows RUNNING."""
        if operation_id not in self.operations:
            return None
        if operation_id in self.running_operations:
            return []
        return self.operation_logs.get(operation_id, [])

    # ------------------------------------------------------------------ truth and kv

    def put_truth(self, kind: str, key: str, doc: Doc) -> None:
        self._db.execute("INSERT OR REPLACE INTO truth (kind, key, doc) VALUES (?, ?, ?)",
                         (kind, key, json_dumps(doc)))

    def get_truth(self, kind: str, key: str) -> Doc | None:
        row = self._db.execute("SELECT doc FROM truth WHERE kind=? AND key=?",
                               (kind, key)).fetchone()
        return None if row is None else json_loads(row[0])

    def all_truth(self, kind: str) -> dict[str, Doc]:
        rows = self._db.execute("SELECT key, doc FROM truth WHERE kind=? ORDER BY key", (kind,))
        return {key: json_loads(doc) for key, doc in rows}

    def kv_get(self, name: str, default: Any = None) -> Any:
        return self._kv.get(name, default)

    def kv_set(self, name: str, value: Any) -> None:
        self._kv_save(name, value)

    # ------------------------------------------------------------------ admin

    def counts(self) -> dict[str, Any]:
        """Object counts for /_emulator/state."""
        by_status: dict[str, int] = defaultdict(int)
        for doc in self.assignments_by_id.values():
            by_status[doc["status"]] += 1
        return {
            "projects": len(self.projects),
            "pools": len(self.pools),
            "skills": len(self.skills),
            "user_skills": len(self.user_skills),
            "tasks": len(self.tasks),
            "assignments": len(self.assignments_by_id),
            "assignments_by_status": dict(sorted(by_status.items())),
            "attachments": len(self.attachments),
            "bonuses": len(self.bonuses_by_id),
            "operations": len(self.operations),
            "restrictions": len(self.restrictions),
        }


def _restriction_key(doc: Doc) -> tuple[str, str]:
    """(scope, target) of a restriction: the pool id, the project id, or "" for the other scopes."""
    scope = str(doc.get("scope"))
    target = doc.get("pool_id") if scope == "POOL" else doc.get("project_id") if scope == "PROJECT" else None
    return scope, "" if target is None else str(target)


def _restriction_active(doc: Doc, now: datetime) -> bool:
    """No ``will_expire``, or one still ahead of ``now`` (one that does not parse never expires)."""
    expires = doc.get("will_expire")
    if not expires:
        return True
    try:
        return now < parse_time(str(expires))
    except ValueError:
        return True


def _append_sorted(ids: list[str], object_id: str) -> None:
    """Keep an id list sorted; new ids are normally the largest, so this appends."""
    if not ids or ids[-1] < object_id:
        ids.append(object_id)
    else:
        bisect.insort(ids, object_id)
