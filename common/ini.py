"""Typed readers for ``toloka.ini`` values.

Each reader takes a :class:`configparser.ConfigParser`, a section and a key and
either returns a typed value or raises :class:`~common.errors.ConfigError` that
names section, key, expected and found. Settings dataclasses elsewhere are built
only through these functions, so every configuration mistake reads the same way.
"""

from __future__ import annotations

import configparser
import enum
from collections.abc import Sequence
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, TypeVar

from common.errors import ConfigError

# The type of a default: a reader returns its own type, or the default's type
# (``get_decimal(..., None)`` is ``Decimal | None``).
_D = TypeVar("_D")
# One of a reader's choices (a ``Literal`` type when the choices are declared so).
_S = TypeVar("_S", bound=str)


class _Missing(enum.Enum):
    """No default: the key is required."""

    MISSING = enum.auto()


_MISSING: Final = _Missing.MISSING
_NoDefault = Literal[_Missing.MISSING]
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _raw(cfg: configparser.ConfigParser, section: str, key: str, default: _D | _NoDefault) -> str | _D:
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


def get_str(
    cfg: configparser.ConfigParser, section: str, key: str, default: _D | _NoDefault = _MISSING
) -> str | _D:
    """A non-empty string (or ``default`` when the key is absent or blank)."""
    return _raw(cfg, section, key, default)


def get_int(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    default: _D | _NoDefault = _MISSING,
    *,
    minimum: int | None = None,
    maximum: int | None = None,
) -> int | _D:
    """An integer, optionally bounded (inclusive)."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value
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
    default: _D | _NoDefault = _MISSING,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float | _D:
    """A finite number, optionally bounded (inclusive)."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value
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
    default: _D | _NoDefault = _MISSING,
    *,
    minimum: Decimal | None = None,
) -> Decimal | _D:
    """A money amount as :class:`~decimal.Decimal` (never a float)."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value
    expected = _bounds("a decimal amount", minimum, None)
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise ConfigError(section, key, expected, value) from None
    if not number.is_finite() or (minimum is not None and number < minimum):
        raise ConfigError(section, key, expected, value)
    return number


def get_bool(
    cfg: configparser.ConfigParser, section: str, key: str, default: _D | _NoDefault = _MISSING
) -> bool | _D:
    """``true/false``, ``yes/no``, ``on/off`` or ``1/0``."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return value
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
    choices: Sequence[_S],
    default: _S | _NoDefault = _MISSING,
    *,
    case_sensitive: bool = False,
) -> _S:
    """One of ``choices``; returned spelled as in ``choices`` (so typed as they are declared).

    A default is checked against ``choices`` like a value read from the file.
    """
    value = _raw(cfg, section, key, default)
    for choice in choices:
        if value == choice or (not case_sensitive and value.lower() == choice.lower()):
            return choice
    raise ConfigError(section, key, "one of " + ", ".join(choices), value)


def get_list(
    cfg: configparser.ConfigParser,
    section: str,
    key: str,
    default: Sequence[str] | _NoDefault = _MISSING,
    *,
    allow_empty: bool = False,
) -> list[str]:
    """A comma-separated list of non-empty names, without duplicates."""
    value = _raw(cfg, section, key, default)
    if not isinstance(value, str):
        return list(value)
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
