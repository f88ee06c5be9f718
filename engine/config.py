"""``toloka.ini`` parsed once into frozen, typed settings.

This module parses the engine's sections (``[Secrets]``, ``[Toloka]``,
``[Pipeline]``, ``[Status]``); the file store parses ``[FileStore]``, ``[S3]``
and ``[AzureBlobStorage]``; the pipeline chosen by ``[Pipeline] definition``
parses its own sections (``PipelineSpec.parse_config``). Nothing past these
parsers sees a :class:`configparser.ConfigParser`. Every mistake is a
:class:`~common.errors.ConfigError` naming section, key, expected and found; a
section or key nobody owns is a mistake too. Loading collects every mistake of
the file and raises them together (:class:`common.ini.ConfigErrors`, one line
each), so a person fixes the file in one go.

Relative paths (the ``[Pipeline]`` folders, ``[FileStore] local_folder``) are
resolved against ``base_dir``: the folder of the configuration file unless the
caller says otherwise. A daemon started from another working directory then
works on the same folders as one started next to its ``toloka.ini``, instead of
silently starting over beside it.
"""

from __future__ import annotations

import ast
import configparser
import contextlib
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Any, Generic, Literal, TypeVar
from urllib.parse import urlsplit

from common import ini
from common.errors import ConfigError
from engine.spec import PipelineSpec
from file_store.settings import FileStoreSettings, LocalSettings, load_file_store_settings
from status.settings import StatusSettings

C = TypeVar("C")

ENVIRONMENTS = {"PRODUCTION": "https://toloka.dev", "SANDBOX": "https://sandbox.toloka.dev"}
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]
LOG_LEVELS: tuple[LogLevel, ...] = ("DEBUG", "INFO", "WARNING", "ERROR")

# Sections another module parses; this one only checks they are not misspelt.
FILE_STORE_SECTIONS = ("FileStore", "S3", "AzureBlobStorage")


class ConfigFileError(ConfigError):
    """The configuration file itself cannot be read or parsed (names the path)."""

    def __init__(self, path: Path, problem: str) -> None:
        self.path = path
        self.problem = problem
        self.section = ""
        self.key = ""
        self.expected = "a readable INI file"
        self.found = problem
        Exception.__init__(self, f"cannot read configuration file {path}: {problem}")


@dataclass(frozen=True, slots=True)
class SecretNames:
    """Keyring entry names (service ``TOLOKA``) from ``[Secrets]``; never values."""

    toloka_token: str
    s3_key_id: str | None = None
    s3_access_key: str | None = None
    azure_account_key: str | None = None

    def entries_for(self, file_store_backend: str) -> tuple[str, ...]:
        """Entries to read at start-up with this ``[FileStore] backend`` (s3, azure or local).

        Raises :class:`ConfigError` on ``[Secrets]`` when the backend needs an entry
        that is not named.
        """
        needed = {"s3": ("s3_key_id", "s3_access_key"), "azure": ("azure_account_key",)}.get(file_store_backend, ())
        names = [self.toloka_token]
        for key in needed:
            entry = getattr(self, key)
            if entry is None:
                raise ConfigError(
                    "Secrets", key, f"a keyring entry name ([FileStore] backend is {file_store_backend})", None
                )
            names.append(entry)
        return tuple(names)


@dataclass(frozen=True, slots=True)
class TolokaSettings:
    """``[Toloka]``: where the API is and how patiently to talk to it."""

    environment: str  # PRODUCTION, SANDBOX or the URL as written
    base_url: str  # https://toloka.dev, https://sandbox.toloka.dev or the URL (no trailing /)
    timeout_s: float
    cursor_lag_s: float


@dataclass(frozen=True, slots=True)
class PipelineSettings:
    """``[Pipeline]``: the tick loop, logging and folders (absolute paths)."""

    period_s: float
    stop_when_pools_closed: bool
    log_level: LogLevel
    results_folder: Path
    saves_folder: Path
    logs_folder: Path
    concurrency: int
    auto_accept_warning_hours: float
    # Rewards plus bonuses at which new paid tasks and bonuses are held (None: no limit).
    max_spend: Decimal | None = None


