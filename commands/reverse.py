"""``python pipeline.py reverse ASSIGNMENT --accept``: accept work that was rejected by mistake.

Toloka allows REJECTED -> ACCEPTED. For a pedestrian assignment this accepts
it, publishes its photos, writes the result rows it would have had, pays the
bonus it earns, and writes a decision row ``REVERSED by an operator`` (who,
when, why); for a checker's assignment it accepts it and writes that row
(what exactly: ``handlers/reversal.py``).

Refused, with one line and no change: an unknown assignment, one of a pool
that is not this pipeline's, one still SUBMITTED (the daemon decides it), one
already accepted, skipped or expired, one of an archived pool.

**Run it with the daemon stopped.** It takes the daemon's lock on ``saves/``
and refuses while a daemon holds it (see :mod:`engine.oneoff`): it writes the
daemon's tables, and the daemon keeps keyed tables' keys in memory. Stopping
costs nothing: the daemon resumes from its checkpoint.

**Exactly once.** The reversal's actions are journalled in
``saves/reversals/<assignment>.jsonl`` before the first runs, and each is
idempotent (a photo already stored is not fetched again, an accepted
assignment stays accepted, a bonus is looked up by assignment and created
under the operation id the daemon would use, a row is appended once). A
``kill -9`` anywhere and a rerun finish the reversal, paying nothing twice; a
run after a finished reversal says so and does nothing.

The daemon's spending total does not include what a reversal pays (the
reward, now paid by Toloka, and the bonus): it is printed here instead.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from commands import Command, fail

if TYPE_CHECKING:  # heavy modules are imported inside the functions (every command is imported for --help)
    from engine.config import Settings
    from engine.journal import Journal
    from engine.oneoff import Tools
    from engine.spec import PipelineSpec
    from handlers.reversal import Operator
    from toloka_client.client import TolokaClient

    Spec = PipelineSpec[Any, Any]

DEFAULT_REASON = "the rejection was a mistake"
DEFAULT_COMMENT = "Accepted on a second look: our rejection was a mistake. Thank you for your work!"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,127}")


class Refused(Exception):
    """Nothing was done; the message says why in one line."""


def _arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("assignment", help="the Toloka assignment id of the rejected work")
    parser.add_argument("--accept", action="store_true", required=True,
                        help="accept it (the only reversal Toloka allows: REJECTED -> ACCEPTED)")
    parser.add_argument("--reason", default=DEFAULT_REASON,
                        help=f"why, for the decision log (default: {DEFAULT_REASON})")
    parser.add_argument("--by", default=None, help="who reverses it, for the decision log (default: the login name)")
    parser.add_argument("--comment", default=DEFAULT_COMMENT, help="what Toloka shows the worker")


def _run(args: argparse.Namespace) -> int:
    import pipelines
    from common.errors import PipelineError

    try:
        settings = pipelines.load_settings(args.config)
        spec = pipelines.get(settings.definition)
        lines = asyncio.run(reverse(spec, settings, args.assignment, by=args.by or _login(),
                                    reason=args.reason, comment=args.comment))
    except Refused as exc:
        return fail(exc, 1)
    except PipelineError as exc:
        return fail(exc, 2)
    print("\n".join(lines))
    return 0


def _login() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        return "an operator"


async def reverse(spec: Spec, settings: Settings[Any], assignment_id: str, *, by: str, reason: str,
                  comment: str) -> list[str]:
    """Accept a rejected assignment of the pipeline's pools; returns the lines to print.

    Raises :class:`Refused` (nothing done) or a ``PipelineError`` (a step failed: what
    was done is journalled, a rerun finishes it).
    """
    from engine.journal import Journal
    from engine.oneoff import daemon_stopped

    if spec.name != "pedestrian":
        raise Refused(f"reverse knows the pedestrian pipeline only, not {spec.name}")
    if not _ID.fullmatch(assignment_id):
        raise Refused(f"{assignment_id!r} is not an assignment id")
    folder = settings.pipeline.saves_folder / "reversals"
    path = folder / f"{assignment_id}.jsonl"
    with daemon_stopped(settings.pipeline.saves_folder, "reverse"):
        if path.exists():
            journal = await asyncio.to_thread(Journal.open, folder, None, path.name)
            try:
                if journal.seq > 0 and journal.status(f"rows:decisions:{assignment_id}/reversed") is None:
                    # The plan's last action is missing: a power cut tore its one write, so nothing ran
                    # (actions run only once the whole plan is fsync'ed). Plan again from Toloka's state.
                    journal.close()
                    path.unlink()
                elif journal.seq > 0:
                    if not journal.pending():
                        raise Refused(f"assignment {assignment_id} is already accepted: reversed earlier "
                                      f"(see {path}); nothing to do")
                    lines = await _carry_out(spec, settings, journal)
                    return [f"resumed the interrupted reversal of {assignment_id}", *lines]
            finally:
                journal.close()
        return await _reverse_afresh(spec, settings, assignment_id, path,
                                     _operator(by, reason, comment))


def _operator(by: str, reason: str, comment: str) -> Operator:
    from handlers.reversal import Operator

    return Operator(name=by, reason=reason, comment=comment)


async def _reverse_afresh(spec: Spec, settings: Settings[Any], assignment_id: str, path: Path,
                          operator: Operator) -> list[str]:
    """Check the assignment on Toloka, journal the reversal's actions, carry them out."""
    from engine.journal import Journal
    from engine.oneoff import open_tools
    from engine.runner import utc_now
    from handlers.reversal import CannotReverse, plan
    from toloka_client.errors import NotFound

    pools = dict(settings.pools())
    async with open_tools(spec, settings) as tools:
        try:
            assignment = await tools.client.get_assignment(assignment_id)
        except NotFound:
            raise Refused(f"no assignment {assignment_id} on Toloka ({settings.toloka.base_url})") from None
        names = {pool_id: name for name, pool_id in pools.items()}
        pool = names.get(assignment.pool_id or "")
        if pool is None:
            listed = ", ".join(f"{name} {pool_id}" for name, pool_id in pools.items())
            raise Refused(f"assignment {assignment_id} is in pool {assignment.pool_id}, "
                          f"not one of this pipeline's pools ({listed})")
        status = assignment.status
        if status == "SUBMITTED" and (held := await asyncio.to_thread(_held_reason, tools, assignment_id)):
            raise Refused(f"assignment {assignment_id} ({pool}) is held for a person, not rejected "
                          f"({held}): accept or reject it in Toloka's interface")
        if status != "REJECTED":
            raise Refused(_not_rejected(assignment_id, pool, status))
        if (await tools.client.get_pool(assignment.pool_id or "")).status == "ARCHIVED":
            raise Refused(f"assignment {assignment_id} is in pool {pool}, which is archived: "
                          f"Toloka changes its assignments no more")
        try:
            reversal = plan(assignment, pool, settings.config, operator, utc_now())
        except CannotReverse as exc:
            raise Refused(str(exc)) from None
        journal = await asyncio.to_thread(Journal.open, path.parent, None, path.name)
        try:
            await asyncio.to_thread(journal.record, reversal.actions)  # durable before anything runs
            lines = [f"reversing: {reversal.summary}"]
            lines += await _run_journal(journal, tools)
        finally:
            journal.close()
        lines += await _restrictions(tools.client, assignment.user_id or "", pools, pool)
        if assignment.reward:
            lines.append(f"Toloka pays the reward of {assignment.reward} on this acceptance "
                         f"(not in the daemon's spending total)")
    return lines


