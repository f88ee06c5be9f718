"""Typed readers for ``toloka.ini`` values.

Each reader takes a :class:`configparser.ConfigParser`, a section and a key and
either returns a typed value or raises :class:`~common.errors.ConfigError` that
names section, key, expected and found. Settings dataclasses elsewhere are built
only through these functions, so every configuration mistake reads the same way.

A person fixing ``toloka.ini`` wants every mistake at once, not one per run.
Inside ``with collecting() as problems:`` a reader that finds a bad value for a
key *with a default* records the error and goes on with the default, and
``problems.section(parse)`` records whatever error ends one section's parse
(a missing required key, a cross-field mistake) and goes on with the next
section; ``problems.raise_if_any()`` then raises them all together as one
:class:`ConfigErrors` (or the single :class:`ConfigError` when there is one).
Outside ``collecting()`` every reader raises at once, as before.
"""

from __future__ import annotations

import configparser
import contextlib
import enum
from collections.abc import Callable, Iterator, Sequence
from contextvars import ContextVar
from decimal import Decimal, InvalidOperation
from typing import Final, Literal, TypeVar

from common.errors import ConfigError, PipelineError

# The type of a default: a reader returns its own type, or the default's type
# (``get_decimal(..., None)`` is ``Decimal | None``).
_D = TypeVar("_D")
# One of a reader's choices (a ``Literal`` type when the choices are declared so).
_S = TypeVar("_S", bound=str)
_T = TypeVar("_T")


class ConfigErrors(ConfigError):
    """Several mistakes found in one reading of ``toloka.ini``: ``problems``, in the order found.

    Its message is one line per problem (each names section, key, expected and
    found); ``section``, ``key``, ``expected`` and ``found`` are the first one's.
    """

    def __init__(self, problems: Sequence[ConfigError]) -> None:
        if not problems:
            raise ValueError("ConfigErrors needs at least one problem")
        self.problems = tuple(problems)
        first = self.problems[0]
        self.section, self.key, self.expected, self.found = first.section, first.key, first.expected, first.found
        PipelineError.__init__(self, "\n".join(str(problem) for problem in self.problems))

    def __reduce__(self) -> tuple[type[ConfigErrors], tuple[tuple[ConfigError, ...]]]:
        return (type(self), (self.problems,))

    def in_file(self, file: str) -> ConfigErrors:
        return ConfigErrors([problem.in_file(file) for problem in self.problems])


def one_error(problems: Sequence[ConfigError]) -> ConfigError:
    """The error to raise for ``problems``: the problem itself when there is one, else :class:`ConfigErrors`."""
    flat = [p for problem in problems for p in (problem.problems if isinstance(problem, ConfigErrors) else (problem,))]
    return flat[0] if len(flat) == 1 else ConfigErrors(flat)


class Problems:
    """The configuration mistakes found so far by :func:`collecting` (see the module docstring)."""

    def __init__(self) -> None:
        self.found: list[ConfigError] = []
        # Sections where a reader went on with a default in place of a bad value: a later
        # cross-field check there may be judging that default, not the file.
        self._defaulted: set[str] = set()

    def record(self, error: ConfigError, *, defaulted: bool = False) -> None:
        """Keep ``error`` (once: the same error object seen again is not listed twice)."""
        for problem in error.problems if isinstance(error, ConfigErrors) else (error,):
            if not any(problem is seen for seen in self.found):
                self.found.append(problem)
        if defaulted:
            self._defaulted.add(error.section)

    def section(self, parse: Callable[[], _T]) -> _T | None:
        """``parse()``, or None after recording the error that stopped it.

        An error nobody recorded yet that comes from a section where a reader
        already replaced a bad value by its default is dropped: it may be about
        that default. It shows on the next run, once the listed ones are fixed.
        """
        try:
            return parse()
        except ConfigError as exc:
            known = isinstance(exc, ConfigErrors) or any(exc is seen for seen in self.found)
            if known or exc.section not in self._defaulted:
                self.record(exc)
            return None

    def raise_if_any(self) -> None:
        """Raise what was found: nothing, the one :class:`ConfigError`, or :class:`ConfigErrors`."""
        if self.found:
            raise one_error(self.found)


_ACTIVE: ContextVar[Problems | None] = ContextVar("ini_problems", default=None)


