"""``toloka.ini`` parsed once into frozen, typed settings.

Nothing past this module sees a :class:`configparser.ConfigParser` (except the
file-store parser, which owns ``[FileStore]``, ``[S3]`` and
``[AzureBlobStorage]``). Every mistake raises :class:`~common.errors.ConfigError`
naming section, key, expected and found, including cross-field mistakes
(required fields that are not main fields, flags that do not match bonus fields,
equal accept/reject labels, one pool used twice).

Paths in ``[Pipeline]`` are resolved against ``base_dir`` (the working
directory by default), so the daemon can change directory later without
changing meaning.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import ipaddress
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from common import ini
from common.errors import ConfigError

ENVIRONMENTS = {"PRODUCTION": "https://toloka.dev", "SANDBOX": "https://sandbox.toloka.dev"}
AGGREGATIONS = ("MajorityVote", "DawidSkene", "Wawa")
EVENTS = ("submitted", "accepted")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

Event = Literal["submitted", "accepted"]
Aggregation = Literal["MajorityVote", "DawidSkene", "Wawa"]
LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR"]

DEFAULT_MAIN_FIELDS = ("imgs_facade", "name_business", "hoo_business", "imgs_name_address")
DEFAULT_REQUIRED_FIELDS = ("imgs_facade", "name_business", "imgs_name_address")
DEFAULT_BONUS_FIELDS = ("imgs_interior", "imgs_covid_policy", "imgs_outdoor_seating", "imgs_menu")
DEFAULT_BONUS_FLAGS = ("can_take_interior", "can_take_covid_policy", "can_take_outdoor_seating", "can_take_menu")

VALIDATION_SECTIONS = ("ValidationVisit", "ValidationQuality", "ValidationRelevance")
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
class StatusSettings:
    """``[Status]``: the daemon's own status page and metrics (off by default)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    port: int = 8787  # 0: a free port, logged at start-up
    # Keyring entry of the token a client must send; required when ``host`` is not loopback.
    token: str | None = None
    refresh_seconds: int = 5

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    """``127.0.0.0/8``, ``::1`` or ``localhost``: addresses other machines cannot reach."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@dataclass(frozen=True, slots=True)
class PedestrianSettings:
    """``[PedestrianProject]``: the field pool and the names of its inputs and outputs."""

    pool_id: str
    event: Event
    org_fields: tuple[str, ...]
    extra_fields: tuple[str, ...]
    verdict_field: str
    verdict_ok: str
    verdict_no_org: str
    worker_coordinates_field: str
    comment_field: str
    main_fields: tuple[str, ...]
    required_fields: tuple[str, ...]
    bonus_fields: tuple[str, ...]
    bonus_flags: tuple[str, ...]
    bonus_flag_yes: str
    bonus_per_field: Decimal

    def bonus_flag_of(self, bonus_field: str) -> str:
        """The flag output (e.g. ``can_take_menu``) that enables ``bonus_field``."""
        return self.bonus_flags[self.bonus_fields.index(bonus_field)]


@dataclass(frozen=True, slots=True)
class ValidationSettings:
    """One verification pool (``[ValidationVisit]``, ``[ValidationQuality]``, ``[ValidationRelevance]``)."""

    section: str
    pool_id: str
    skill_id: str | None  # None: every worker weighs default_skill
    event: Event
    overlap: int
    answer_field: str
    accept_label: str
    reject_label: str
    aggregation: Aggregation
    default_skill: float
    reject_comment: str
    accept_comment: str | None


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything in ``toloka.ini``, typed. ``file_store`` comes from ``file_store.settings``."""

    source: Path
    secrets: SecretNames
    toloka: TolokaSettings
    pipeline: PipelineSettings
    pedestrian: PedestrianSettings
    visit: ValidationSettings
    quality: ValidationSettings
    relevance: ValidationSettings
    file_store: Any = field(default=None)
    status: StatusSettings = field(default_factory=StatusSettings)

    def pools(self) -> dict[str, str]:
        """Handler name -> pool id, in flow order (used for log folders and checks)."""
        return {
            "pedestrian": self.pedestrian.pool_id,
            "visit": self.visit.pool_id,
            "quality": self.quality.pool_id,
            "relevance": self.relevance.pool_id,
        }


# --- keys each section may hold (a misspelt key is an error, not a silent default) ---

_KNOWN_KEYS: dict[str, set[str]] = {
    "Secrets": {"toloka_token", "s3_key_id", "s3_access_key", "azure_account_key"},
    "Toloka": {"environment", "timeout_seconds", "cursor_lag_seconds"},
    "Pipeline": {
        "period_seconds", "stop_when_pools_closed", "log_level", "results_folder", "saves_folder",
        "logs_folder", "concurrency", "auto_accept_warning_hours", "max_spend",
    },
    "Status": {"enabled", "host", "port", "token", "refresh_seconds"},
    "PedestrianProject": {
        "pool_id", "event", "org_fields", "extra_fields", "verdict_field", "verdict_ok", "verdict_no_org",
        "worker_coordinates_field", "comment_field", "main_fields", "required_fields", "bonus_fields",
        "bonus_flags", "bonus_flag_yes", "bonus_per_field",
    },
}
_VALIDATION_KEYS = {
    "pool_id", "skill_id", "event", "overlap", "answer_field", "accept_label", "reject_label",
    "aggregation", "default_skill", "reject_comment", "accept_comment",
}
for _name in VALIDATION_SECTIONS:
    _KNOWN_KEYS[_name] = set(_VALIDATION_KEYS)


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
        try:
            line = str(ast.literal_eval(line))  # configparser stores repr(line)
        except (ValueError, SyntaxError):
            pass
        return f"line {lineno}: cannot parse {line.strip()!r} (expected `key = value`)"
    return " ".join(str(exc).split())


def load_settings(path: Path | str, *, base_dir: Path | None = None) -> Settings:
    """Read and check ``toloka.ini``; relative folders are taken from ``base_dir`` (default: cwd)."""
    path = Path(path)
    cfg = read_ini(path)
    return parse_settings(cfg, source=path.absolute(), base_dir=base_dir if base_dir is not None else Path.cwd())


def parse_settings(
    cfg: configparser.ConfigParser,
    *,
    source: Path,
    base_dir: Path,
    file_store_parser: Callable[[configparser.ConfigParser], Any] | None = None,
) -> Settings:
    """Build :class:`Settings` from an already-read parser (all checks included).

    ``file_store_parser`` defaults to :func:`file_store_hook`'s result.
    """
    check_unknown_keys(cfg)
    pedestrian = parse_pedestrian(cfg)
    visit = parse_validation(cfg, "ValidationVisit")
    quality = parse_validation(cfg, "ValidationQuality")
    relevance = parse_validation(cfg, "ValidationRelevance")
    _check_distinct_pools(pedestrian, (visit, quality, relevance))
    parser = file_store_parser if file_store_parser is not None else file_store_hook()
    return Settings(
        source=source,
        secrets=parse_secrets(cfg),
        toloka=parse_toloka(cfg),
        pipeline=parse_pipeline(cfg, base_dir),
        pedestrian=pedestrian,
        visit=visit,
        quality=quality,
        relevance=relevance,
        file_store=parser(cfg) if parser is not None else None,
        status=parse_status(cfg),
    )


def file_store_hook() -> Callable[[configparser.ConfigParser], Any] | None:
    """``file_store.settings.load_file_store_settings`` when that module exists, else None.

    Only a missing ``file_store``/``file_store.settings`` module is tolerated; an
    import error inside an existing module is a bug and propagates.
    """
    try:
        module = importlib.import_module("file_store.settings")
    except ModuleNotFoundError as exc:
        if exc.name in ("file_store", "file_store.settings"):
            return None
        raise
    parser: Callable[[configparser.ConfigParser], Any] | None = getattr(module, "load_file_store_settings", None)
    return parser


def check_unknown_keys(cfg: configparser.ConfigParser) -> None:
    """Refuse misspelt sections and keys in the sections this module owns."""
    known_sections = set(_KNOWN_KEYS) | set(FILE_STORE_SECTIONS)
    for section in cfg.sections():
        if section not in known_sections:
            raise ConfigError(
                section, "(section)", "one of the sections " + ", ".join(sorted(known_sections)), section
            )
        allowed = _KNOWN_KEYS.get(section)
        if allowed is None:
            continue
        for key in cfg.options(section):
            if key not in allowed:
                raise ConfigError(section, key, "one of the keys " + ", ".join(sorted(allowed)), cfg.get(section, key))


