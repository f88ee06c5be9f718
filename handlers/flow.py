"""The pedestrian pipeline's decision events: the ``event`` column of ``decisions.tsv``.

One place for every event name: the handlers write them, the pipeline's funnel
(``pipelines/pedestrian.py``) and the report count them, and the tests compare
against them, so renaming one here renames it everywhere.
"""

from __future__ import annotations

SUBMIT = "submit"
TO_VISIT = "to visit validation"
TO_QUALITY = "to quality validation"
TO_RELEVANCE = "to relevance validation"
GOOD_IMAGE = "GOOD image"
BAD_IMAGE = "BAD image"
BONUS_DROPPED = "bonus dropped"
ACCEPT = "ACCEPT assignment"
REJECT = "REJECT assignment"
PAY_BONUS = "PAY bonus"
AUTO_ACCEPTED = "auto-accepted"
DISTANCE = "distance check"
PHOTO_CHECK = "photo check"
OVERLAP_REFUSED = "overlap not raised"
FALLBACK_ACCEPT = "unsure, accepted (fallback)"
HOLD = "HOLD for a person"
REJECT_WAITS = "rejection waits"
RESTRICT = "RESTRICT worker"
UNRESTRICT = "UNRESTRICT worker"
REVERSED = "REVERSED by an operator"  # a rejection undone by ``pipeline.py reverse``

# The final decisions on a pedestrian assignment.
FINAL = (ACCEPT, REJECT)
