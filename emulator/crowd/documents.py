"""The project and pool documents a scenario's set-up creates, shared by every scenario kind.

Each kind chooses its task interface (inputs, outputs, title) and pool extras
(mixer, quality control); the envelope around them is the same for all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from emulator.crowd.scenario import PoolSettings
from emulator.ids import fmt_time


def project_doc(scenario_name: str, kind: str, title: str, inputs: dict[str, Any],
                outputs: dict[str, Any]) -> dict[str, Any]:
    """A project with the given task spec, named after the scenario and the pool kind."""
    return {
        "public_name": title,
        "public_description": f"{title} (emulated scenario {scenario_name})",
        "private_comment": f"emulator: {kind}",
        "task_spec": {"input_spec": inputs, "output_spec": outputs},
        "assignments_issuing_type": "AUTOMATED",
    }


def pool_doc(scenario_name: str, kind: str, settings: PoolSettings, project_id: str, now: datetime, *,
             in_creation_order: bool) -> dict[str, Any]:
    """A pool of ``kind`` with the scenario's reward, overlap and acceptance settings (open for a year)."""
    doc: dict[str, Any] = {
        "project_id": project_id,
        "private_name": f"{scenario_name}: {kind}",
        "may_contain_adult_content": False,
        "reward_per_assignment": settings.reward,
        "assignment_max_duration_seconds": settings.assignment_max_duration_seconds,
        "will_expire": fmt_time(now + timedelta(days=365)),
        "auto_accept_solutions": settings.auto_accept_solutions,
        "defaults": {"default_overlap_for_new_task_suites": settings.overlap,
                     "default_overlap_for_new_tasks": settings.overlap},
        "assignments_issuing_config": {"issue_task_suites_in_creation_order": in_creation_order},
        "metadata": {"emulator_role": [kind]},
    }
    if settings.auto_accept_period_day is not None:
        doc["auto_accept_period_day"] = settings.auto_accept_period_day
    return doc