def parse_secrets(cfg: configparser.ConfigParser) -> SecretNames:
    """``[Secrets]``: the token entry is required, storage entries optional."""
    section = "Secrets"
    return SecretNames(
        toloka_token=ini.get_str(cfg, section, "toloka_token"),
        s3_key_id=_optional_str(cfg, section, "s3_key_id"),
        s3_access_key=_optional_str(cfg, section, "s3_access_key"),
        azure_account_key=_optional_str(cfg, section, "azure_account_key"),
    )


def parse_toloka(cfg: configparser.ConfigParser) -> TolokaSettings:
    """``[Toloka]``: environment name or URL, timeouts."""
    section = "Toloka"
    environment = ini.get_str(cfg, section, "environment")
    return TolokaSettings(
        environment=environment,
        base_url=base_url_of(environment),
        timeout_s=_positive(cfg, section, "timeout_seconds", 30.0),
        cursor_lag_s=ini.get_float(cfg, section, "cursor_lag_seconds", 60.0, minimum=0.0),
    )


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
        log_level=level,  # type: ignore[arg-type]  # checked by get_choice
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
        token=_optional_str(cfg, section, "token"),
        refresh_seconds=ini.get_int(cfg, section, "refresh_seconds", 5, minimum=1, maximum=3600),
    )
    if settings.enabled and not settings.loopback and settings.token is None:
        raise ConfigError(
            section, "token",
            f"a keyring entry name for the status token, because host {host} is reachable from other machines",
            None,
        )
    return settings


def parse_pedestrian(cfg: configparser.ConfigParser) -> PedestrianSettings:
    """``[PedestrianProject]`` with its cross-field checks."""
    s = "PedestrianProject"
    main_fields = tuple(ini.get_list(cfg, s, "main_fields", DEFAULT_MAIN_FIELDS))
    required = tuple(ini.get_list(cfg, s, "required_fields", DEFAULT_REQUIRED_FIELDS))
    bonus_fields = _list_may_be_empty(cfg, s, "bonus_fields", DEFAULT_BONUS_FIELDS)
    bonus_flags = _list_may_be_empty(cfg, s, "bonus_flags", DEFAULT_BONUS_FLAGS)
    settings = PedestrianSettings(
        pool_id=_pool_id(cfg, s),
        event=ini.get_choice(cfg, s, "event", EVENTS, "submitted"),  # type: ignore[arg-type]
        org_fields=tuple(ini.get_list(cfg, s, "org_fields", ("name", "address", "coordinates"))),
        extra_fields=_list_may_be_empty(cfg, s, "extra_fields", ()),
        verdict_field=ini.get_str(cfg, s, "verdict_field", "verdict"),
        verdict_ok=ini.get_str(cfg, s, "verdict_ok", "ok"),
        verdict_no_org=ini.get_str(cfg, s, "verdict_no_org", "no_org"),
        worker_coordinates_field=ini.get_str(cfg, s, "worker_coordinates_field", "worker_coordinates"),
        comment_field=ini.get_str(cfg, s, "comment_field", "comment"),
        main_fields=main_fields,
        required_fields=required,
        bonus_fields=bonus_fields,
        bonus_flags=bonus_flags,
        bonus_flag_yes=ini.get_str(cfg, s, "bonus_flag_yes", "yes"),
        bonus_per_field=ini.get_decimal(cfg, s, "bonus_per_field", minimum=Decimal(0)),
    )
    _check_pedestrian(cfg, settings)
    return settings


def _check_pedestrian(cfg: configparser.ConfigParser, p: PedestrianSettings) -> None:
    s = "PedestrianProject"
    outside = [name for name in p.required_fields if name not in p.main_fields]
    if outside:
        raise ConfigError(
            s, "required_fields",
            f"names taken from main_fields ({', '.join(p.main_fields)}); not there: {', '.join(outside)}",
            _shown(cfg, s, "required_fields", p.required_fields),
        )
    both = [name for name in p.bonus_fields if name in p.main_fields]
    if both:
        raise ConfigError(
            s, "bonus_fields", f"names not in main_fields; in both: {', '.join(both)}",
            _shown(cfg, s, "bonus_fields", p.bonus_fields),
        )
    if len(p.bonus_flags) != len(p.bonus_fields):
        raise ConfigError(
            s, "bonus_flags",
            f"one flag per bonus field, in the same order ({len(p.bonus_fields)} for "
            f"{', '.join(p.bonus_fields) or 'no bonus fields'}), got {len(p.bonus_flags)}",
            _shown(cfg, s, "bonus_flags", p.bonus_flags),
        )
    if p.verdict_ok == p.verdict_no_org:
        raise ConfigError(s, "verdict_no_org", f"a value different from verdict_ok ({p.verdict_ok!r})", p.verdict_no_org)
    overlap = set(p.org_fields) & set(p.extra_fields)
    if overlap:
        raise ConfigError(
            s, "extra_fields", f"names not already in org_fields; in both: {', '.join(sorted(overlap))}",
            _shown(cfg, s, "extra_fields", p.extra_fields),
        )