@dataclass(frozen=True, slots=True)
class Settings(Generic[C]):
    """Everything in ``toloka.ini``, typed: the engine's sections plus the pipeline's ``config``.

    ``file_store`` comes from ``file_store.settings``; ``pool_ids`` is the
    pipeline's pool name -> pool id, in flow order.
    """

    source: Path
    definition: str
    secrets: SecretNames
    toloka: TolokaSettings
    pipeline: PipelineSettings
    config: C
    pool_ids: Mapping[str, str]
    file_store: FileStoreSettings | None = None
    status: StatusSettings = field(default_factory=StatusSettings)

    def pools(self) -> dict[str, str]:
        """Pool name -> pool id, in flow order (used for log folders and checks)."""
        return dict(self.pool_ids)


# --- keys each engine section may hold (a misspelt key is an error, not a silent default) ---

ENGINE_SECTIONS: dict[str, frozenset[str]] = {
    "Secrets": frozenset({"toloka_token", "s3_key_id", "s3_access_key", "azure_account_key"}),
    "Toloka": frozenset({"environment", "timeout_seconds", "cursor_lag_seconds"}),
    "Pipeline": frozenset({
        "definition", "period_seconds", "stop_when_pools_closed", "log_level", "results_folder", "saves_folder",
        "logs_folder", "concurrency", "auto_accept_warning_hours", "max_spend",
    }),
    "Status": frozenset({"enabled", "host", "port", "token", "refresh_seconds", "stuck_after_hours"}),
}
DEFAULT_DEFINITION = "pedestrian"


# --- loading --------------------------------------------------------------------------


def read_ini(path: Path) -> configparser.ConfigParser:
    """Read ``path`` into a parser without interpolation (``%`` is literal)."""
    cfg = configparser.ConfigParser(interpolation=None)
    try:
        with open(path, encoding="utf-8") as handle:
            cfg.read_file(handle, source=str(path))
    except FileNotFoundError:
        raise ConfigFileError(path, "no such file") from None
    except IsADirectoryError:
        raise ConfigFileError(path, "it is a folder") from None
    except PermissionError:
        raise ConfigFileError(path, "permission denied") from None
    except UnicodeDecodeError as exc:
        raise ConfigFileError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except configparser.Error as exc:
        raise ConfigFileError(path, _syntax_problem(exc)) from None
    return cfg


