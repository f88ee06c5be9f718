"""make_key/check_key with hostile inputs: nothing escapes its folder, nothing collides."""

from __future__ import annotations

import random
import unicodedata

import pytest

from file_store.keys import InvalidKeyError, _escape_segment, check_key, key_part, make_key

HOSTILE = [
    "..", ".", "...", "a..b", "../../etc/passwd", "/abs", "\\windows\\path", "C:\\x", "a/b", "a//b",
    "trailing.", ".hidden", "%2F", "%2E%2E", "%", "100%", "tab\t", "nl\n", "cr\r", "\x00", "\x7f", "\x85",
    "rtl\u202eexe.gpj", "zero\u200bwidth", "line\u2028sep", "\ud800", "эмодзи 😀", "  spaces  ", "?#&=+;",
]  # fmt: skip


@pytest.mark.parametrize("part", HOSTILE)
def test_hostile_parts_give_safe_keys(part: str) -> None:
    key = make_key("tmp", "2026-11-22", part, "0.jpg")
    assert check_key(key) == key
    assert ".." not in key
    assert not key.startswith("/")
    assert "\\" not in key
    assert key.count("/") == 3, "a part never adds a folder level"
    assert not any(unicodedata.category(c) in {"Cc", "Cf", "Cs", "Zl", "Zp"} for c in key)


def test_keys_are_deterministic_and_keep_readable_names() -> None:
    assert make_key("main", "Кафе «Ромашка»", "photo 1.jpg") == "main/Кафе «Ромашка»/photo 1.jpg"
    assert make_key("tmp", 2026, "a") == "tmp/2026/a"
    assert make_key("a", "b.c") == make_key("a", "b.c")


def test_escaping_is_injective() -> None:
    rng = random.Random(4)
    alphabet = ["a", ".", "/", "\\", "%", "2", "F", "E", " ", "\x00", "é", "\u202e"]
    parts = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 6))) for _ in range(5000)}
    parts = {unicodedata.normalize("NFC", p) for p in parts}
    keys = {key_part(p) for p in parts}
    assert len(keys) == len(parts)


def test_the_shortcut_for_plain_ascii_escapes_as_the_full_rules_do() -> None:
    # key_part keeps an id or a field name whole without looking at each character; every
    # ASCII string (printable or not, dots anywhere) must come out as the full rules make it.
    rng = random.Random(7)
    alphabet = [*"az09_-. %/\\", "\t", "\x00", "\x7f", "é"]
    parts = {"".join(rng.choice(alphabet) for _ in range(rng.randint(1, 7))) for _ in range(20000)}
    parts |= {"00000186a1--6b0dda7f0000000000000e0c", "imgs_menu", "0.jpg", "2026-11-30", "a.b.c", ".x", "x.", "..", "."}
    for part in parts:
        assert key_part(part) == _escape_segment(unicodedata.normalize("NFC", part)), part


def test_unicode_is_normalised_so_equal_looking_names_are_one_key() -> None:
    assert make_key("é") == make_key("e\u0301")


@pytest.mark.parametrize("bad", [[], [""], ["a", ""], ["x" * 1100]])
def test_empty_or_too_long_is_refused(bad: list[str]) -> None:
    with pytest.raises(InvalidKeyError):
        make_key(*bad)


@pytest.mark.parametrize(
    "key", ["", "/a", "a/", "a//b", "..", "a/../b", "a/./b", "a/.b", "a/b.", "a\\b", "a/\x00", "a/\u202e", "é" * 600]
)
def test_check_key_refuses_unsafe_keys(key: str) -> None:
    with pytest.raises(InvalidKeyError):
        check_key(key)


def test_invalid_key_error_is_a_storage_and_value_error() -> None:
    from common.errors import StorageError

    assert issubclass(InvalidKeyError, StorageError) and issubclass(InvalidKeyError, ValueError)
