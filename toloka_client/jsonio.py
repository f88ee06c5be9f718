"""JSON in and out with exact money: floats parse as Decimal, Decimals write as numbers.

The standard ``json`` module cannot write a ``Decimal`` as a JSON number (its
``default`` hook can only return another object to encode), so :func:`dumps`
encodes the handful of JSON types itself when the value holds a Decimal or a
datetime; plain values (most task bodies) go through ``json``'s C encoder.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

from toloka_client.timefmt import format_datetime


def loads(text: str | bytes) -> Any:
    """Parse JSON; every non-integer number becomes a ``Decimal``."""
    return json.loads(text, parse_float=Decimal)


def dumps(value: Any) -> str:
    """Serialise ``value`` compactly; Decimals become numbers, datetimes naive-UTC strings."""
    if _string_keys(value):  # the C encoder would turn a key 1 into "1": those take the strict path
        try:  # the C encoder refuses (TypeError) what only the slow path can write: a Decimal, a datetime
            return json.dumps(value, separators=(",", ":"), allow_nan=False)
        except TypeError:
            pass
    parts: list[str] = []
    _encode(value, parts)
    return "".join(parts)


def _string_keys(value: Any) -> bool:
    """Is every key of every object inside ``value`` a ``str``? (Only keys are looked at, not strings.)"""
    kind = type(value)
    if kind is dict:
        return all(type(key) is str for key in value) and all(
            _string_keys(item) for item in value.values() if type(item) in _CONTAINERS)
    if kind is list or kind is tuple:
        return all(_string_keys(item) for item in value if type(item) in _CONTAINERS)
    return True


_CONTAINERS = (dict, list, tuple)


def _encode(value: Any, out: list[str]) -> None:
    if value is None or isinstance(value, (bool, int, str)):
        out.append(json.dumps(value))
    elif isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"cannot write {value} as a JSON number")
        out.append(str(value))
    elif isinstance(value, float):
        out.append(json.dumps(value, allow_nan=False))
    elif isinstance(value, datetime):
        out.append(json.dumps(format_datetime(value)))
    elif isinstance(value, Mapping):
        out.append("{")
        for i, (key, item) in enumerate(value.items()):
            if not isinstance(key, str):
                raise TypeError(f"JSON object keys must be strings, not {type(key).__name__}")
            if i:
                out.append(",")
            out.append(json.dumps(key))
            out.append(":")
            _encode(item, out)
        out.append("}")
    elif isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        out.append("[")
        for i, item in enumerate(value):
            if i:
                out.append(",")
            _encode(item, out)
        out.append("]")
    else:
        raise TypeError(f"cannot write {type(value).__name__} as JSON")