def _held_reason(tools: Tools, assignment_id: str) -> str | None:
    """Why the daemon holds a work for a person (``held.tsv``), if it does."""
    import csv

    table = tools.tables.get("held")
    if table is None or not table.path.exists():
        return None
    with table.path.open(encoding="utf-8", newline="") as handle:
        for row in csv.DictReader(handle, delimiter="\t"):
            if row.get("pedestrian_assignment_id") == assignment_id:
                return f"{table.path.name}: {row.get('reason', '')}"
    return None


def _not_rejected(assignment_id: str, pool: str, status: str | None) -> str:
    if status == "ACCEPTED":
        return f"assignment {assignment_id} ({pool}) is already accepted; nothing to do"
    if status == "SUBMITTED":
        return f"assignment {assignment_id} ({pool}) is still SUBMITTED: the daemon will decide it"
    return f"assignment {assignment_id} ({pool}) is {status}, not REJECTED: there is nothing to accept"


async def _carry_out(spec: Spec, settings: Settings[Any], journal: Journal) -> list[str]:
    from engine.oneoff import open_tools

    async with open_tools(spec, settings) as tools:
        return await _run_journal(journal, tools)


async def _run_journal(journal: Journal, tools: Tools) -> list[str]:
    """Carry out the pending actions; say what was done."""
    from engine.actions import AppendRows, PayBonus, SetStatus, StorePhoto
    from engine.oneoff import carry_out

    done = await carry_out(journal, tools.executor)
    lines = []
    stored = [outcome for action, outcome in done if isinstance(action, StorePhoto)]
    if stored:
        fetched = sum(outcome is not None for outcome in stored)
        lines.append(f"photos: {len(stored)} in the store ({fetched} fetched again from Toloka: tmp/ had lost them)")
    for action, _outcome in done:
        if isinstance(action, SetStatus):
            lines.append(f"accepted {action.assignment_id} on Toloka")
        elif isinstance(action, AppendRows):
            lines.append(f"{len(action.rows)} row(s) in {action.table}")
        elif isinstance(action, PayBonus):
            lines.append(f"bonus of {action.amount} paid to {action.user_id} (once: looked up before paying)")
    return lines


async def _restrictions(client: TolokaClient, user_id: str, pools: dict[str, str], pool: str) -> list[str]:
    """A hint when the rejected worker is barred from the pool (a restriction the rejection may have caused)."""
    from common.errors import PipelineError

    if not user_id or pool not in pools:
        return []
    try:
        found = await client.find_user_restrictions(user_id=user_id, pool_id=pools[pool])
    except PipelineError as exc:  # the reversal is done: a failed hint must not hide what was done
        return [f"note: could not look up restrictions of worker {user_id} on pool {pool} ({exc}); check with "
                f"python pipeline.py unrestrict {user_id} --pool {pool} if the rejection restricted them"]
    if not found:
        return []
    return [f"note: worker {user_id} is restricted on pool {pool}; if the rejection was the reason, "
            f"lift it with: python pipeline.py unrestrict {user_id} --pool {pool}"]


COMMAND = Command("reverse", "accept work rejected by mistake: pays what it earned, writes its rows "
                  "(docs/operations.md)", _arguments, _run)
