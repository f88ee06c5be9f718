"""The automatic photo checks in the handlers: facts in (as the engine hands them), rows and evidence out."""

from __future__ import annotations

import dataclasses
import io
import pickle
import random
from pathlib import Path
from typing import Any

from PIL import Image, ImageDraw

from aggregation.evidence import Policy
from aggregation.photo_checks import Duplicate, PhotoIndex
from engine.actions import Action, RaiseOverlap
from engine.photo_facts import measure_photo
from engine.spec import Batch, Context, Decision
from engine.state import checkpoint_store
from handlers import flow, pedestrian, photo_checks, quality, relevance, visit
from common.tracked import TrackedDict
from handlers.state import Ledger, Photo
from pipelines.pedestrian import PEDESTRIAN
from tests.handlers.builders import NOW, RULES, Rules, answer, created_tasks, pedestrian_assignment, rows

POLICY = Policy(min_overlap=2, max_overlap=6, confidence=0.9, reject_confidence=0.99, fallback="accept")
DYNAMIC = Rules(
    visit=dataclasses.replace(RULES.visit, policy=POLICY, overlap=2, section="ValidationVisit"),
    quality=dataclasses.replace(RULES.quality, policy=POLICY, overlap=2, section="ValidationQuality"),
    relevance=dataclasses.replace(RULES.relevance, policy=POLICY, overlap=2, section="ValidationRelevance"),
)
SKILLS = {f"w{n}": 80.0 for n in range(10)}  # a prior accuracy of 0.8: two agreeing answers reach 94%
ORG_B = {"name": "Bakery Two", "address": "Side st. 9", "coordinates": "55.1,37.2", "segment": "bakery"}


