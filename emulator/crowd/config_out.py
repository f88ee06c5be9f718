"""Write a ``toloka.ini`` that points the pipeline at this emulator and its scenario.

The output has exactly the sections and keys of the project's example ``toloka.ini`` (a test
compares them), with the pool and skill ids the crowd's setup created, the field names and
labels of the scenario, ``[Toloka] environment`` = the emulator's URL and the local file
store. The demo asks for a short ``period_seconds`` and ``cursor_lag_seconds``.
"""

from __future__ import annotations

import os
import tempfile
from decimal import Decimal
from pathlib import Path
from typing import Any

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


def render_ini(
    *,
    url: str,
    setup_result: dict[str, Any],
    scenario: Scenario,
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
    default_skill: int = 50,
    max_spend: Decimal | str | None = None,
    status_enabled: bool = False,
    status_port: int = 8787,
) -> str:
    """The text of a toloka.ini for this emulator (see :func:`write_ini`)."""
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
        "[Toloka]",
        "; PRODUCTION, SANDBOX, or the URL of a Toloka-compatible server (the emulator).",
        f"environment = {_value(url)}",
        f"timeout_seconds = {int(timeout_seconds)}",
        f"cursor_lag_seconds = {int(cursor_lag_seconds)}",
        "",
        "[Pipeline]",
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
        "[Status]",
        f"enabled = {'true' if status_enabled else 'false'}",
        "host = 127.0.0.1",
        f"port = {int(status_port)}",
        "token =",
        "refresh_seconds = 5",
        "",
        "[FileStore]",
        "; s3, azure or local",
        "backend = local",
        f"local_folder = {_value(local_folder)}",
        "",
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
    ]
    for kind, (section, reject_comment, accept_comment) in _VALIDATION.items():
        labels = f.labels(kind)
        lines += [
            "",
            f"[{section}]",
            f"pool_id = {pools[kind]}",
            f"skill_id = {skills[kind]}",
            "event = accepted",
            f"overlap = {scenario.pools[kind].overlap}",
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
    scenario: Scenario,
    **options: Any,
) -> None:
    """Write the toloka.ini atomically (temp file + rename); ``options`` as in :func:`render_ini`
    (``period_seconds``, ``cursor_lag_seconds``, ``local_folder``, ``results_folder``, ...)."""
    text = render_ini(url=url, setup_result=setup_result, scenario=scenario, **options)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=".toloka-", suffix=".ini", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
