"""Scoring a run against the crowd's ground truth (pure; no store, no I/O).

The truth is the dict :meth:`emulator.crowd.simulator.Crowd.truth` returns (also served at
``/_emulator/truth``). A run's result is a mapping from pedestrian assignment id to the final
decision the pipeline made: ``"accept"``, ``"reject"`` or ``"no_org"`` (accepted, and written
to no_org.tsv). Toloka statuses ``ACCEPTED``/``REJECTED`` are understood too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

DECISIONS = ("accept", "reject", "no_org")
_ALIASES = {"accepted": "accept", "rejected": "reject", "no-org": "no_org", "noorg": "no_org"}


def normalize_decision(value: str) -> str:
    """``"ACCEPTED"`` -> ``"accept"`` etc.; raises ValueError for anything else."""
    key = value.strip().lower()
    key = _ALIASES.get(key, key)
    if key not in DECISIONS:
        raise ValueError(f"unknown decision {value!r}; expected one of {DECISIONS}")
    return key


def _ratio(part: int, whole: int) -> float | None:
    return None if whole == 0 else round(part / whole, 4)


def _decision_of(made: Mapping[str, str], photo: Mapping[str, Any]) -> str | None:
    """The decision on the assignment a photo belongs to, if any was made."""
    assignment_id = photo.get("assignment_id")
    return made.get(assignment_id) if isinstance(assignment_id, str) else None


def score(
    truth: Mapping[str, Any],
    decisions: Mapping[str, str],
    *,
    kept_photos: Iterable[str] | None = None,
    bonus_fields: Mapping[str, Iterable[str]] | None = None,
) -> dict[str, Any]:
    """How good were the pipeline's decisions?

    - ``precision_accepted``: of the work accepted (accept or no_org), the share that deserved
      it; ``recall_accepted``: of the work that deserved acceptance, the share accepted.
    - ``exact``: decisions equal to the expected outcome (accept / reject / no_org).
    - ``cheats`` / ``cheats_caught``: cheats' assignments, and those rejected.
    - ``bad_photos`` / ``bad_photos_kept_out``: photos that are spoiled or do not show what
      their field asks, and those not kept. ``kept_photos`` are the attachment ids the
      pipeline published (copied to main/ or main_bonus/); without it, every photo of an
      accepted assignment counts as kept (a pessimistic bound).
    - ``bonus_fields`` (optional, assignment id -> bonus fields paid): compared with the bonus
      fields that truly deserved a bonus.
    """
    assignments: Mapping[str, Mapping[str, Any]] = truth.get("assignments") or {}
    photos: Mapping[str, Mapping[str, Any]] = truth.get("photos") or {}
    made = {aid: normalize_decision(d) for aid, d in decisions.items()}
    unknown = sorted(set(made) - set(assignments))

    decided = [aid for aid in assignments if aid in made]
    exact = sum(made[aid] == assignments[aid]["expected"] for aid in decided)
    accepted = [aid for aid in decided if made[aid] != "reject"]
    deserved = [aid for aid in decided if assignments[aid]["expected"] != "reject"]
    accepted_right = sum(assignments[aid]["expected"] != "reject" for aid in accepted)
    cheats = [aid for aid in assignments if assignments[aid].get("kind") == "cheat"]
    caught = sum(made.get(aid) == "reject" for aid in cheats)

    kept = set(kept_photos) if kept_photos is not None else {
        pid for pid, p in photos.items() if _decision_of(made, p) == "accept"}
    bad = [pid for pid, p in photos.items() if p.get("assignment_id") in made and not p.get("good")]
    bad_out = sum(pid not in kept for pid in bad)
    good_kept = sum(1 for pid, p in photos.items() if p.get("good") and pid in kept)

    result: dict[str, Any] = {
        "assignments": len(assignments),
        "decided": len(decided),
        "undecided": len(assignments) - len(decided),
        "unknown_ids": unknown,
        "exact": exact,
        "accuracy": _ratio(exact, len(decided)),
        "accepted": len(accepted),
        "accepted_right": accepted_right,
        "precision_accepted": _ratio(accepted_right, len(accepted)),
        "recall_accepted": _ratio(sum(made[aid] != "reject" for aid in deserved), len(deserved)),
        "cheats": len(cheats),
        "cheats_caught": caught,
        "bad_photos": len(bad),
        "bad_photos_kept_out": bad_out,
        "good_photos_kept": good_kept,
        "confusion": {f"{e}->{d}": sum(1 for aid in decided if assignments[aid]["expected"] == e and made[aid] == d)
                      for e in DECISIONS for d in DECISIONS},
    }
    if bonus_fields is not None:
        paid = {aid: set(fields) for aid, fields in bonus_fields.items()}
        truly = {aid: set(a.get("bonus_fields") or ()) for aid, a in assignments.items()}
        paid_total = sum(len(v) for v in paid.values())
        paid_right = sum(len(v & truly.get(aid, set())) for aid, v in paid.items())
        result.update(bonus_fields_paid=paid_total, bonus_fields_right=paid_right,
                      bonus_fields_deserved=sum(len(truly[aid]) for aid in decided),
                      bonus_precision=_ratio(paid_right, paid_total))
    return result