def parse_validation(cfg: configparser.ConfigParser, section: str) -> ValidationSettings:
    """One verification section with its checks (labels differ, overlap >= 1, ...)."""
    pool_id = _pool_id(cfg, section)
    accept = ini.get_str(cfg, section, "accept_label")
    reject = ini.get_str(cfg, section, "reject_label")
    if accept == reject:
        raise ConfigError(section, "reject_label", f"a label different from accept_label ({accept!r})", reject)
    return ValidationSettings(
        section=section,
        pool_id=pool_id,
        skill_id=_optional_str(cfg, section, "skill_id"),
        event=ini.get_choice(cfg, section, "event", EVENTS, "accepted"),  # type: ignore[arg-type]
        overlap=ini.get_int(cfg, section, "overlap", minimum=1),
        answer_field=ini.get_str(cfg, section, "answer_field", "result"),
        accept_label=accept,
        reject_label=reject,
        aggregation=ini.get_choice(cfg, section, "aggregation", AGGREGATIONS, "MajorityVote"),  # type: ignore[arg-type]
        default_skill=ini.get_float(cfg, section, "default_skill", 50.0, minimum=0.0, maximum=100.0),
        reject_comment=ini.get_str(cfg, section, "reject_comment"),
        accept_comment=_optional_str(cfg, section, "accept_comment"),
    )


def _check_distinct_pools(pedestrian: PedestrianSettings, validations: Sequence[ValidationSettings]) -> None:
    seen = {pedestrian.pool_id: "PedestrianProject"}
    for v in validations:
        if v.pool_id in seen:
            raise ConfigError(
                v.section, "pool_id", f"a pool id different from [{seen[v.pool_id]}] pool_id", v.pool_id
            )
        seen[v.pool_id] = v.section


# --- small readers ----------------------------------------------------------------------


def _pool_id(cfg: configparser.ConfigParser, section: str) -> str:
    value = ini.get_str(cfg, section, "pool_id")
    if any(ch.isspace() or ch in "/?#&," for ch in value):
        raise ConfigError(section, "pool_id", "a Toloka pool id (no spaces or punctuation)", value)
    return value


def _optional_str(cfg: configparser.ConfigParser, section: str, key: str) -> str | None:
    value = ini.get_str(cfg, section, key, "")
    return value or None


def _positive(cfg: configparser.ConfigParser, section: str, key: str, default: float) -> float:
    value = ini.get_float(cfg, section, key, default)
    if value <= 0:
        raise ConfigError(section, key, "a number > 0", cfg.get(section, key, fallback=str(value)))
    return value


def _list_may_be_empty(
    cfg: configparser.ConfigParser, section: str, key: str, default: Sequence[str]
) -> tuple[str, ...]:
    """Absent key -> ``default``; present but blank -> no names at all."""
    if cfg.has_section(section) and cfg.has_option(section, key) and not cfg.get(section, key).strip():
        return ()
    return tuple(ini.get_list(cfg, section, key, default))


def _folder(cfg: configparser.ConfigParser, section: str, key: str, default: str, base_dir: Path) -> Path:
    value = ini.get_str(cfg, section, key, default)
    if "\x00" in value:
        raise ConfigError(section, key, "a folder path", value)
    path = Path(value).expanduser()
    return path if path.is_absolute() else (Path(base_dir) / path).absolute()


def _shown(cfg: configparser.ConfigParser, section: str, key: str, parsed: Sequence[str]) -> str:
    """The value as written in the file, or the default that was used."""
    raw = cfg.get(section, key, fallback=None) if cfg.has_section(section) else None
    return raw.strip() if raw is not None else ", ".join(parsed) + " (the default)"
