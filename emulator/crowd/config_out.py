"""Write a ``toloka.ini`` that points the pipeline at this emulator and its scenario.

The scenario's kind chooses the pipeline definition:

- pedestrian: exactly the sections and keys of the project's example ``toloka.ini`` (a test
  compares them), with the pool and skill ids the crowd's setup created, the field names and
  labels of the scenario, ``[Toloka] environment`` = the emulator's URL and the local file
  store;
- find_items: ``[Pipeline] definition = find_items`` and the sections ``[FindItemsProject]``,
  ``[FindItemsVerification]`` and ``[FindItemsComparison]`` (no ``[S3]``/``[AzureBlobStorage]``:
  nothing is stored but TSVs).

The demo asks for a short ``period_seconds`` and ``cursor_lag_seconds``.
"""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from common.files import write_text_atomically
from emulator.crowd import find_items_scenario as fi
from emulator.crowd.find_items_scenario import FindItemsScenario
from emulator.crowd.scenario import Scenario

_VALIDATION = {
    "visit": ("ValidationVisit", "Incorrect object", None),
    "quality": ("ValidationQuality", "Low quality photos", None),
    "relevance": ("ValidationRelevance", "Not relevant photos", "Good job"),
}


def _value(text: str) -> str:
    """Refuse values configparser would mangle (interpolation, line breaks)."""
    if "%" in text or "\n" in text or "\r" in text:
        raise ValueError(f"value {text!r} cannot be written to toloka.ini")
    return text


def _names(names: Any) -> str:
    return ", ".join(_value(n) for n in names)


def _common_sections(
    *,
    url: str,
    definition: str | None,
    period_seconds: int,
    cursor_lag_seconds: int,
    timeout_seconds: int,
    stop_when_pools_closed: bool,
    log_level: str,
    results_folder: str,
    saves_folder: str,
    logs_folder: str,
    local_folder: str,
    concurrency: int,
    auto_accept_warning_hours: int,
    max_spend: Decimal | str | None,
    status_enabled: bool,
    status_port: int,
) -> tuple[list[str], list[str], list[str]]:
    """([Toloka] + [Pipeline], [Status], [FileStore]) lines, each block ending with a blank line."""
    toloka_pipeline = [
        "[Toloka]",
        "; PRODUCTION, SANDBOX, or the URL of a Toloka-compatible server (the emulator).",
        f"environment = {_value(url)}",
        f"timeout_seconds = {int(timeout_seconds)}",
        f"cursor_lag_seconds = {int(cursor_lag_seconds)}",
        "",
        "[Pipeline]",
        *([f"definition = {_value(definition)}"] if definition is not None else []),
        f"period_seconds = {int(period_seconds)}",
        f"stop_when_pools_closed = {'true' if stop_when_pools_closed else 'false'}",
        f"log_level = {_value(log_level)}",
        f"results_folder = {_value(results_folder)}",
        f"saves_folder = {_value(saves_folder)}",
        f"logs_folder = {_value(logs_folder)}",
        f"concurrency = {int(concurrency)}",
        f"auto_accept_warning_hours = {int(auto_accept_warning_hours)}",
        f"max_spend = {'' if max_spend is None else Decimal(str(max_spend))}",
        "",
    ]
    status = [
        "[Status]",
        f"enabled = {'true' if status_enabled else 'false'}",
        "host = 127.0.0.1",
        f"port = {int(status_port)}",
        "token =",
        "refresh_seconds = 5",
        "stuck_after_hours = 24",
        "",
    ]
    file_store = [
        "[FileStore]",
        "; s3, azure or local",
        "backend = local",
        f"local_folder = {_value(local_folder)}",
        "",
    ]
    return toloka_pipeline, status, file_store