@contextlib.contextmanager
def collecting() -> Iterator[Problems]:
    """Collect configuration mistakes instead of stopping at the first (nested uses share one)."""
    active = _ACTIVE.get()
    if active is not None:
        yield active
        return
    problems = Problems()
    token = _ACTIVE.set(problems)
    try:
        yield problems
    finally:
        _ACTIVE.reset(token)


class Gather:
    """One section's reads that go on past a mistake with no default to put in its place.

    Without it, a missing required key (or a bad pool id) ends the section's parse and
    hides every mistake in the keys after it. ``read(lambda: ...)`` returns the value, or,
    when collecting, records the error and returns None; ``refuse(error)`` records a
    mistake about keys that have no default; ``check(parse, placeholder)`` runs a
    cross-field check that may be judging a replaced default, keeping its error for
    ``done()`` (recorded there only if no key of the section was replaced). ``done()``
    then raises the first error, so the section still ends as failed. Outside
    :func:`collecting` each raises at once, as before.
    """

    def __init__(self, section: str) -> None:
        self.section = section
        self._stopped: ConfigError | None = None
        self._later: list[ConfigError] = []

    def read(self, read: Callable[[], _T]) -> _T | None:
        try:
            return read()
        except ConfigError as exc:
            self.refuse(exc)
            return None

    def refuse(self, error: ConfigError) -> None:
        problems = _ACTIVE.get()
        if problems is None:
            raise error
        problems.record(error)
        if self._stopped is None:
            self._stopped = error

    def check(self, parse: Callable[[], _T], placeholder: _T) -> _T:
        try:
            return parse()
        except ConfigError as exc:
            if _ACTIVE.get() is None:
                raise
            self._later.append(exc)
            return placeholder

    def done(self) -> None:
        problems = _ACTIVE.get()
        if problems is not None and self.section not in problems._defaulted:
            for error in self._later:
                problems.record(error)
        first = self._stopped or (self._later[0] if self._later else None)
        if first is not None:
            raise first


def _fail(error: ConfigError, default: object) -> None:
    """Raise ``error``, unless collecting and the key has a default (then the caller goes on with it)."""
    problems = _ACTIVE.get()
    if problems is None:
        raise error
    if default is _MISSING:
        problems.record(error)
        raise error
    problems.record(error, defaulted=True)


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
            _fail(ConfigError(section, key, "a value (the whole section is missing)", None), default)
        assert default is not _MISSING
        return default
    value = cfg.get(section, key, fallback=None)
    if value is None or value.strip() == "":
        if default is _MISSING:
            _fail(ConfigError(section, key, "a value", None if value is None else value), default)
        assert default is not _MISSING
        return default
    return value.strip()


def invalid(error: ConfigError, default: _D | _NoDefault) -> _D:
    """Raise ``error``, or (collecting, with a default) record it and return the default.

    For a parser's own check of one key's value, so it is collected like a reader's.
    """
    _fail(error, default)
    assert default is not _MISSING  # _fail raised
    return default


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
        return invalid(ConfigError(section, key, expected, value), default)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return invalid(ConfigError(section, key, expected, value), default)
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
        return invalid(ConfigError(section, key, expected, value), default)
    if number != number or number in (float("inf"), float("-inf")):
        return invalid(ConfigError(section, key, expected, value), default)
    if (minimum is not None and number < minimum) or (maximum is not None and number > maximum):
        return invalid(ConfigError(section, key, expected, value), default)
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
        return invalid(ConfigError(section, key, expected, value), default)
    if not number.is_finite() or (minimum is not None and number < minimum):
        return invalid(ConfigError(section, key, expected, value), default)
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
    return invalid(ConfigError(section, key, "true or false", value), default)


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
    return invalid(ConfigError(section, key, "one of " + ", ".join(choices), value), default)


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
        return list(invalid(ConfigError(section, key, "a comma-separated list of names", value), default))
    if len(set(items)) != len(items):
        return list(invalid(ConfigError(section, key, "a list without repeated names", value), default))
    return items


def _bounds(kind: str, minimum: object, maximum: object) -> str:
    if minimum is not None and maximum is not None:
        return f"{kind} from {minimum} to {maximum}"
    if minimum is not None:
        return f"{kind} >= {minimum}"
    if maximum is not None:
        return f"{kind} <= {maximum}"
    return kind
