"""Relevance pool: does each photo show what it should? The last check.

When every group is decided: ``main`` without a relevant photo for some
required field rejects ("Not relevant photos"). Otherwise the assignment is
accepted ("Good job"), main's relevant photos are copied to ``main/`` and a row
goes to ``main_tasks.tsv``; each bonus group with relevant photos is copied to
``main_bonus/`` with a row in ``bonus_tasks.tsv``; and one bonus is paid:
``bonus_per_field`` times the number of such bonus groups.

Links expire (a presigned S3 link after at most 7 days), so every link column
``X`` of a result table has a column ``X_keys`` beside it: the file-store keys of
the same photos, in the same order (a JSON list, like the links).
``python pipeline.py relink`` writes fresh links from them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

from engine.actions import Action, AppendRows, CopyPhoto, LinkTo, PayBonus, operation_uuid
from engine.spec import Outage
from file_store.keys import make_key
from handlers import flow, photo_checks, verification
from handlers.base import Outcome, PedestrianRules, Rules, decision_row, decisions, set_status
from handlers.state import MAIN, Group, Ledger, Photo, Work
from toloka_client.records import Assignment

HANDLER = "relevance"


def handle(
    ledger: Ledger,
    assignments: Sequence[Assignment],
    rules: Rules,
    skills: Mapping[str, float],
    now: datetime,
    refused: Mapping[str, str] | None = None,
    outages: Sequence[Outage] = (),
    facts: Mapping[str, str] | None = None,
) -> Outcome:
    """Aggregate completed relevance tasks and finish each pedestrian assignment.

    ``facts`` are stored photos' measurements (``Context.facts``); under the dynamic
    policy a photo repeated from another assignment counts against its relevance.
    """
    outcome = Outcome()
    evidence = photo_checks.relevance_evidence(ledger) if rules.relevance.policy is not None else None
    for work in verification.judge_photos(
        ledger, "relevance", assignments, rules.relevance, skills, now, outcome, refused, outages,
        evidence=evidence, facts=facts,
    ):
        settle(ledger, outcome, work, rules, now)
    return outcome


#: The column holding the storage keys of link column ``X`` is ``X`` + this suffix.
KEYS_SUFFIX = "_keys"


def keys_column(link_column: str) -> str:
    """The column of the storage keys of the photos whose links are in ``link_column``."""
    return link_column + KEYS_SUFFIX


def main_columns(pedestrian: PedestrianRules) -> tuple[str, ...]:
    """Columns of ``main_tasks.tsv``: organization, pedestrian outputs, final links per main field, their keys.

    The key columns come last: a file written before them gets them added (empty) in place.
    """
    return (
        *pedestrian.org_fields, *pedestrian.extra_fields,
        "pedestrian_assignment_id", "worker_id", "worker_coordinates", "comment", "accepted",
        *pedestrian.main_fields, *(keys_column(f) for f in pedestrian.main_fields),
    )


def bonus_columns(pedestrian: PedestrianRules) -> tuple[str, ...]:
    """Columns of ``bonus_tasks.tsv``: organization, bonus field, its links, the amount paid for it, the keys."""
    return (
        *pedestrian.org_fields, "pedestrian_assignment_id", "worker_id", "bonus_field", "links", "bonus_amount",
        keys_column("links"),
    )


def settle(ledger: Ledger, outcome: Outcome, work: Work, rules: Rules, now: datetime) -> None:
    """Decide every judged group; once all are, accept or reject the assignment."""
    pending = False
    for group in work.groups.values():
        if group.status != "relevance":
            continue
        judged = [p for p in group.photos if p.quality]
        if any(p.relevant is None for p in judged):
            pending = True
            continue
        group.status = "good" if any(p.relevant for p in judged) else "bad"
        outcome.add(
            work.assignment_id,
            decisions(
                f"{work.assignment_id}/relevance/{group.name}",
                [
                    decision_row(now, work, HANDLER, work.group_id(group.name),
                                 flow.GOOD_IMAGE if p.relevant else flow.BAD_IMAGE, p.photo_id)
                    for p in judged
                ],
            ),
        )
    if pending:
        return
    main = work.groups[MAIN]
    relevant = {p.field for p in main.photos if p.relevant}
    missing = [f for f in rules.pedestrian.required_fields if f not in relevant]
    if missing:
        verification.reject(ledger, outcome, work, HANDLER, work.group_id(MAIN), rules.relevance.reject_comment, now)
        return
    _accept(ledger, outcome, work, rules, now)


@dataclass(frozen=True)
class Publication:
    """What accepting a work publishes: photo copies, result rows (links and keys) and the bonus it earns."""

    copies: tuple[CopyPhoto, ...]
    main_row: AppendRows
    bonus_rows: AppendRows | None
    bonus: PayBonus | None
    bonus_fields: tuple[str, ...]


def publish(work: Work, ped: PedestrianRules, now: datetime, main_photos: Sequence[Photo],
            bonus_groups: Sequence[tuple[str, Sequence[Photo]]]) -> Publication:
    """Copy ``main_photos`` to ``main/`` and each bonus group's photos to ``main_bonus/``, with their rows.

    One bonus of ``bonus_per_field`` per bonus group; each link cell has its keys beside it.
    Shared by the relevance verdict and by an operator's reversal of a rejection.
    """
    pa = work.assignment_id
    copies: list[CopyPhoto] = []

    def final(folder: str, photo: Photo) -> str:
        key = _final_key(folder, work, photo)
        copies.append(CopyPhoto(photo.key, key))
        return key

    main_keys: dict[str, list[str]] = {field: [] for field in ped.main_fields}
    for photo in main_photos:
        main_keys.setdefault(photo.field, []).append(final("main", photo))
    bonus_rows: list[Mapping[str, object]] = []
    for name, photos in bonus_groups:
        keys = [final("main_bonus", photo) for photo in photos]
        bonus_rows.append(
            {
                **{field: work.org.get(field, "") for field in ped.org_fields},
                "pedestrian_assignment_id": pa,
                "worker_id": work.user_id,
                "bonus_field": name,
                "links": [LinkTo(key) for key in keys],
                "bonus_amount": ped.bonus_per_field,
                keys_column("links"): keys,
            }
        )
    main_row: dict[str, object] = {name: work.org.get(name, "") for name in (*ped.org_fields, *ped.extra_fields)}
    main_row.update(
        pedestrian_assignment_id=pa,
        worker_id=work.user_id,
        worker_coordinates=work.worker_coordinates,
        comment=work.comment,
        accepted=now.strftime("%Y-%m-%d %H:%M:%S"),
    )
    for field, keys in main_keys.items():
        main_row[field] = [LinkTo(key) for key in keys]
        main_row[keys_column(field)] = keys
    fields = tuple(name for name, _ in bonus_groups)
    bonus = None
    if fields:
        bonus = PayBonus(
            assignment_id=pa,
            user_id=work.user_id,
            amount=ped.bonus_per_field * len(fields),
            title="Bonus for extra photos",
            message=f"Thank you! Bonus photos accepted: {', '.join(fields)}.",
            operation_id=operation_uuid("bonus", pa),
        )
    return Publication(
        copies=tuple(copies),
        main_row=AppendRows("main_tasks", pa, (main_row,)),
        bonus_rows=AppendRows("bonus_tasks", pa, tuple(bonus_rows)) if bonus_rows else None,
        bonus=bonus,
        bonus_fields=fields,
    )


def _accept(ledger: Ledger, outcome: Outcome, work: Work, rules: Rules, now: datetime) -> None:
    pa = work.assignment_id
    bonus_groups = [g for name, g in work.groups.items() if name != MAIN and g.status == "good"]
    published = publish(work, rules.pedestrian, now, _relevant(work.groups[MAIN]),
                        [(g.name, _relevant(g)) for g in bonus_groups])
    main_group = work.group_id(MAIN)
    comment = rules.relevance.accept_comment
    actions: list[Action] = [
        *published.copies, published.main_row, set_status(now, work, HANDLER, main_group, "ACCEPTED", comment),
    ]
    rows = [decision_row(now, work, HANDLER, main_group, flow.ACCEPT, comment)]
    if published.bonus is not None and published.bonus_rows is not None:
        actions += [published.bonus_rows, published.bonus]
        rows.append(decision_row(now, work, HANDLER, main_group, flow.PAY_BONUS,
                                 f"{published.bonus.amount} for {', '.join(published.bonus_fields)}"))
    outcome.add(pa, *actions, decisions(f"{pa}/final", rows))
    outcome.info(f"{pa} accepted" + (f", bonus for {len(bonus_groups)} fields" if bonus_groups else ""))
    verification.finish(ledger, outcome, work)


def _relevant(group: Group) -> list[Photo]:
    return [p for p in group.photos if p.quality and p.relevant]


def _final_key(folder: str, work: Work, photo: Photo) -> str:
    field, n = photo.photo_id.rsplit("/", 1)
    return make_key(folder, work.assignment_id, field, f"{n}.jpg")