def _render_find_items(
    *,
    setup_result: dict[str, Any],
    scenario: FindItemsScenario,
    common: tuple[list[str], list[str], list[str]],
    aggregation: str,
    comparison_aggregation: str,
    default_skill: int,
) -> str:
    """The text of a toloka.ini for a find_items scenario (see :func:`render_ini`)."""
    pools = setup_result["pools"]
    skills = setup_result["skills"]
    toloka_pipeline, status, file_store = common
    lines = [
        "; Configuration of the find_items pipeline daemon, written by the local Toloka emulator",
        f"; for scenario {_value(scenario.name)!r}. Pool and skill ids are the emulator's.",
        "",
        "[Secrets]",
        "; Names of keyring entries (service TOLOKA), never the secrets themselves.",
        "toloka_token = toloka_token",
        "",
        *toloka_pipeline,
        *status,
        *file_store,
        "[FindItemsProject]",
        f"pool_id = {pools['find_items']}",
        "event = submitted",
        f"image_field = {fi.IMAGE_FIELD}",
        f"link_field = {fi.LINK_FIELD}",
        f"links_per_image = {int(scenario.links_per_image)}",
        f"accept_comment = {fi.ACCEPT_COMMENT}",
        f"reject_comment = {fi.REJECT_COMMENT}",
        "",
        "[FindItemsVerification]",
        f"pool_id = {pools['verification']}",
        f"skill_id = {skills['verification']}",
        "event = accepted",
        f"overlap = {scenario.pools['verification'].overlap}",
        f"answer_field = {fi.ANSWER_FIELD}",
        f"accept_label = {fi.YES}",
        f"reject_label = {fi.NO}",
        f"aggregation = {_value(aggregation)}",
        f"default_skill = {int(default_skill)}",
        "",
        "[FindItemsComparison]",
        f"pool_id = {pools['sbs']}",
        f"skill_id = {skills['sbs']}",
        "event = accepted",
        f"overlap = {scenario.pools['sbs'].overlap}",
        f"answer_field = {fi.ANSWER_FIELD}",
        f"left_label = {fi.LEFT}",
        f"right_label = {fi.RIGHT}",
        f"aggregation = {_value(comparison_aggregation)}",
    ]
    return "\n".join(lines) + "\n"


#: The recommended dynamic-overlap policy of a verification section (handlers/settings.py RECOMMENDED_POLICY).
_DYNAMIC_POLICY = [
    "min_overlap = 2",
    "max_overlap = 17",
    "confidence = 0.99",
    "reject_confidence = 0.99",
    "fallback = lean",
    "restrict_below = 0.55",
    "restrict_after_controls = 10",
]


