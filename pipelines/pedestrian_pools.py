"""What each of the pedestrian pipeline's four pools and their projects must look like.

``PipelineSpec.expected_pools`` for :mod:`pipelines.pedestrian`, compared with
Toloka by :mod:`engine.pool_specs` (``pipeline.py check`` and start-up):

- pedestrian: the pipeline reads the organization (``org_fields``,
  ``extra_fields``) from the tasks someone else created, and reads the verdict
  (exactly ``verdict_ok``/``verdict_no_org``), the worker's coordinates, the
  comment, the photo fields and the bonus flags (which must allow
  ``bonus_flag_yes``); it reviews the submitted work, so the pool must not
  accept by itself when ``event = submitted``.
- visit: its tasks carry what ``handlers/pedestrian.py`` sends (the pedestrian
  assignment id, the organization, the verdict, the worker's coordinates, and
  the photo fields when there are photos); the answer is ``answer_field`` with
  exactly ``accept_label``/``reject_label``.
- quality, relevance: their tasks carry what ``handlers.verification.photo_task``
  sends (derived from it here, so the two cannot drift apart); the answer as for
  visit. The two have the same inputs: their labels (ok/bad against
  relevant/not_relevant in the example) are what tells their projects apart.
"""

from __future__ import annotations

from datetime import datetime

from engine.pool_specs import OutputField, PoolExpectation
from handlers.settings import PedestrianConfig, ValidationSettings
from handlers.state import Group, Photo, Work
from handlers.verification import photo_task


def _photo_task_fields() -> tuple[str, ...]:
    """The input fields of every quality and relevance task (from a sample task, not a copy of the list)."""
    photo = Photo("f/0", "f", "attachment", "tmp/f/0.jpg")
    work = Work("assignment", "worker", datetime(2000, 1, 1), {"name": "n", "address": "a"}, "ok", "", "",
                {"main": Group("main", [photo])})
    return tuple(photo_task(work, work.groups["main"], photo, 1).input_values)


def _answer(v: ValidationSettings) -> OutputField:
    return OutputField(v.answer_field, (v.accept_label, v.reject_label), exact=True,
                       keys=f"[{v.section}] answer_field, accept_label, reject_label")


def _check_pool(v: ValidationSettings, sends: tuple[str, ...], may_send: tuple[str, ...] = ()) -> PoolExpectation:
    return PoolExpectation(v.section, sends=sends, may_send=may_send, outputs=(_answer(v),),
                           reviewed=v.event == "submitted")


def expected_pools(config: PedestrianConfig) -> dict[str, PoolExpectation]:
    """Pool name -> what its project must declare and how the pool must accept work."""
    p = config.pedestrian
    s = "PedestrianProject"
    photo_fields = (*p.main_fields, *p.bonus_fields)
    outputs = (
        OutputField(p.verdict_field, (p.verdict_ok, p.verdict_no_org), exact=True,
                    keys=f"[{s}] verdict_field, verdict_ok, verdict_no_org"),
        OutputField(p.worker_coordinates_field, keys=f"[{s}] worker_coordinates_field"),
        OutputField(p.comment_field, keys=f"[{s}] comment_field"),
        *(OutputField(name, keys=f"[{s}] main_fields, bonus_fields") for name in photo_fields),
        *(OutputField(flag, (p.bonus_flag_yes,), exact=False, keys=f"[{s}] bonus_flags, bonus_flag_yes")
          for flag in p.bonus_flags),
    )
    visit_sends = ("pedestrian_assignment_id", *p.org_fields, p.verdict_field, p.worker_coordinates_field)
    return {
        "pedestrian": PoolExpectation(s, reads=(*p.org_fields, *p.extra_fields), outputs=outputs,
                                      reviewed=p.event == "submitted"),
        "visit": _check_pool(config.visit, visit_sends, (*p.extra_fields, *photo_fields)),
        "quality": _check_pool(config.quality, _photo_task_fields()),
        "relevance": _check_pool(config.relevance, _photo_task_fields()),
    }
