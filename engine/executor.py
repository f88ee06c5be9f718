"""The one place where decided actions touch the world.

Every method is idempotent, because the journal may hand the same action over
again after a crash: photos already stored are not downloaded again (nor
measured: see :mod:`engine.photo_facts`), copies
overwrite with the same bytes, task and bonus creation reuse their
deterministic ``operation_id`` (and a bonus the journal cannot prove unsent is
looked up by assignment before paying), a status already set counts as done,
and table rows are appended once.

Task creations of one pool and bonuses that wait at the same moment go out
together (:mod:`engine.batching`): chains run up to their next such action, the
waiting ones are sent in as few requests as the limits allow, and the chains go on.
Rows for keyed tables that chains append meanwhile are written together too, once
per such round, before any of those chains is reported ended (so before its done
mark): a crash in between replays the chains, and a keyed table skips rows it holds.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from common.errors import PipelineError
from engine.actions import (
    Action,
    AppendRows,
    CopyPhoto,
    CreateTasks,
    LinkTo,
    PayBonus,
    RaiseOverlap,
    RestrictWorker,
    SendBatch,
    SetStatus,
    StorePhoto,
)
from engine.batching import Batchable, Planned, compose, single
from engine.photo_facts import measure_photo
from file_store.base import FileStore
from tables.tsv import TsvTable
from toloka_client.client import TolokaClient
from toloka_client.errors import IncorrectAction, ValidationError

log = logging.getLogger(__name__)

# Magic numbers of the image formats the mobile app uploads.
_IMAGE_MAGIC = (
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"GIF8", "image/gif"),
)


#: What :meth:`Executor.run` returns for tasks an earlier try had created (the tick line counts them apart).
EXISTED = "existed"


class ActionFailed(PipelineError):
    """An action could not be done; ``permanent`` says that retrying cannot help (the cause's ``retryable``)."""

    def __init__(self, action: Action, reason: str, *, permanent: bool) -> None:
        self.action = action
        self.permanent = permanent
        super().__init__(f"{action.key}: {reason}", retryable=not permanent)


@dataclass
class ChainResult:
    """How far a chain got: the actions done, the failure that stopped it, if any, and what came out otherwise.

    ``overtaken`` maps the key of a done :class:`SetStatus` whose assignment
    ended in another status (Toloka accepted it before the wanted reject) to
    that status; ``refused`` maps the key of a done :class:`RaiseOverlap` that
    Toloka refused to the reason; ``facts`` maps the key of a done
    :class:`StorePhoto` that downloaded its photo to the photo's measurements
    (:func:`engine.photo_facts.measure_photo`; none for a photo stored before a crash);
    ``existed`` holds the keys of done :class:`CreateTasks` whose tasks an earlier
    try had created already (Toloka knew the operation: nothing was created twice).
    """

    done: list[Action] = field(default_factory=list)
    error: ActionFailed | None = None
    held: bool = False  # stopped by the gate before an action
    overtaken: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    facts: dict[str, str] = field(default_factory=dict)
    existed: set[str] = field(default_factory=set)


class Batching(Protocol):
    """What the executor asks the engine while it batches (``Engine`` journals; tests may keep it in memory)."""

    def untried(self, action: Action) -> bool:
        """Did this process stage ``action`` and never try it? The journal then proves nothing of it exists:
        a task creation or bonus may go out in a new batch, a photo needs no look before its download."""
        ...

    async def sending(self, planned: Planned) -> None:
        """Before ``planned`` is sent: journal it durably if it is a real batch; never batch its members again."""
        ...

    async def settled(self, batch: SendBatch, done: Sequence[Action]) -> None:
        """``batch`` has its answer (``done``: its members that took effect); forget the batch."""
        ...


#: What :meth:`Executor.send_batch` says of a member: done (None), done earlier (EXISTED), or failed.
MemberOutcome = str | None | ActionFailed


class Executor:
    """Performs actions with the Toloka client, the file store and the tables."""

    def __init__(
        self,
        client: TolokaClient,
        store: FileStore,
        tables: Mapping[str, TsvTable],
        *,
        max_photo_bytes: int,
        concurrency: int,
        clock: Callable[[], datetime],
    ) -> None:
        self.clock = clock
        self.client = client
        self.store = store
        self.tables = tables
        self.max_photo_bytes = max_photo_bytes
        self._slots = asyncio.Semaphore(concurrency)

    async def run_chains(
        self,
        chains: Mapping[str, Sequence[Action]],
        on_chain_end: Callable[[str, ChainResult], Awaitable[None]],
        *,
        gate: Callable[[Action], bool] | None = None,
        batching: Batching | None = None,
    ) -> dict[str, ChainResult]:
        """Run chains concurrently (bounded), each in order; a failure stops only its chain.

        ``on_chain_end(chain, result)`` runs once per chain, so the caller can
        mark the done actions in the journal with one write.
        ``gate(action)``, asked just before each action runs, may hold it back:
        its chain stops there without an error and the rest waits for a later run.
        With ``batching``, a chain pauses at an action it calls batchable; once
        every chain has ended or paused, the paused actions are sent together
        (:func:`engine.batching.compose`) and their chains go on. Rows for keyed
        tables are held until every chain has ended or paused, and written then,
        one write per table (see the module's docstring).
        """
        results = {chain: ChainResult() for chain in chains}
        at = dict.fromkeys(chains, 0)
        live = list(chains)
        while live:
            rows: dict[str, list[_HeldRows]] = {c: [] for c in live}
            paused = await asyncio.gather(*(self._advance(chains[c], at, c, results[c], gate, batching, rows[c])
                                            for c in live))
            unwritten = await self._write_held(rows)
            waiting: dict[str, Batchable] = {}
            for chain, pause in zip(live, paused, strict=True):
                if chain in unwritten:  # its rows are not on disk: it ends here, paused or not
                    _stop_at(results[chain], unwritten[chain])
                elif pause is not None:
                    waiting[chain] = pause
                    continue
                await on_chain_end(chain, results[chain])
            if not waiting or batching is None:
                break
            live = []
            for planned in compose(waiting):
                outcomes = await self._send_planned(planned, batching)
                for chain, member in zip(planned.chains, planned.batch.members, strict=True):
                    outcome, result = outcomes[member.key], results[chain]
                    if isinstance(outcome, ActionFailed):
                        result.error = outcome
                        await on_chain_end(chain, result)
                        continue
                    result.done.append(member)
                    if outcome == EXISTED:
                        result.existed.add(member.key)
                    at[chain] += 1
                    live.append(chain)
        return results

    async def _advance(self, actions: Sequence[Action], at: dict[str, int], chain: str, result: ChainResult,
                       gate: Callable[[Action], bool] | None, batching: Batching | None,
                       rows: list[_HeldRows]) -> Batchable | None:
        """Run ``chain`` from where it is until it ends or stops (None) or reaches a batchable action (returned).

        Rows for keyed tables go to ``rows`` (written by the caller once every chain has ended or paused).
        """
        async with self._slots:
            while at[chain] < len(actions):
                action = actions[at[chain]]
                if gate is not None and not gate(action):
                    result.held = True
                    return None
                untried = batching is not None and batching.untried(action)
                if untried and isinstance(action, (CreateTasks, PayBonus)):
                    return action
                held = len(rows)
                try:
                    outcome = await self.run(action, held_rows=rows, untried=untried)
                except ActionFailed as exc:
                    del rows[held:]
                    result.error = exc
                    return None
                for item in rows[held:]:
                    item.step = action
                result.done.append(action)
                if outcome == EXISTED and isinstance(action, CreateTasks):
                    result.existed.add(action.key)
                elif outcome is not None:
                    side = (result.refused if isinstance(action, RaiseOverlap)
                            else result.facts if isinstance(action, StorePhoto) else result.overtaken)
                    side[action.key] = outcome
                at[chain] += 1
            return None

    async def _send_planned(self, planned: Planned, batching: Batching) -> dict[str, MemberOutcome]:
        await batching.sending(planned)
        outcomes, answered = await self.send_batch(planned.batch)
        if planned.recorded and answered:
            done = [m for m in planned.batch.members if not isinstance(outcomes[m.key], ActionFailed)]
            await batching.settled(planned.batch, done)
        return outcomes

    async def send_batch(self, batch: SendBatch) -> tuple[dict[str, MemberOutcome], bool]:
        """Send ``batch`` in one request; an outcome per member key, and whether Toloka answered it.

        Toloka takes the batch all or nothing. If it refuses a batch of several
        (one bad task or bonus), each member is sent alone under its own
        ``operation_id``, so only the bad one fails; the batch is answered. Any
        other failure is every member's, and the batch is not answered: it may
        have taken effect, so the next try sends the same batch under the same id.
        """
        members = batch.members
        try:
            async with self._slots:
                if batch.kind == "tasks":
                    docs = [doc for m in members if isinstance(m, CreateTasks) for doc in await self._task_docs(m)]
                    count = await self.client.create_tasks_at_once(docs, operation_id=batch.operation_id)
                else:
                    bonuses = [_bonus_doc(m) for m in members if isinstance(m, PayBonus)]
                    count = await self.client.pay_bonuses_at_once(bonuses, operation_id=batch.operation_id)
        except ValidationError as exc:
            if len(members) == 1:
                return {members[0].key: ActionFailed(members[0], f"Toloka refused it: {_refusal(exc)}",
                                                     permanent=True)}, True
            log.warning("batch %s (%d %s) refused as a whole (%s); sending each alone",
                        batch.operation_id, len(members), batch.kind, _refusal(exc))
            alone: dict[str, MemberOutcome] = {}
            for member in members:
                alone.update((await self.send_batch(single(member)))[0])
            return alone, True
        except PipelineError as exc:
            return {m.key: ActionFailed(m, str(exc), permanent=not exc.retryable) for m in members}, False
        existed = EXISTED if count.resumed and batch.kind == "tasks" else None
        return {m.key: existed for m in members}, True

    async def run(self, action: Action, *, held_rows: list[_HeldRows] | None = None,
                  untried: bool = False) -> str | None:
        """Perform one action; raise :class:`ActionFailed` (never a vendor error).

        Returns the status an assignment really ended in when a :class:`SetStatus`
        was overtaken by Toloka, why a :class:`RaiseOverlap` was refused, the
        facts of the photo a :class:`StorePhoto` downloaded, or :data:`EXISTED`
        for a :class:`CreateTasks` an earlier try had done (None otherwise).
        With ``held_rows``, rows for keyed tables are put there instead of written
        (:meth:`run_chains` writes them). ``untried``: the journal proves no earlier
        try of this action (a photo is then downloaded without looking for it first).
        """
        try:
            if isinstance(action, StorePhoto):
                return await self._store_photo(action, look_first=not untried)
            elif isinstance(action, CopyPhoto):
                await self.store.copy(action.src_key, action.dst_key)
            elif isinstance(action, CreateTasks):
                return await self._create_tasks(action)
            elif isinstance(action, SetStatus):
                return await self._set_status(action, held_rows)
            elif isinstance(action, PayBonus):
                await self._pay_bonus(action)
            elif isinstance(action, AppendRows):
                await self._append_rows(action, held_rows)
            elif isinstance(action, RaiseOverlap):
                return await self._raise_overlap(action, held_rows)
            elif isinstance(action, RestrictWorker):
                await self._restrict(action)
            else:  # pragma: no cover - the Action union is closed
                raise TypeError(f"unknown action {action!r}")
        except ActionFailed:
            raise
        except PipelineError as exc:
            # The error tree says whether retrying can help (common/errors.py): a 429, 5xx or
            # timeout is tried again next tick; a 400/401/403/404/409, a missing bucket or a
            # full disk is reported once and parked until a person acts (and the next start).
            raise ActionFailed(action, str(exc), permanent=not exc.retryable) from None
        return None

    # -- the eight kinds -----------------------------------------------------------

    async def _store_photo(self, action: StorePhoto, *, look_first: bool) -> str | None:
        """Download and store the photo; return its facts (None when it was stored before a crash).

        ``look_first=False`` when the journal proves no earlier try: the look would cost a
        thread hop per photo and could only say no (a needless look only costs a download).
        """
        if look_first and await self.store.exists(action.dst_key):
            return None  # stored before a crash: the bytes are the attachment's; its checks stay neutral
        data = await self.client.download_attachment(action.attachment_id, max_bytes=self.max_photo_bytes)
        content_type = next((kind for magic, kind in _IMAGE_MAGIC if data.startswith(magic)), None)
        if content_type is None:
            raise ActionFailed(action, f"attachment {action.attachment_id} is not an image", permanent=True)
        await self.store.put(action.dst_key, data, content_type)
        if not action.measure:
            return None
        try:
            return await asyncio.to_thread(measure_photo, data)  # a decode is CPU work: off the loop
        except Exception:  # a measuring bug must never stop storing: the photo just goes unchecked
            log.exception("%s: photo stored but not measured", action.key)
            return None

    async def _create_tasks(self, action: CreateTasks) -> str | None:
        """Create the tasks once, alone; :data:`EXISTED` when Toloka had them from an earlier try."""
        return await self._send_alone(action)

    async def _send_alone(self, action: Batchable) -> str | None:
        """Send one task creation or bonus under its own ``operation_id``; raise its failure."""
        outcome = (await self.send_batch(single(action)))[0][action.key]
        if isinstance(outcome, ActionFailed):
            raise outcome
        return outcome

    async def _task_docs(self, action: CreateTasks) -> list[dict[str, Any]]:
        return [
            {
                "pool_id": action.pool_id,
                "input_values": await self._resolve(spec.input_values),
                "overlap": spec.overlap,
                "infinite_overlap": False,
                "unavailable_for": list(spec.unavailable_for),
            }
            for spec in action.tasks
        ]

    async def _set_status(self, action: SetStatus, held_rows: list[_HeldRows] | None) -> str | None:
        if action.status == "ACCEPTED":
            await self.client.accept_assignment(action.assignment_id, action.comment)
            return None
        # Toloka accepts a submission by itself after the pool's auto_accept_period_day; the
        # reject then fails with a conflict (the client reads the status once, only then), and
        # the assignment is recorded as auto-accepted.
        try:
            await self.client.reject_assignment(action.assignment_id, action.comment)
        except IncorrectAction as exc:
            if exc.current_status != "ACCEPTED":
                raise
            log.warning("%s was auto-accepted before it could be rejected (%s)", action.assignment_id, action.comment)
            return await self._overtaken(action, held_rows)
        return None

    async def _overtaken(self, action: SetStatus, held_rows: list[_HeldRows] | None) -> str:
        """Write the row the pipeline asked for when its reject came too late; the status is ACCEPTED."""
        if action.if_overtaken is not None:
            await self._append_rows(action.if_overtaken, held_rows)
        return "ACCEPTED"

    async def _raise_overlap(self, action: RaiseOverlap, held_rows: list[_HeldRows] | None) -> str | None:
        """Set the task's overlap; a refusal that retrying cannot change is an answer, not a failure."""
        try:
            await self.client.set_task_overlap(action.task_id, action.overlap)
        except PipelineError as exc:
            if exc.retryable:
                raise
            reason = str(exc)
            log.warning("task %s: overlap not raised to %d: %s", action.task_id, action.overlap, reason)
            if action.if_refused is not None:
                await self._append_rows(action.if_refused, held_rows)
            return reason or "refused"
        return None

    async def _restrict(self, action: RestrictWorker) -> None:
        existing = await self.client.find_user_restrictions(user_id=action.user_id, pool_id=action.pool_id)
        if any(r.scope == "POOL" for r in existing):
            return  # restricted before a crash (or by a person): once is enough
        await self.client.restrict_user(user_id=action.user_id, scope="POOL", pool_id=action.pool_id,
                                        private_comment=action.private_comment[:499])

    async def _pay_bonus(self, action: PayBonus) -> None:
        """Pay a bonus the journal cannot prove unsent (an earlier run may have paid it): look first."""
        paid = await self.client.bonuses_for_assignment(action.assignment_id)
        if paid:
            log.info("bonus for %s already paid (%s)", action.assignment_id, ", ".join(b.id or "?" for b in paid))
            return
        await self._send_alone(action)

    async def _append_rows(self, action: AppendRows, held_rows: list[_HeldRows] | None) -> None:
        table = self.tables.get(action.table)
        if table is None:
            raise ActionFailed(action, f"no table named {action.table!r}", permanent=True)
        # Most rows (decisions, answers) hold no link and no list: they are copied as they are,
        # without a coroutine per row (a busy tick writes thousands).
        rows = [dict(row) if _plain(row) else await self._cells(row) for row in action.rows]
        if not table.key:
            await asyncio.to_thread(table.append_once, rows)  # a replay is found by its exact bytes: alone
        elif held_rows is not None:  # a keyed table skips rows whose key it holds: a replay in a group is harmless
            held_rows.append(_HeldRows(action.table, rows))
        else:
            await asyncio.to_thread(table.append, rows)

    async def _write_held(self, held: Mapping[str, Sequence[_HeldRows]]) -> dict[str, ActionFailed]:
        """Write the held rows, one write per table, in one thread hop; the first unwritten action per chain."""
        by_table: dict[str, list[dict[str, Any]]] = {}
        for items in held.values():
            for item in items:
                by_table.setdefault(item.table, []).extend(item.rows)
        if not by_table:
            return {}
        errors = await asyncio.to_thread(self._append_tables, by_table)
        unwritten: dict[str, ActionFailed] = {}
        for chain, items in held.items():
            first = next((i for i in items if i.table in errors), None)
            if first is not None and first.step is not None:
                exc = errors[first.table]
                unwritten[chain] = ActionFailed(first.step, str(exc), permanent=not exc.retryable)
        return unwritten

    def _append_tables(self, by_table: Mapping[str, Sequence[Mapping[str, object]]]) -> dict[str, PipelineError]:
        """Append to each table (blocking); a table's failure does not stop the others'."""
        errors: dict[str, PipelineError] = {}
        for name, rows in by_table.items():
            try:
                self.tables[name].append(rows)
            except PipelineError as exc:
                errors[name] = exc
        return errors

    async def _cells(self, row: Mapping[str, object]) -> dict[str, object]:
        """The cells of a row with links: each link resolved, each list one JSON cell."""
        return {k: _cell(v) for k, v in (await self._resolve(row)).items()}

    async def _resolve(self, values: Mapping[str, object]) -> dict[str, Any]:
        """Replace every :class:`LinkTo` (also inside lists) with a working link."""
        out: dict[str, Any] = {}
        for name, value in values.items():
            if isinstance(value, LinkTo):
                out[name] = await self.store.link(value.key)
            elif isinstance(value, list) and any(isinstance(v, LinkTo) for v in value):
                out[name] = [await self.store.link(v.key) if isinstance(v, LinkTo) else v for v in value]
            else:
                out[name] = value
        return out


@dataclass
class _HeldRows:
    """Rows of a keyed table that a chain appended, held until the chains of the round have ended or paused.

    ``step`` is the chain's action that appended them (an :class:`AppendRows`, or the
    :class:`SetStatus` / :class:`RaiseOverlap` whose outcome asked for a row).
    """

    table: str
    rows: list[dict[str, Any]]
    step: Action | None = None


def _stop_at(result: ChainResult, failure: ActionFailed) -> None:
    """The chain's rows were not written: it stops at ``failure``'s action; what came after is not done yet.

    The later actions did run, but they are idempotent: the next try runs them again and counts them then.
    """
    cut = next((i for i, done in enumerate(result.done) if done is failure.action), len(result.done))
    del result.done[cut:]
    result.error = failure


def _bonus_doc(action: PayBonus) -> dict[str, Any]:
    return {
        "user_id": action.user_id,
        "amount": action.amount,
        "assignment_id": action.assignment_id,
        "public_title": {"EN": action.title},
        "public_message": {"EN": action.message},
        "without_message": False,
    }


def _refusal(exc: ValidationError) -> str:
    return str(dict(exc.payload)) if isinstance(exc.payload, Mapping) else str(exc)


def _plain(row: Mapping[str, object]) -> bool:
    """True when no cell of ``row`` needs resolving or encoding (no link, no list)."""
    return not any(isinstance(value, (LinkTo, list)) for value in row.values())


def _cell(value: object) -> object:
    """Lists (of links) become a JSON array in one cell."""
    return json.dumps(value, ensure_ascii=False) if isinstance(value, list) else value
