"""toloka.ini -> typed Settings: the example loads, and every kind of mistake is named precisely."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import pytest

from common.errors import ConfigError
from common.ini import ConfigErrors
from engine.config import (
    ConfigFileError,
    Settings,
    base_url_of,
    parse_settings,
    read_ini,
)
from handlers.settings import RECOMMENDED_POLICY
from pipelines import load_settings
from pipelines.pedestrian import PEDESTRIAN
from engine_helpers import EXAMPLE_INI

WriteIni = Callable[..., Path]


def expect_error(path: Path, section: str, key: str, expected: str, found: str | None) -> ConfigError:
    """Load ``path`` and check the ConfigError names section, key, expected and found."""
    with pytest.raises(ConfigError) as info:
        load_settings(path, base_dir=path.parent)
    error = info.value
    message = str(error)
    assert (error.section, error.key) == (section, key), message
    assert f"[{section}] {key}:" in message
    assert expected in error.expected and f"expected {error.expected}" in message
    if found is None:
        assert error.found is None and "nothing (the key is missing)" in message
    else:
        assert error.found is not None and found in error.found and found in message
    return error


def test_example_file_loads_into_typed_settings(tmp_path: Path) -> None:
    """The shipped toloka.ini is valid and every value arrives typed."""
    settings = load_settings(EXAMPLE_INI, base_dir=tmp_path)
    assert isinstance(settings, Settings)
    assert settings.source == EXAMPLE_INI.absolute()
    assert settings.secrets.toloka_token == "toloka_token"
    assert settings.toloka.base_url == "http://127.0.0.1:8000"
    assert settings.toloka.timeout_s == 30.0 and settings.toloka.cursor_lag_s == 60.0
    assert settings.pipeline.log_level == "INFO" and settings.pipeline.concurrency == 8
    assert settings.pipeline.saves_folder == tmp_path / "saves"
    assert settings.pipeline.results_folder == tmp_path
    assert settings.config.pedestrian.bonus_per_field == Decimal("0.05")
    assert settings.config.pedestrian.required_fields == ("imgs_facade", "name_business", "imgs_name_address")
    assert settings.config.pedestrian.bonus_flag_of("imgs_menu") == "can_take_menu"
    assert settings.config.pedestrian.extra_fields == ("segment", "phone", "website")
    assert settings.config.visit.overlap == 2 and settings.config.visit.aggregation == "MajorityVote"
    assert settings.config.visit.policy == RECOMMENDED_POLICY
    assert settings.config.relevance.accept_comment == "Good job" and settings.config.visit.accept_comment == "Good job"  # [ValidationRelevance]'s, as v1 used it
    assert settings.pools() == {"pedestrian": "1", "visit": "2", "quality": "3", "relevance": "4"}


def test_settings_are_frozen() -> None:
    """Nothing can change a setting after start-up."""
    settings = load_settings(EXAMPLE_INI)
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.config.visit.overlap = 5  # type: ignore[misc]


@pytest.mark.parametrize(
    ("environment", "base_url"),
    [
        ("PRODUCTION", "https://toloka.dev"),
        ("sandbox", "https://sandbox.toloka.dev"),
        ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"),
        ("https://tasks.example.org/toloka", "https://tasks.example.org/toloka"),
    ],
)
def test_environment_maps_to_base_url(environment: str, base_url: str) -> None:
    """PRODUCTION, SANDBOX or a URL becomes the API base URL."""
    assert base_url_of(environment) == base_url


@pytest.mark.parametrize(
    ("edits", "section", "key", "expected", "found"),
    [
        # missing values
        ({("Toloka", "environment"): None}, "Toloka", "environment", "a value", None),
        ({("Secrets", "toloka_token"): ""}, "Secrets", "toloka_token", "a value", ""),
        ({("ValidationQuality", "*"): None}, "ValidationQuality", "pool_id", "whole section is missing", None),
        ({("ValidationVisit", "pool_id"): ""}, "ValidationVisit", "pool_id", "a value", ""),
        # wrong types and ranges
        ({("Toloka", "environment"): "STAGING"}, "Toloka", "environment", "PRODUCTION, SANDBOX or an http(s)", "STAGING"),
        ({("Toloka", "environment"): "ftp://host"}, "Toloka", "environment", "PRODUCTION, SANDBOX", "ftp://host"),
        ({("Toloka", "timeout_seconds"): "0"}, "Toloka", "timeout_seconds", "a number > 0", "0"),
        ({("Pipeline", "period_seconds"): "soon"}, "Pipeline", "period_seconds", "a number", "soon"),
        ({("Pipeline", "log_level"): "VERBOSE"}, "Pipeline", "log_level", "one of DEBUG, INFO, WARNING, ERROR", "VERBOSE"),
        ({("Pipeline", "stop_when_pools_closed"): "maybe"}, "Pipeline", "stop_when_pools_closed", "true or false", "maybe"),
        ({("Pipeline", "concurrency"): "0"}, "Pipeline", "concurrency", "an integer from 1 to 256", "0"),
        ({("ValidationVisit", "min_overlap"): "0"}, "ValidationVisit", "min_overlap", "an integer from 1", "0"),
        ({("ValidationQuality", "max_overlap"): "three"}, "ValidationQuality", "max_overlap", "an integer", "three"),
        ({("ValidationRelevance", "aggregation"): "GLAD"}, "ValidationRelevance", "aggregation",
         "one of MajorityVote, DawidSkene, Wawa", "GLAD"),
        ({("ValidationVisit", "event"): "created"}, "ValidationVisit", "event", "one of submitted, accepted", "created"),
        ({("PedestrianProject", "event"): "rejected"}, "PedestrianProject", "event", "one of submitted, accepted",
         "rejected"),
        ({("ValidationVisit", "default_skill"): "150"}, "ValidationVisit", "default_skill", "a number from 0.0 to 100.0",
         "150"),
        ({("PedestrianProject", "bonus_per_field"): "-1"}, "PedestrianProject", "bonus_per_field",
         "a decimal amount >= 0", "-1"),
        ({("PedestrianProject", "bonus_per_field"): "five cents"}, "PedestrianProject", "bonus_per_field",
         "a decimal amount", "five cents"),
        ({("PedestrianProject", "main_fields"): "imgs_facade,,name_business"}, "PedestrianProject", "main_fields",
         "a comma-separated list of names", "imgs_facade,,name_business"),
        ({("PedestrianProject", "pool_id"): "12 34"}, "PedestrianProject", "pool_id", "a Toloka pool id", "12 34"),
        # cross-field mistakes
        ({("PedestrianProject", "required_fields"): "imgs_facade, imgs_roof"}, "PedestrianProject", "required_fields",
         "names taken from main_fields", "imgs_facade, imgs_roof"),
        ({("PedestrianProject", "bonus_flags"): "can_take_interior, can_take_menu"}, "PedestrianProject",
         "bonus_flags", "one flag per bonus field", "can_take_interior, can_take_menu"),
        ({("PedestrianProject", "bonus_fields"): "imgs_menu, imgs_facade", ("PedestrianProject", "bonus_flags"): "a, b"},
         "PedestrianProject", "bonus_fields", "names not in main_fields", "imgs_menu, imgs_facade"),
        ({("PedestrianProject", "verdict_no_org"): "ok"}, "PedestrianProject", "verdict_no_org",
         "a value different from verdict_ok", "ok"),
        ({("ValidationQuality", "reject_label"): "ok"}, "ValidationQuality", "reject_label",
         "a label different from accept_label", "ok"),
        ({("ValidationRelevance", "pool_id"): "2"}, "ValidationRelevance", "pool_id",
         "a pool id different from [ValidationVisit] pool_id", "2"),
        # misspellings are not silently ignored
        ({("ValidationVisit", "overlpa"): "3"}, "ValidationVisit", "overlpa", "one of the keys", "3"),
        ({("Pipline", "period_seconds"): "5"}, "Pipline", "(section)", "one of the sections", "Pipline"),
    ],
)
def test_each_kind_of_mistake_names_section_key_expected_found(
    write_ini: WriteIni,
    edits: dict[tuple[str, str], str | None],
    section: str,
    key: str,
    expected: str,
    found: str | None,
) -> None:
    """A wrong or missing value stops start-up with section, key, expected and found."""
    expect_error(write_ini(edits), section, key, expected, found)


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    """No toloka.ini: the error says which path was tried."""
    missing = tmp_path / "nowhere" / "toloka.ini"
    with pytest.raises(ConfigFileError) as info:
        load_settings(missing)
    assert str(missing) in str(info.value) and "no such file" in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_unparsable_file_names_the_path_and_line(tmp_path: Path) -> None:
    """An INI syntax error (no section header) names the file and the line."""
    broken = tmp_path / "toloka.ini"
    broken.write_text("environment = SANDBOX\n", encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        read_ini(broken)
    assert str(broken) in str(info.value) and "line 1" in str(info.value)


def test_percent_signs_are_literal(write_ini: WriteIni) -> None:
    """Comments such as '100% sure' are not treated as interpolation."""
    settings = load_settings(write_ini({("ValidationVisit", "reject_comment"): "100% not there"}))
    assert settings.config.visit.reject_comment == "100% not there"


def test_case_is_normalised_for_choices(write_ini: WriteIni) -> None:
    """Choice values are accepted in any case and returned in canonical spelling."""
    settings = load_settings(
        write_ini({("ValidationQuality", "aggregation"): "dawidskene", ("Pipeline", "log_level"): "debug"})
    )
    assert settings.config.quality.aggregation == "DawidSkene" and settings.pipeline.log_level == "DEBUG"


def test_blank_bonus_lists_mean_no_bonus_fields(write_ini: WriteIni) -> None:
    """`bonus_fields =` and `bonus_flags =` left blank switch bonuses off (absent keys use defaults)."""
    settings = load_settings(
        write_ini({("PedestrianProject", "bonus_fields"): "", ("PedestrianProject", "bonus_flags"): ""})
    )
    assert settings.config.pedestrian.bonus_fields == () and settings.config.pedestrian.bonus_flags == ()
    defaults = load_settings(
        write_ini({("PedestrianProject", "bonus_fields"): None, ("PedestrianProject", "bonus_flags"): None})
    )
    assert defaults.config.pedestrian.bonus_fields[0] == "imgs_interior" and len(defaults.config.pedestrian.bonus_flags) == 4


def test_absolute_folders_are_kept_and_relative_ones_resolved(write_ini: WriteIni, tmp_path: Path) -> None:
    """Relative folders hang off base_dir; absolute ones are used as written."""
    elsewhere = tmp_path / "elsewhere"
    settings = load_settings(write_ini({("Pipeline", "logs_folder"): str(elsewhere)}), base_dir=tmp_path / "run")
    assert settings.pipeline.logs_folder == elsewhere
    assert settings.pipeline.saves_folder == tmp_path / "run" / "saves"


def test_file_store_parser_receives_the_same_file(tmp_path: Path) -> None:
    """The [FileStore]/[S3]/[Azure] parser plugs in and its result lands in Settings.file_store."""
    cfg = read_ini(EXAMPLE_INI)
    seen: list[str] = []

    def parser(parsed: object) -> str:
        seen.append(cfg.get("FileStore", "backend"))
        return "store-settings"

    settings = parse_settings(cfg, PEDESTRIAN, source=EXAMPLE_INI, base_dir=tmp_path, file_store_parser=parser)
    assert settings.file_store == "store-settings" and seen == ["local"]


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("[Toloka]\nenvironment = SANDBOX\nenvironment = PRODUCTION\n", "line 3: key 'environment' appears twice"),
        ("[Toloka]\n[Toloka]\n", "line 2: section [Toloka] appears twice"),
        ("[Toloka]\njust words\n", "line 2: cannot parse 'just words'"),
    ],
)
def test_syntax_errors_name_the_line(tmp_path: Path, text: str, problem: str) -> None:
    """Duplicate keys/sections and stray lines are reported with their line number."""
    broken = tmp_path / "toloka.ini"
    broken.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigFileError) as info:
        load_settings(broken)
    assert str(broken) in str(info.value) and problem in str(info.value)


def test_secret_entries_follow_the_file_store_backend(write_ini: WriteIni) -> None:
    """The token is always needed; S3 and Azure add their keys, and a missing name is a ConfigError."""
    secrets = load_settings(EXAMPLE_INI).secrets
    assert secrets.entries_for("local") == ("toloka_token",)
    assert secrets.entries_for("s3") == ("toloka_token", "s3_key_id", "s3_access_key")
    assert secrets.entries_for("azure") == ("toloka_token", "azure_account_key")
    lacking = load_settings(write_ini({("Secrets", "s3_access_key"): None})).secrets
    with pytest.raises(ConfigError) as info:
        lacking.entries_for("s3")
    assert (info.value.section, info.value.key, info.value.found) == ("Secrets", "s3_access_key", None)
    assert "backend is s3" in str(info.value)


def test_every_mistake_of_the_file_is_reported_at_once(write_ini: WriteIni) -> None:
    """Mistakes in many sections (bad values, a misspelt key, a missing required key) come in one error."""
    path = write_ini({
        ("Toloka", "timeout_seconds"): "soon",
        ("Toloka", "enviroment"): "SANDBOX",  # misspelt key
        ("Pipeline", "concurrency"): "0",
        ("Pipeline", "log_level"): "LOUD",
        ("FileStore", "concurrency"): "many",
        ("ValidationVisit", "min_overlap"): "0",
        ("ValidationQuality", "reject_comment"): None,  # required
        ("PedestrianProject", "bonus_per_field"): "five cents",
    })
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    found = {(p.section, p.key) for p in info.value.problems}
    assert found == {
        ("Toloka", "timeout_seconds"), ("Toloka", "enviroment"), ("Pipeline", "concurrency"),
        ("Pipeline", "log_level"), ("FileStore", "concurrency"), ("ValidationVisit", "min_overlap"),
        ("ValidationQuality", "reject_comment"), ("PedestrianProject", "bonus_per_field"),
    }
    lines = str(info.value).splitlines()
    assert len(lines) == len(found)  # one line per problem, each naming its section and key
    for problem, line in zip(info.value.problems, lines, strict=True):
        assert line == str(problem) and f"[{problem.section}] {problem.key}: expected" in line
    assert "found 'soon'" in str(info.value) and "found nothing (the key is missing)" in str(info.value)


def test_one_mistake_is_still_a_plain_config_error(write_ini: WriteIni) -> None:
    """A file with a single mistake raises that ConfigError itself, as before."""
    with pytest.raises(ConfigError) as info:
        load_settings(write_ini({("Pipeline", "concurrency"): "0"}))
    assert not isinstance(info.value, ConfigErrors)
    assert (info.value.section, info.value.key) == ("Pipeline", "concurrency")


def test_a_cross_field_check_does_not_judge_a_replaced_default(write_ini: WriteIni) -> None:
    """confidence = 'high' is reported alone: reject_confidence is not compared with the default put in its place."""
    with pytest.raises(ConfigError) as info:
        load_settings(write_ini({("ValidationVisit", "confidence"): "high",
                                 ("ValidationVisit", "reject_confidence"): "0.95"}))
    assert (info.value.section, info.value.key) == ("ValidationVisit", "confidence")


def test_relative_folders_resolve_against_the_config_file(
    write_ini: WriteIni, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Started from elsewhere, the daemon still uses the folders next to its toloka.ini."""
    path = write_ini({("Pipeline", "saves_folder"): "state/saves", ("FileStore", "local_folder"): "pics"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    settings = load_settings(Path("..") / path.name)
    folder = path.parent.resolve()
    assert settings.pipeline.saves_folder.resolve() == folder / "state" / "saves"
    assert settings.pipeline.logs_folder.resolve() == folder / "logs"
    assert settings.pipeline.results_folder.resolve() == folder
    assert settings.file_store is not None and settings.file_store.local is not None
    local = settings.file_store.local.folder
    assert local.is_absolute() and local.resolve() == folder / "pics"


def test_mistakes_name_the_configuration_file_as_it_is_called(tmp_path: Path) -> None:
    """An operator with several files (one per project, or a copy being edited) sees which one is wrong."""
    config = tmp_path / "shops.ini"
    text = EXAMPLE_INI.read_text()
    config.write_text(text.replace("min_overlap = 2", "min_overlap = two", 1).replace(
        "period_seconds = 60", "period_seconds = -1", 1))
    with pytest.raises(ConfigError) as caught:
        load_settings(config)
    lines = str(caught.value).splitlines()
    assert len(lines) == 2 and all(line.startswith("shops.ini [") for line in lines), lines


def test_a_section_stopped_by_one_mistake_still_reports_its_other_keys(write_ini: WriteIni) -> None:
    """A bad environment and a missing pool id (errors that end a section's parse) hide no other key's mistake."""
    path = write_ini({
        ("Toloka", "environment"): "ftp://x",
        ("Toloka", "timeout_seconds"): "soon",
        ("ValidationQuality", "pool_id"): None,
        ("ValidationQuality", "min_overlap"): "zero",
    })
    with pytest.raises(ConfigErrors) as info:
        load_settings(path)
    lines = str(info.value).splitlines()
    assert len(lines) == 4, lines
    found = {(p.section, p.key) for p in info.value.problems}
    assert found == {
        ("Toloka", "environment"), ("Toloka", "timeout_seconds"),
        ("ValidationQuality", "pool_id"), ("ValidationQuality", "min_overlap"),
    }
    for problem, line in zip(info.value.problems, lines, strict=True):
        assert f"[{problem.section}] {problem.key}: expected" in line
    assert "found 'ftp://x'" in str(info.value) and "found 'zero'" in str(info.value)