def _syntax_problem(exc: configparser.Error) -> str:
    """configparser's error as one short line that does not repeat the path."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return f"line {exc.lineno}: a [Section] header is needed before {exc.line.strip()!r}"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: key {exc.option!r} appears twice in [{exc.section}]"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] appears twice"
    if isinstance(exc, configparser.ParsingError):
        lineno, line = exc.errors[0]
        with contextlib.suppress(ValueError, SyntaxError):
            line = str(ast.literal_eval(line))  # configparser stores repr(line)
        return f"line {lineno}: cannot parse {line.strip()!r} (expected `key = value`)"
    return " ".join(str(exc).split())


def read_definition(path: Path | str) -> str:
    """``[Pipeline] definition`` (default ``pedestrian``): which pipeline the file configures."""
    return ini.get_str(read_ini(Path(path)), "Pipeline", "definition", DEFAULT_DEFINITION)


def load_settings(path: Path | str, spec: PipelineSpec[C, Any], *, base_dir: Path | None = None) -> Settings[C]:
    """Read and check ``toloka.ini`` for ``spec`` (every mistake at once, see the module docstring).

    Relative folders are taken from ``base_dir``, by default the folder that
    holds the file (never the working directory).
    """
    path = Path(path)
    cfg = read_ini(path)
    source = Path(os.path.abspath(path))  # absolute, ".." folded (symbolic links kept as the operator wrote them)
    try:
        return parse_settings(cfg, spec, source=source, base_dir=base_dir if base_dir is not None else source.parent)
    except ConfigError as exc:
        raise exc.in_file(path.name) from None  # a file not called toloka.ini is named as it is


def parse_settings(
    cfg: configparser.ConfigParser,
    spec: PipelineSpec[C, Any],
    *,
    source: Path,
    base_dir: Path,
    file_store_parser: Callable[[configparser.ConfigParser], FileStoreSettings] | None = load_file_store_settings,
) -> Settings[C]:
    """Build :class:`Settings` from an already-read parser (all checks included).

    Raises the one :class:`ConfigError` found, or :class:`common.ini.ConfigErrors`
    listing all of them.
    """
    definition = ini.get_str(cfg, "Pipeline", "definition", DEFAULT_DEFINITION)
    if definition != spec.name:
        raise ConfigError("Pipeline", "definition", f"{spec.name!r} (the pipeline being started)", definition)
    with ini.collecting() as problems:
        problems.section(lambda: check_unknown_keys(cfg, spec.sections))
        secrets = problems.section(lambda: parse_secrets(cfg))
        toloka = problems.section(lambda: parse_toloka(cfg))
        pipeline = problems.section(lambda: parse_pipeline(cfg, base_dir))
        status = problems.section(lambda: parse_status(cfg))
        file_store = None
        if file_store_parser is not None:
            parser = file_store_parser
            file_store = problems.section(lambda: _resolve_store_folder(parser(cfg), base_dir))
        config = problems.section(lambda: spec.parse_config(cfg))
        problems.raise_if_any()
    assert secrets is not None and toloka is not None and pipeline is not None and status is not None
    assert config is not None
    return Settings(
        source=source,
        definition=definition,
        secrets=secrets,
        toloka=toloka,
        pipeline=pipeline,
        config=config,
        pool_ids=dict(spec.pools(config)),
        file_store=file_store,
        status=status,
    )


def _resolve_store_folder(settings: FileStoreSettings, base_dir: Path) -> FileStoreSettings:
    """``[FileStore] local_folder`` made absolute against ``base_dir`` (like the ``[Pipeline]`` folders)."""
    local = getattr(settings, "local", None)  # a parser plugged in by a test may return something else
    if not isinstance(local, LocalSettings):
        return settings
    folder = local.folder.expanduser()
    if folder.is_absolute():
        return settings
    return replace(settings, local=LocalSettings(folder=Path(os.path.abspath(Path(base_dir) / folder))))


def check_unknown_keys(cfg: configparser.ConfigParser, pipeline_sections: Mapping[str, frozenset[str]]) -> None:
    """Refuse misspelt sections, and misspelt keys in the engine's and the pipeline's sections (all of them)."""
    known = {**ENGINE_SECTIONS, **pipeline_sections}
    known_sections = set(known) | set(FILE_STORE_SECTIONS)
    found: list[ConfigError] = []
    for section in cfg.sections():
        if section not in known_sections:
            found.append(ConfigError(
                section, "(section)", "one of the sections " + ", ".join(sorted(known_sections)), section
            ))
            continue
        allowed = known.get(section)
        if allowed is None:
            continue
        for key in cfg.options(section):
            if key not in allowed:
                found.append(
                    ConfigError(section, key, "one of the keys " + ", ".join(sorted(allowed)), cfg.get(section, key))
                )
    if found:
        raise ini.one_error(found)


def parse_secrets(cfg: configparser.ConfigParser) -> SecretNames:
    """``[Secrets]``: the token entry is required, storage entries optional."""
    section = "Secrets"
    return SecretNames(
        toloka_token=ini.get_str(cfg, section, "toloka_token"),
        s3_key_id=optional_str(cfg, section, "s3_key_id"),
        s3_access_key=optional_str(cfg, section, "s3_access_key"),
        azure_account_key=optional_str(cfg, section, "azure_account_key"),
    )


def parse_toloka(cfg: configparser.ConfigParser) -> TolokaSettings:
    """``[Toloka]``: environment name or URL, timeouts."""
    section = "Toloka"
    timeout_s = _positive(cfg, section, "timeout_seconds", 30.0)
    cursor_lag_s = ini.get_float(cfg, section, "cursor_lag_seconds", 60.0, minimum=0.0)
    keys = ini.Gather(section)  # a bad environment is reported beside a bad timeout, not instead of it
    environment = keys.read(lambda: ini.get_str(cfg, section, "environment"))
    base_url = keys.read(lambda: base_url_of(environment)) if environment is not None else None
    keys.done()
    assert environment is not None and base_url is not None
    return TolokaSettings(environment=environment, base_url=base_url, timeout_s=timeout_s, cursor_lag_s=cursor_lag_s)


def base_url_of(environment: str) -> str:
    """PRODUCTION/SANDBOX (any case) or an http(s) URL with a host -> the API's base URL."""
    named = ENVIRONMENTS.get(environment.upper())
    if named is not None:
        return named
    expected = "PRODUCTION, SANDBOX or an http(s):// URL such as http://127.0.0.1:8000"
    try:
        parts = urlsplit(environment)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError("Toloka", "environment", expected, environment) from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError("Toloka", "environment", expected, environment)
    return environment.rstrip("/")