def picture(seed: int, size: tuple[int, int] = (640, 480)) -> Image.Image:
    rng = random.Random(seed)
    image = Image.new("RGB", size, (200, 200, 210))
    draw = ImageDraw.Draw(image)
    for _ in range(8):
        x0, y0 = rng.randrange(size[0] * 3 // 4), rng.randrange(size[1] * 3 // 4)
        draw.rectangle([x0, y0, x0 + rng.randrange(40, 320), y0 + rng.randrange(40, 240)],
                       fill=tuple(rng.randrange(256) for _ in range(3)))
    return Image.blend(image, Image.frombytes("L", size, rng.randbytes(size[0] * size[1])).convert("RGB"), 0.05)


def jpeg(image: Image.Image, quality_: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=quality_)
    return buffer.getvalue()


UNIFORM = jpeg(Image.new("RGB", (640, 480), (128, 128, 128)))
TINY = jpeg(picture(99, (40, 30)))


def submit(ledger: Ledger, pa: str, rules: Rules = DYNAMIC, org: dict[str, str] | None = None) -> dict[str, Any]:
    """A submitted pedestrian assignment; returns its visit task."""
    out = pedestrian.handle(ledger, [pedestrian_assignment(pa, org=org)], rules, NOW)  # type: ignore[arg-type]
    (task,) = created_tasks(out.actions, "2")
    return task


def photo(ledger: Ledger, pa: str, photo_id: str) -> Photo:
    work = ledger.works[pa]
    return next(p for g in work.groups.values() for p in g.photos if p.photo_id == photo_id)


def facts(ledger: Ledger, pa: str, special: dict[str, bytes] | None = None, seed: int = 0) -> dict[str, str]:
    """What the engine hands over once the executor stored the work's photos: normal ones unless ``special``."""
    special = special or {}
    work = ledger.works[pa]
    out = {}
    for n, p in enumerate(p for g in work.groups.values() for p in g.photos):
        data = special.get(p.photo_id) or jpeg(picture(seed * 100 + n))
        out[f"store:{p.key}"] = measure_photo(data)
    return out


def deliver(ledger: Ledger, given: dict[str, str], rules: Rules = DYNAMIC) -> Decision:
    """The facts as the quality handler receives them on a tick with no new answers."""
    return quality.handle(ledger, [], rules, SKILLS, NOW, None, (), given)  # type: ignore[arg-type]


def ask(handler: Any, ledger: Ledger, rules: Rules, task: dict[str, Any], labels: dict[str, str]) -> Decision:
    pool = task["_id"].split(":")[0]
    batch = [answer(pool, w, [(task, label)]) for w, label in labels.items()]
    result: Decision = handler.handle(ledger, batch, rules, SKILLS, NOW)
    return result


def raised(actions: list[Action]) -> list[str]:
    return [a.task_id for a in actions if isinstance(a, RaiseOverlap)]


def checks(actions: list[Action]) -> list[dict[str, object]]:
    return [r for r in rows(actions, "decisions") if r["event"] == flow.PHOTO_CHECK]


def to_quality(ledger: Ledger, pa: str, rules: Rules = DYNAMIC, yes: int = 2) -> dict[str, dict[str, Any]]:
    """Pass the visit with ``yes`` agreeing answers; the quality tasks by photo id."""
    task = {"_id": f"2:{pa}", "pedestrian_assignment_id": pa}
    out = ask(visit, ledger, rules, task, {f"w{n}": "yes" for n in range(yes)})
    assert flow.TO_QUALITY in [r["event"] for r in rows(out.actions, "decisions")], out.notes
    return {str(t["photo_id"]): t for t in created_tasks(out.actions, "3")}


def to_relevance(ledger: Ledger, pa: str, tasks: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Every photo judged usable by two checkers; the relevance tasks by photo id."""
    made: list[dict[str, Any]] = []
    for task in tasks.values():
        made += created_tasks(ask(quality, ledger, DYNAMIC, task, {"w1": "ok", "w2": "ok"}).actions, "4")
    return {str(t["photo_id"]): t for t in made}


# -- facts in, rows out ---------------------------------------------------------------------


def test_facts_give_a_row_per_group_naming_each_photo_with_an_issue_and_are_acknowledged_once_filed() -> None:
    ledger = Ledger()
    submit(ledger, "pa1")
    given = facts(ledger, "pa1", {"imgs_facade/0": UNIFORM, "imgs_facade/1": TINY, "imgs_interior/0": UNIFORM})
    given["store:tmp/2026-11-22/gone/imgs_facade/0.jpg"] = measure_photo(UNIFORM)  # a work decided meanwhile
    out = deliver(ledger, given)
    main, interior = checks(out.actions)
    assert (main["group"], interior["group"]) == ("pa1/main", "pa1/imgs_interior")
    assert {main["handler"], interior["handler"]} == {"pedestrian"}
    assert str(main["comment"]).startswith("imgs_facade/0: nearly uniform: grey spread 0.")
    assert str(main["comment"]).endswith("; imgs_facade/1: tiny: 40x30 px (quality log-odds -4.0)")
    assert str(interior["comment"]).startswith("imgs_interior/0: nearly uniform")
    assert sorted(out.acknowledged) == sorted(given)
    assert all(p.facts is not None for g in ledger.works["pa1"].groups.values() for p in g.photos)
    assert len(ledger.photo_index.seen) == 4  # five photos, two of them the same bytes

    again = relevance.handle(ledger, [], DYNAMIC, SKILLS, NOW, None, (), given)  # type: ignore[arg-type]  # next pool
    assert checks(again.actions) == [] and sorted(again.acknowledged) == sorted(given)
    assert len(ledger.photo_index.seen) == 4


def test_the_pipeline_hands_the_context_facts_to_the_photo_pools() -> None:
    ledger = Ledger()
    submit(ledger, "pa1")
    given = facts(ledger, "pa1", {"name_business/0": UNIFORM})
    ctx = Context(DYNAMIC, {"quality": "3"}, NOW, facts=given)
    observer = next(o for o in PEDESTRIAN.observers if o.pool == "quality")
    decision = observer.handler(ledger, Batch("quality", "3", "accepted", ()), ctx)  # type: ignore[arg-type]
    assert sorted(decision.acknowledged) == sorted(given) and len(checks(decision.actions)) == 1


# -- evidence ---------------------------------------------------------------------------------


def test_two_ok_answers_do_not_pass_a_uniform_photo_but_pass_a_normal_one() -> None:
    ledger = Ledger()
    submit(ledger, "pa1")
    deliver(ledger, facts(ledger, "pa1", {"imgs_facade/0": UNIFORM}))
    tasks = to_quality(ledger, "pa1")
    blank, normal = tasks["imgs_facade/0"], tasks["imgs_facade/1"]
    out = ask(quality, ledger, DYNAMIC, blank, {"w1": "ok", "w2": "ok"})
    assert raised(out.actions) == [blank["_id"]]  # unsure: another answer is bought
    assert photo(ledger, "pa1", "imgs_facade/0").quality is None
    out = ask(quality, ledger, DYNAMIC, normal, {"w1": "ok", "w2": "ok"})
    assert raised(out.actions) == [] and photo(ledger, "pa1", "imgs_facade/1").quality is True
    # Evidence, not a verdict: checkers who go on seeing a usable photo outweigh the numbers.
    out = ask(quality, ledger, DYNAMIC, blank, {"w3": "ok"})
    assert raised(out.actions) == [blank["_id"]]
    ask(quality, ledger, DYNAMIC, blank, {"w4": "ok", "w5": "ok"})
    assert photo(ledger, "pa1", "imgs_facade/0").quality is True


def test_without_facts_the_check_is_neutral() -> None:
    ledger = Ledger()
    submit(ledger, "pa1")  # a photo stored before a crash: no facts
    tasks = to_quality(ledger, "pa1")
    ask(quality, ledger, DYNAMIC, tasks["imgs_facade/0"], {"w1": "ok", "w2": "ok"})
    assert photo(ledger, "pa1", "imgs_facade/0").quality is True


def test_under_a_fixed_overlap_the_facts_are_filed_silently_and_the_answers_alone_decide() -> None:
    ledger = Ledger()
    submit(ledger, "pa1", rules=RULES)
    given = facts(ledger, "pa1", {"imgs_facade/0": UNIFORM})
    out = deliver(ledger, given, rules=RULES)
    assert checks(out.actions) == [] and sorted(out.acknowledged) == sorted(given)
    assert photo(ledger, "pa1", "imgs_facade/0").facts is not None
    tasks = to_quality(ledger, "pa1", rules=RULES, yes=3)
    ask(quality, ledger, RULES, tasks["imgs_facade/0"], {"w1": "ok", "w2": "ok", "w3": "ok"})
    assert photo(ledger, "pa1", "imgs_facade/0").quality is True


ORIGINAL = jpeg(picture(7), 95)


def _two_works() -> Ledger:
    """Two works of two organizations; pa1's photos are filed first, its facade is ``ORIGINAL``."""
    ledger = Ledger()
    submit(ledger, "pa1")
    submit(ledger, "pa2", org=ORG_B)
    first = facts(ledger, "pa1", {"imgs_facade/0": ORIGINAL}, seed=1)
    assert checks(deliver(ledger, first).actions) == []
    return ledger


def test_an_exact_repeat_of_another_organizations_photo_is_logged_and_weighs_against_the_visit() -> None:
    ledger = _two_works()
    out = deliver(ledger, facts(ledger, "pa2", {"imgs_facade/0": ORIGINAL}, seed=2))
    (row,) = checks(out.actions)
    assert row["pedestrian_assignment_id"] == "pa2" and row["event"] == flow.PHOTO_CHECK
    assert row["comment"] == ("imgs_facade/0: exact duplicate of a photo of assignment pa1 (another organization) "
                              "(relevance log-odds -3.0, visit -3.0)")
    assert photo(ledger, "pa2", "imgs_facade/0").duplicate == Duplicate("exact", "pa1", False)
    # The visit: two agreeing "yes" pass pa1, not pa2, whose photo was taken for another organization.
    assert flow.TO_QUALITY in [r["event"] for r in rows(
        ask(visit, ledger, DYNAMIC, {"_id": "2:pa1", "pedestrian_assignment_id": "pa1"},
            {"w1": "yes", "w2": "yes"}).actions, "decisions")]
    out = ask(visit, ledger, DYNAMIC, {"_id": "2:pa2", "pedestrian_assignment_id": "pa2"}, {"w1": "yes", "w2": "yes"})
    assert raised(out.actions) == ["2:pa2"]


def test_a_repeated_photo_needs_more_than_two_relevant_answers() -> None:
    ledger = _two_works()
    deliver(ledger, facts(ledger, "pa2", {"imgs_facade/0": jpeg(picture(7), 60)}, seed=2))  # re-encoded
    duplicate = photo(ledger, "pa2", "imgs_facade/0").duplicate
    assert duplicate is not None and duplicate.kind == "near" and duplicate.assignment == "pa1"
    tasks = to_relevance(ledger, "pa2", to_quality(ledger, "pa2"))  # a near repeat does not weigh on the visit
    repeated, own = tasks["imgs_facade/0"], tasks["imgs_facade/1"]
    out = ask(relevance, ledger, DYNAMIC, repeated, {"w1": "relevant", "w2": "relevant"})
    assert raised(out.actions) == [repeated["_id"]] and photo(ledger, "pa2", "imgs_facade/0").relevant is None
    ask(relevance, ledger, DYNAMIC, own, {"w1": "relevant", "w2": "relevant"})
    assert photo(ledger, "pa2", "imgs_facade/1").relevant is True


# -- state ------------------------------------------------------------------------------------


def test_photos_and_ledgers_pickled_before_the_checks_load_with_neutral_defaults(tmp_path: Path) -> None:
    old_photo = Photo("imgs_facade/0", "imgs_facade", "att", "tmp/k.jpg")
    del old_photo.__dict__["facts"], old_photo.__dict__["duplicate"]
    loaded = pickle.loads(pickle.dumps(old_photo))
    assert loaded.facts is None and loaded.duplicate is None
    old_ledger = Ledger()
    del old_ledger.__dict__["photo_index"]
    assert pickle.loads(pickle.dumps(old_ledger)).photo_index == PhotoIndex()

    ledger = _two_works()
    deliver(ledger, facts(ledger, "pa2", {"imgs_facade/0": ORIGINAL}, seed=2))
    store = checkpoint_store(tmp_path, PEDESTRIAN)  # the checkpoint's allow-list takes the new classes
    store.encode(ledger)
    again = store.restore()
    assert again.photo_index == ledger.photo_index
    assert photo(again, "pa2", "imgs_facade/0").duplicate == Duplicate("exact", "pa1", False)


def test_the_organization_key_ignores_case_and_spacing() -> None:
    ledger = Ledger()
    submit(ledger, "pa1")
    submit(ledger, "pa2", org={"name": "cafe  tab\tname", "address": "MAIN st. 1", "coordinates": "55.1,37.2"})
    submit(ledger, "pa3", org=ORG_B)
    keys = [photo_checks.organization_key(ledger.works[pa]) for pa in ("pa1", "pa2", "pa3")]
    assert keys[0] == keys[1] != keys[2] and len(keys[0]) == 16


class _NoWalk(TrackedDict):  # type: ignore[type-arg]
    """The ledger's works, refusing a walk over all of them (a look by assignment id is fine)."""

    def values(self) -> Any:
        raise AssertionError("walked every work")


def test_facts_find_their_photos_through_the_assignment_their_key_names() -> None:
    ledger = Ledger()
    for n in range(30):
        submit(ledger, f"pa{n}")
    given = {**facts(ledger, "pa3"), **facts(ledger, "pa17", seed=1)}
    everything = {p.key: p for w in ledger.works.values() for g in w.groups.values() for p in g.photos}
    works = ledger.works
    ledger.works = _NoWalk(works)
    deliver(ledger, given)  # every key names its work: no walk over the 30 works
    assert all(everything[key.removeprefix("store:")].facts == text for key, text in given.items())
    # A key of another layout (an older key scheme) is still found, by a walk over every work.
    ledger.works = works
    odd = photo(ledger, "pa5", "imgs_facade/0")
    odd.key = "legacy/pa5-facade.jpg"
    deliver(ledger, {"store:legacy/pa5-facade.jpg": next(iter(facts(ledger, "pa5", seed=2).values()))})
    assert odd.facts is not None
