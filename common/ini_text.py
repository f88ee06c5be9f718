"""Set keys in the text of an INI file, keeping everything else (comments, order, spacing).

``configparser.write`` drops every comment, and ``toloka.ini``'s comments are its
documentation; ``pipeline.py setup`` writes the pool and skill ids it made into
a commented file with :func:`set_values` instead.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

_SECTION = re.compile(r"^\s*\[([^\]]+)\]\s*$")
_KEY = re.compile(r"^([^\s;#=:][^=:]*?)\s*[=:]")


def set_values(text: str, values: Mapping[str, Mapping[str, str]]) -> str:
    """``text`` with ``values[section][key]`` set: the key's line replaced where it is, else
    added after the section's last key, else the section appended at the end.

    ValueError for a value or name that cannot be written on one line.
    """
    for section, keys in values.items():
        for key, value in keys.items():
            for part in (section, key, value):
                if "\n" in part or "\r" in part:
                    raise ValueError(f"[{section}] {key}: {part!r} does not fit on one line")
    lines = text.splitlines()
    for section, keys in values.items():
        for key, value in keys.items():
            lines = _set_one(lines, section, key, value)
    return "\n".join(lines) + "\n"


def _set_one(lines: list[str], section: str, key: str, value: str) -> list[str]:
    current: str | None = None
    last_key_of_section: int | None = None
    header: int | None = None
    for i, line in enumerate(lines):
        found = _SECTION.match(line)
        if found:
            current = found.group(1).strip()
            if current == section:
                header = i
            continue
        if current != section:
            continue
        name = _KEY.match(line)
        if name:
            last_key_of_section = i
            if name.group(1).strip().lower() == key.lower():
                return [*lines[:i], f"{key} = {value}".rstrip(), *lines[i + 1:]]
    new = f"{key} = {value}".rstrip()
    if header is None:
        tail = [] if not lines or not lines[-1].strip() else [""]
        return [*lines, *tail, f"[{section}]", new]
    at = (last_key_of_section if last_key_of_section is not None else header) + 1
    return [*lines[:at], new, *lines[at:]]