def render_ini(
    *,
    url: str,
    setup_result: dict[str, Any],
    scenario: Scenario | FindItemsScenario,
    period_seconds: int = 60,
    cursor_lag_seconds: int = 60,
    timeout_seconds: int = 30,
    stop_when_pools_closed: bool = False,
    log_level: str = "INFO",
    results_folder: str = ".",
    saves_folder: str = "saves",
    logs_folder: str = "logs",
    local_folder: str = "photos",
    concurrency: int = 8,
    auto_accept_warning_hours: int = 12,
    bonus_per_field: Decimal | str = "0.05",
    aggregation: str = "MajorityVote",
    default_skill: int | None = None,
    max_spend: Decimal | str | None = None,
    status_enabled: bool = False,
    status_port: int = 8787,
    comparison_aggregation: str = "BradleyTerry",
    policy: str = "dynamic",
) -> str:
    """The text of a toloka.ini for this emulator (see :func:`write_ini`), chosen by the
    scenario's kind. ``bonus_per_field`` is for pedestrian scenarios only,
    ``comparison_aggregation`` for find_items only; ``aggregation`` and ``default_skill``
    are the (verification) pools' of either. ``policy`` (pedestrian only): ``dynamic``
    writes the recommended dynamic-overlap policy, ``fixed`` the scenario's fixed overlap
    with ``aggregation``."""
    if policy not in ("dynamic", "fixed"):
        raise ValueError(f"policy must be 'dynamic' or 'fixed', not {policy!r}")
    common = _common_sections(
        url=url, definition="find_items" if isinstance(scenario, FindItemsScenario) else "pedestrian",
        period_seconds=period_seconds, cursor_lag_seconds=cursor_lag_seconds, timeout_seconds=timeout_seconds,
        stop_when_pools_closed=stop_when_pools_closed, log_level=log_level, results_folder=results_folder,
        saves_folder=saves_folder, logs_folder=logs_folder, local_folder=local_folder, concurrency=concurrency,
        auto_accept_warning_hours=auto_accept_warning_hours, max_spend=max_spend, status_enabled=status_enabled,
        status_port=status_port)
    if isinstance(scenario, FindItemsScenario):
        return _render_find_items(setup_result=setup_result, scenario=scenario, common=common,
                                  aggregation=aggregation, comparison_aggregation=comparison_aggregation,
                                  default_skill=50 if default_skill is None else default_skill)
    dynamic = policy == "dynamic"
    if default_skill is None:  # under the policy: the prior accuracy (%) of a checker Toloka has no skill for
        default_skill = 70 if dynamic else 50
    toloka_pipeline, status, file_store = common
    pools = setup_result["pools"]
    skills = setup_result["skills"]
    f = scenario.fields
    lines = [
        "; Configuration of the pedestrian pipeline daemon, written by the local Toloka emulator",
        f"; for scenario {_value(scenario.name)!r}. Pool and skill ids are the emulator's.",
        "",
        "[Secrets]",
        "; Names of keyring entries (service TOLOKA), never the secrets themselves.",
        "toloka_token = toloka_token",
        "s3_key_id = s3_key_id",
        "s3_access_key = s3_access_key",
        "azure_account_key = azure_account_key",
        "",
        *toloka_pipeline,
        *status,
        *file_store,
        "[S3]",
        "bucket_name = photos",
        "url = https://storage.yandexcloud.net",
        "region = ru-central1",
        "addressing_style = path",
        "checksums = when_required",
        "links = presigned",
        "link_valid_days = 7",
        "",
        "[AzureBlobStorage]",
        "account_name = devstoreaccount1",
        "container_name = photos",
        "sas_url_valid_days = 7",
        "endpoint =",
        "",
        "[PedestrianProject]",
        f"pool_id = {pools['pedestrian']}",
        "event = submitted",
        f"org_fields = {_names(f.org_fields)}",
        f"extra_fields = {_names(f.extra_fields)}",
        f"verdict_field = {_value(f.verdict_field)}",
        f"verdict_ok = {_value(f.verdict_ok)}",
        f"verdict_no_org = {_value(f.verdict_no_org)}",
        f"worker_coordinates_field = {_value(f.worker_coordinates_field)}",
        f"comment_field = {_value(f.comment_field)}",
        f"main_fields = {_names(f.main_fields)}",
        f"required_fields = {_names(f.required_fields)}",
        f"bonus_fields = {_names(f.bonus_fields)}",
        f"bonus_flags = {_names(f.bonus_flags)}",
        f"bonus_flag_yes = {_value(f.bonus_flag_yes)}",
        f"bonus_per_field = {Decimal(str(bonus_per_field))}",
        "org_coordinates_field = coordinates",
        "max_distance_m = 500",
        # Off here: a barred pedestrian leaves their organizations unvisited and the rehearsal unfinished.
        "restrict_after_rejections = 0",
    ]
    for kind, (section, reject_comment, accept_comment) in _VALIDATION.items():
        labels = f.labels(kind)
        lines += [
            "",
            f"[{section}]",
            f"pool_id = {pools[kind]}",
            f"skill_id = {skills[kind]}",
            "event = accepted",
            *(_DYNAMIC_POLICY if dynamic else [f"overlap = {scenario.pools[kind].overlap}"]),
            f"answer_field = {_value(labels.answer_field)}",
            f"accept_label = {_value(labels.accept_label)}",
            f"reject_label = {_value(labels.reject_label)}",
            f"aggregation = {_value(aggregation)}",
            f"default_skill = {int(default_skill)}",
            f"reject_comment = {reject_comment}",
        ]
        if accept_comment is not None:
            lines.append(f"accept_comment = {accept_comment}")
    return "\n".join(lines) + "\n"


def write_ini(
    path: str | os.PathLike[str],
    *,
    url: str,
    setup_result: dict[str, Any],
    scenario: Scenario | FindItemsScenario,
    **options: Any,
) -> None:
    """Write the toloka.ini atomically (temp file + rename); ``options`` as in :func:`render_ini`
    (``period_seconds``, ``cursor_lag_seconds``, ``local_folder``, ``results_folder``, ...).
    The scenario's kind chooses the pedestrian or the find_items pipeline's sections."""
    write_text_atomically(path, render_ini(url=url, setup_result=setup_result, scenario=scenario, **options))
