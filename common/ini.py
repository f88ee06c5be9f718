"""Typed readers for ``toloka.ini`` values.

Each reader takes a :class:`configparser.ConfigParser`, a section and a key and
either returns a typed value or raises :class:`~common.errors.ConfigError` that
names section, key, expected and found. Settings dataclasses elsewhere are built
only through these functions, so every configuration mistake reads the same way.
"""

from __future__ import annotations

import configparser
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import TypeVar

from common.errors import ConfigError

_T = TypeVar("_T")
_MISSING = object()
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(cfg: configparser.ConfigParser, section: str, key: str, default: object) -> str | object:
    if not cfg.has_section(section):
        if default is _MISSING:
            raise ConfigError(section, key, "a value (the whole section is missing)", None)
        return default
    value = cfg.get(section, key, fallback=None)
    if value is None or value.strip() == "":
        if default is _MISSING:
            raise ConfigError(section, key, "a value", None if value is None else value)
        return default
    return value.strip()


def get_str(cfg: configparser.ConfigParser, section: str, key: str, default: str | object = _MISSING) -> str:
    """A non-empty string (or ``default`` when the key is absent or blank)."""
    value = _raw(cfg, section, key, default)
    return value  # type: ignore[return-value]


def get_int(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    default: int | object = _MISSING,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int:
    """An integer, optionally bounded (inclusive)."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    expected = _bounds("an integer", minimum, maximum)
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(section, key, expected, value) from None
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ConfigError(section, key, expected, value)
    return number


def get_float(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    default: float | object = _MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """A finite number, optionally bounded (inclusive)."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    expected = _bounds("a number", minimum, maximum)
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(section, key, expected, value) from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ConfigError(section, key, expected, value)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        raise ConfigError(section, key, expected, value)
    return number


def get_decimal(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    default: Decimal | object = _MISSING,
    *,
    minimum: Decimal | None = None,
) -> Decimal:
    """A money amount as :class:`~decimal.Decimal` (never a float)."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    expected = _bounds("a decimal amount", minimum, None)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(section, key, expected, value) from None
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise ConfigError(section, key, expected, value)
    return number


def get_bool(cfg: configparser.ConfigParser, section: str, key: str, default: bool | object = _MISSING) -> bool:
    """``true/false``, ``yes/no``, ``on/off`` or ``1/0``."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(section, key, "true or false", value)


def get_choice(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    choices: Sequence[str],
    default: str | object = _MISSING,
    *,
    case_sensitive: bool = False,
) -> str:
    """One of ``choices``; returned spelled as in ``choices``."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value  # type: ignore[return-value]
    for choice in choices:
        if value == choice or (not case_sensitive and value.lower() == choice.lower()):
            return choice
    raise ConfigError(section, key, "one of " + ", ".join(choices), value)


def get_list(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    default: Sequence[str] | object = _MISSING,
    *,
    allow_empty: bool = False,
) -> list[str]:
    """A comma-separated list of non-empty names, without duplicates."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return list(value)  # type: ignore[call-overload]
    items = [item.strip() for item in value.split(",")]
    if any(not item for item in items) or (not allow_empty and not items):
        raise ConfigError(section, key, "a comma-separated list of names", value)
    if len(set(items)) != len(items):
        raise ConfigError(section, key, "a list without repeated names", value)
    return items


def _bounds(kind: str, minimum: object, maximum: object) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind
