"""Which task creations and bonuses go out together, in one request each (pure).

Toloka meters requests, and a tick often decides many task creations for the
same pool and many bonuses. The executor lets every chain run up to its next
:class:`CreateTasks` or :class:`PayBonus`; :func:`compose` then groups the
actions waiting there: task creations by pool, bonuses together, in chain order,
cut where a request would grow past its limit. A group of one keeps its action's
own ``operation_id``; a larger group becomes a :class:`SendBatch` with an
``operation_id`` made from its members' keys, which the engine journals before
sending (see ``docs/engine.md``: why a batch stays exactly-once).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from engine.actions import CreateTasks, LinkTo, PayBonus, SendBatch, operation_uuid

#: A request's task bodies stay under this many bytes (Toloka takes at most 1 MiB of input values).
TASK_BYTES_PER_REQUEST = 512 * 1024
#: What a link counts for before it is made (presigned S3 and SAS links are a few hundred bytes).
LINK_BYTES = 1024
#: At most this many tasks per request (Toloka's synchronous limit is 5,000).
TASKS_PER_REQUEST = 1000
#: At most this many bonuses per request (Toloka's synchronous limit).
BONUSES_PER_REQUEST = 100

Batchable = CreateTasks | PayBonus


@dataclass(frozen=True, slots=True)
class Planned:
    """One request to send: the batch, and the chain each member waits in (in member order).

    ``recorded`` is False for a group of one: it is sent under its action's own
    ``operation_id`` and needs no journal line of its own.
    """

    batch: SendBatch
    chains: tuple[str, ...]

    @property
    def recorded(self) -> bool:
        return len(self.batch.members) > 1


def single(action: Batchable) -> SendBatch:
    """The batch of one action: its own ``operation_id``, so a replay alone finds the first try."""
    if isinstance(action, CreateTasks):
        return SendBatch("tasks", action.pool_id, action.operation_id, (action,))
    return SendBatch("bonuses", "", action.operation_id, (action,))


def compose(waiting: Mapping[str, Batchable]) -> list[Planned]:
    """The requests for the actions waiting at the heads of chains (chain -> action), in chain order."""
    groups: dict[tuple[str, str], list[str]] = {}
    for chain, action in waiting.items():
        group = ("tasks", action.pool_id) if isinstance(action, CreateTasks) else ("bonuses", "")
        groups.setdefault(group, []).append(chain)
    planned: list[Planned] = []
    for (kind, pool_id), chains in groups.items():
        for cut in _cuts(kind, chains, waiting):
            members = tuple(waiting[chain] for chain in cut)
            if len(members) == 1:
                planned.append(Planned(single(members[0]), tuple(cut)))
                continue
            operation_id = operation_uuid("batch", kind, pool_id, *(m.key for m in members))
            planned.append(Planned(SendBatch("tasks" if kind == "tasks" else "bonuses", pool_id, operation_id,
                                             members), tuple(cut)))
    return planned


def _cuts(kind: str, chains: Sequence[str], waiting: Mapping[str, Batchable]) -> list[list[str]]:
    """``chains`` cut into runs that each fit one request."""
    cuts: list[list[str]] = [[]]
    size = count = 0
    for chain in chains:
        action = waiting[chain]
        if isinstance(action, CreateTasks):
            weight, items = sum(task_bytes(spec.input_values) for spec in action.tasks), len(action.tasks)
            full = cuts[-1] and (size + weight > TASK_BYTES_PER_REQUEST or count + items > TASKS_PER_REQUEST)
        else:
            weight, items = 0, 1
            full = len(cuts[-1]) >= BONUSES_PER_REQUEST
        if full:
            cuts.append([])
            size = count = 0
        cuts[-1].append(chain)
        size += weight
        count += items
    return [cut for cut in cuts if cut]


def task_bytes(values: Mapping[str, object]) -> int:
    """About how many bytes a task's input values take in the request, links counted as :data:`LINK_BYTES`."""
    total = 0
    for name, value in values.items():
        total += len(name) + 8
        items = value if isinstance(value, list) else [value]
        for item in items:
            if isinstance(item, LinkTo):
                total += LINK_BYTES
            elif isinstance(item, str):  # most values: no encoding needed to know the size
                # ASCII: its length and the quotes (escapes are rare and the limit has slack); anything
                # else at most six bytes a character ("\uXXXX"), the cost of json's ensure_ascii.
                total += len(item) + 2 if item.isascii() else 6 * len(item) + 2
            else:
                total += len(json.dumps(item, default=str))
    return total