def parse_pipeline(cfg: configparser.ConfigParser, base_dir: Path) -> PipelineSettings:
    """``[Pipeline]``: period, stop policy, log level, folders, concurrency."""
    section = "Pipeline"
    level = ini.get_choice(cfg, section, "log_level", LOG_LEVELS, "INFO")
    return PipelineSettings(
        period_s=_positive(cfg, section, "period_seconds", 60.0),
        stop_when_pools_closed=ini.get_bool(cfg, section, "stop_when_pools_closed", False),
        log_level=level,
        results_folder=_folder(cfg, section, "results_folder", ".", base_dir),
        saves_folder=_folder(cfg, section, "saves_folder", "saves", base_dir),
        logs_folder=_folder(cfg, section, "logs_folder", "logs", base_dir),
        concurrency=ini.get_int(cfg, section, "concurrency", 8, minimum=1, maximum=256),
        auto_accept_warning_hours=ini.get_float(cfg, section, "auto_accept_warning_hours", 12.0, minimum=0.0),
        max_spend=ini.get_decimal(cfg, section, "max_spend", None, minimum=Decimal(0)),
    )


def read_max_spend(path: Path) -> Decimal | None:
    """``[Pipeline] max_spend`` as the file says now (the daemon re-reads it while spending is held)."""
    return ini.get_decimal(read_ini(path), "Pipeline", "max_spend", None, minimum=Decimal(0))


def parse_status(cfg: configparser.ConfigParser) -> StatusSettings:
    """``[Status]``: off unless ``enabled``; a non-loopback ``host`` needs a ``token`` entry."""
    section = "Status"
    host = ini.get_str(cfg, section, "host", "127.0.0.1")
    if any(ch.isspace() or ch in "/[]" for ch in host):
        raise ConfigError(section, "host", "an IP address or host name such as 127.0.0.1", host)
    settings = StatusSettings(
        enabled=ini.get_bool(cfg, section, "enabled", False),
        host=host,
        port=ini.get_int(cfg, section, "port", 8787, minimum=0, maximum=65535),
        token=optional_str(cfg, section, "token"),
        refresh_seconds=ini.get_int(cfg, section, "refresh_seconds", 5, minimum=1, maximum=3600),
        stuck_after_hours=ini.get_float(cfg, section, "stuck_after_hours", 24.0, minimum=0.0),
    )
    if settings.enabled and not settings.loopback and settings.token is None:
        raise ConfigError(
            section, "token",
            f"a keyring entry name for the status token, because host {host} is reachable from other machines",
            None,
        )
    return settings


# --- small readers ----------------------------------------------------------------------


def pool_id_of(cfg: configparser.ConfigParser, section: str) -> str:
    value = ini.get_str(cfg, section, "pool_id")
    if any(ch.isspace() or ch in "/?#&," for ch in value):
        raise ConfigError(section, "pool_id", "a Toloka pool id (no spaces or punctuation)", value)
    return value


def optional_str(cfg: configparser.ConfigParser, section: str, key: str) -> str | None:
    value = ini.get_str(cfg, section, key, "")
    return value or None


def _positive(cfg: configparser.ConfigParser, section: str, key: str, default: float) -> float:
    value = ini.get_float(cfg, section, key, default)
    if value <= 0:
        return ini.invalid(ConfigError(section, key, "a number > 0", cfg.get(section, key, fallback=str(value))),
                           default)
    return value


def list_may_be_empty(
    cfg: configparser.ConfigParser, section: str, key: str, default: Sequence[str]
) -> tuple[str, ...]:
    """Absent key -> ``default``; present but blank -> no names at all."""
    if cfg.has_section(section) and cfg.has_option(section, key) and not cfg.get(section, key).strip():
        return ()
    return tuple(ini.get_list(cfg, section, key, default))


def _folder(cfg: configparser.ConfigParser, section: str, key: str, default: str, base_dir: Path) -> Path:
    value = ini.get_str(cfg, section, key, default)
    if "\x00" in value:
        value = ini.invalid(ConfigError(section, key, "a folder path", value), default)
    path = Path(value).expanduser()
    return Path(os.path.abspath(path if path.is_absolute() else Path(base_dir) / path))


def shown(cfg: configparser.ConfigParser, section: str, key: str, parsed: Sequence[str]) -> str:
    """The value as written in the file, or the default that was used."""
    raw = cfg.get(section, key, fallback=None) if cfg.has_section(section) else None
    return raw.strip() if raw is not None else ", ".join(parsed) + " (the default)"
