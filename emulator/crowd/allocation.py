"""Who does which work, decided from the seed and the work's content, never from timing.

The acceptance tests of the product kill the pipeline (or the emulator) at random instants
and expect the same results as an uninterrupted run with the same seed. So the crowd's
*outcome* must not depend on which worker happens to be free when a task appears, on the
order of steps, or on ids and timestamps the emulator makes up. This module holds the pure
functions that pin the outcome down:

- :func:`assign_organizations`: which pedestrian walks to which organization (a seeded
  shuffle dealt round-robin), fixed at setup;
- photos are named ``<org id>/<field>/<n>`` (``behaviour.photo_identity``), not after the
  time-based assignment id they were uploaded to, and :func:`org_of_photo` reads it back;
- :func:`describe_content`: a verification task's content key, made from what a checker sees
  (the photo markers behind the links, the organization, the field), or from the task input
  when the links cannot be read;
- :func:`rank_checkers` and :func:`unit_draw`: the checkers who answer a task are the first
  ``overlap`` eligible ones of a ranking seeded by (seed, content key) (:func:`chosen_checkers`:
  not unavailable, not restricted by the requester); whether each answers correctly is a
  draw seeded by (seed, content key, worker).

Nothing here does I/O or reads the clock.
"""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulator.crowd.behaviour import photo_urls, task_urls
from emulator.crowd.photos import PhotoMarker
from emulator.crowd.scenario import Fields


def unit_draw(*parts: object) -> float:
    """A number in [0, 1) fixed by ``parts`` (SHA-256), the same in every process and run."""
    digest = hashlib.sha256("\x1f".join(str(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def assign_organizations(org_ids: Sequence[str], pedestrians: Sequence[str], seed: int) -> dict[str, str]:
    """Organization id -> the pedestrian (by name) who walks there.

    Both lists are shuffled with the seed and the organizations dealt round-robin, so every
    pedestrian gets ``len(orgs) // len(pedestrians)`` or one more, and which kind of worker
    (honest, sloppy, cheat) meets which place changes with the seed.
    """
    if not pedestrians:
        raise ValueError("no pedestrians to assign organizations to")
    rng = random.Random(f"{seed}:assign-organizations")
    orgs = list(org_ids)
    names = list(pedestrians)
    rng.shuffle(orgs)
    rng.shuffle(names)
    return {org: names[i % len(names)] for i, org in enumerate(orgs)}


def org_of_photo(photo_id: str, org_ids: Iterable[str]) -> str | None:
    """The organization a photo was taken for (the prefix of ``<org id>/<field>/<n>``), if it is
    one of ``org_ids``."""
    parts = photo_id.rsplit("/", 2)
    if len(parts) != 3:
        return None
    return parts[0] if parts[0] in set(org_ids) else None


def canonical(value: Any) -> str:
    """Stable JSON text of a value (sorted keys; Decimals and other oddities as strings)."""
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)


@dataclass(frozen=True)
class TaskContent:
    """What a verification task shows, independent of ids and time.

    ``key`` is the content key the checkers and their answers are drawn from; ``readable``
    is false when a link did not open (the key is then the task input itself);
    ``photo_ids`` are the identities read from the markers, in link order.
    """

    key: str
    readable: bool
    photo_ids: tuple[str, ...]
    markers: Mapping[str, PhotoMarker | None]


def describe_content(
    pool: str, input_values: Mapping[str, Any], markers: Mapping[str, PhotoMarker | None], fields: Fields
) -> TaskContent:
    """The content key of a task of ``pool`` whose links showed ``markers`` (None: did not open).

    - quality / relevance: the identity of the photo at ``image`` and ``image_field``;
    - visit: the organization's name, address and coordinates and the identities of all its
      photos (by field);
    - any link that did not open: the pool and the whole task input.
    """
    urls = task_urls(pool, input_values, fields)
    seen = {u: markers.get(u) for u in urls}
    if any(m is None for m in seen.values()):
        return TaskContent(canonical(["input", pool, input_values]), False, (), seen)
    photo_ids = tuple(m.photo_id for m in seen.values() if m is not None)
    if pool == "visit":
        by_field = {name: sorted(m.photo_id for u in photo_urls(input_values.get(name)) if (m := seen.get(u)))
                    for name in fields.photo_fields}
        place = [input_values.get(k) for k in ("name", "address", "coordinates")]
        key = canonical(["visit", place, {k: v for k, v in by_field.items() if v}])
    else:
        key = canonical([pool, photo_ids[0] if photo_ids else None, input_values.get("image_field")])
    return TaskContent(key, True, photo_ids, seen)


def rank_checkers(seed: int, key: str, user_ids: Iterable[str]) -> list[str]:
    """Workers in the order they claim a task with this content key (a seeded permutation)."""
    return sorted(set(user_ids), key=lambda u: (unit_draw(seed, "rank", key, u), u))


def chosen_checkers(ranking: Sequence[str], *, overlap: int | None, unavailable: Iterable[str] = (),
                    reserved: Iterable[str] = (), gone: Iterable[str] = (),
                    restricted: Iterable[str] = ()) -> list[str]:
    """The checkers who answer a task: the first ``overlap`` of ``ranking`` allowed to take it.

    Not allowed: workers in ``unavailable`` (the task's ``unavailable_for``), workers outside a
    non-empty ``reserved`` (``reserved_for``), workers who gave the task back (``gone``:
    skipped or expired), workers the requester restricted on the task's pool, its project or
    all projects (``restricted``). ``overlap=None`` (infinite overlap) means every allowed
    worker. A restricted worker's place goes to the next of the ranking, as for the others;
    an answer it gave before the restriction still counts towards the overlap (the task's
    ``remaining_overlap`` bounds how many take it).
    """
    blocked = set(unavailable) | set(gone) | set(restricted)
    only = set(reserved)
    allowed = [u for u in ranking if u not in blocked and (not only or u in only)]
    return allowed if overlap is None else allowed[: max(overlap, 0)]
