"""Deterministic, safe object keys.

A key is a ``/``-joined path such as ``tmp/2026-11-22/<assignment id>/imgs_facade/0.jpg``.
Keys are built from ids and field names that come from workers and configuration, so
:func:`make_key` escapes whatever could make a key escape its folder or break a backend:
``..`` segments, a leading ``/``, backslashes, control and invisible format characters.
The escaping is percent-style and injective (``%`` itself is escaped first), so two
different inputs never produce the same key, and the same input always produces the same
key (replays after a crash write to the same place). Spaces and non-ASCII letters are kept
(NFC-normalised): every backend and its links handle them.
"""

from __future__ import annotations

import unicodedata

from common.errors import StorageError

#: S3 and Azure both limit a key/blob name to 1024 (UTF-8 bytes for S3, characters for Azure).
MAX_KEY_BYTES = 1024

# Unicode categories escaped wherever they appear: controls (C0/C1), format characters
# (e.g. U+202E right-to-left override, zero-width joiners), surrogates, line/paragraph
# separators. They are invisible or dangerous in logs, TSVs and file names.
_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
_ALWAYS_ESCAPED = frozenset({"%", "/", "\\"})


class InvalidKeyError(StorageError, ValueError):
    """A key that could leave its folder or confuse a backend (a programming error)."""


def _escape(char: str) -> str:
    raw = char.encode("utf-8", "surrogatepass")
    return "".join(f"%{byte:02X}" for byte in raw)


def _needs_escape(char: str) -> bool:
    return char in _ALWAYS_ESCAPED or unicodedata.category(char) in _ESCAPED_CATEGORIES


def key_part(part: str | int) -> str:
    """One path segment: ``part`` with every unsafe character percent-escaped.

    Dots are escaped when the segment would be ``.``/``..``, would start with a dot
    (hidden files; also keeps the local backend's ``.file_store`` folder out of reach),
    contains ``..`` anywhere, or ends with a dot (Azure forbids names ending in ``.``).
    """
    text = str(part)
    if _plain_segment(text):  # ids, dates, field names: kept whole, with no look-up per character
        return text
    return _escape_segment(unicodedata.normalize("NFC", text))


def _plain_segment(text: str) -> bool:
    """Would :func:`_escape_segment` keep ``text`` as it is? Answered for the common case only.

    Printable ASCII holds no character of ``_ESCAPED_CATEGORIES`` and is already NFC; what is
    left to escape is then ``%``, ``/``, ``\\`` and the dots the rules name. False means "look
    closer", not "unsafe".
    """
    return (
        text.isascii() and text.isprintable() and text != ""
        and "%" not in text and "/" not in text and "\\" not in text
        and text[0] != "." and text[-1] != "." and ".." not in text
    )


def _escape_segment(text: str) -> str:
    if text == "":
        raise InvalidKeyError("a key part must not be empty")
    out = [_escape(char) if _needs_escape(char) else char for char in text]
    escape_all_dots = ".." in text
    for index, char in enumerate(text):
        if char == "." and (escape_all_dots or index == 0 or index == len(text) - 1):
            out[index] = "%2E"
    return "".join(out)


def make_key(*parts: str | int) -> str:
    """Join ``parts`` into a key, escaping each one with :func:`key_part`.

    >>> make_key("tmp", "2026-11-22", "a/../b", "photo 1.jpg")
    'tmp/2026-11-22/a%2F%2E%2E%2Fb/photo 1.jpg'
    """
    if not parts:
        raise InvalidKeyError("a key needs at least one part")
    key = "/".join(key_part(part) for part in parts)
    check_key(key)
    return key


def check_key(key: str) -> str:
    """Return ``key`` if it is safe (as :func:`make_key` would build it), else raise.

    Every file store operation calls this first, so a key that arrives from elsewhere
    (a stored URL, a checkpoint) cannot point outside the store either.
    """
    if not isinstance(key, str) or key == "":
        raise InvalidKeyError(f"a key must be a non-empty string, got {key!r}")
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES:
        raise InvalidKeyError(f"key is longer than {MAX_KEY_BYTES} bytes: {key[:60]!r}...")
    # Printable ASCII holds no character of _ESCAPED_CATEGORIES (ASCII's are all Cc): the common
    # case skips the per-character look-up, which every store operation paid for every key.
    plain = key.isascii() and key.isprintable()
    for segment in key.split("/"):
        if segment == "":
            raise InvalidKeyError(f"key has an empty segment or a leading/trailing '/': {key!r}")
        if segment.startswith(".") or segment.endswith("."):
            raise InvalidKeyError(f"key segment starts or ends with '.': {key!r}")
        if ".." in segment:
            raise InvalidKeyError(f"key contains '..': {key!r}")
        if "\\" in segment or (not plain and any(unicodedata.category(c) in _ESCAPED_CATEGORIES for c in segment)):
            raise InvalidKeyError(f"key contains a backslash or a control character: {key!r}")
    return key


def check_prefix(prefix: str) -> str:
    """A listing prefix: a safe key followed by ``/`` (or empty for the whole store)."""
    if prefix == "":
        return prefix
    if not prefix.endswith("/"):
        raise InvalidKeyError(f"a folder prefix must end with '/': {prefix!r}")
    check_key(prefix[:-1])
    return prefix
