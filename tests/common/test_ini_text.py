"""common.ini_text.set_values: keys set in place, comments and order kept."""

from __future__ import annotations

import configparser

import pytest

from common.ini_text import set_values

TEXT = """; a comment about the file

[Toloka]
; where
environment = http://127.0.0.1:8000
timeout_seconds = 30

[ValidationVisit]
pool_id = 2
; the skill
skill_id = 1
"""


def test_a_key_is_replaced_on_its_own_line_and_every_comment_stays() -> None:
    out = set_values(TEXT, {"ValidationVisit": {"pool_id": "100002"}, "Toloka": {"environment": "SANDBOX"}})
    assert out == TEXT.replace("pool_id = 2", "pool_id = 100002").replace("= http://127.0.0.1:8000", "= SANDBOX")


def test_a_missing_key_goes_after_the_sections_last_key_and_a_missing_section_at_the_end() -> None:
    out = set_values(TEXT, {"Toloka": {"cursor_lag_seconds": "5"}, "Status": {"enabled": "true"}})
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read_string(out)
    assert cfg["Toloka"]["cursor_lag_seconds"] == "5" and cfg["Status"]["enabled"] == "true"
    assert out.index("cursor_lag_seconds") < out.index("[ValidationVisit]")


def test_the_same_key_in_another_section_is_left_alone() -> None:
    text = "[A]\npool_id = 1\n\n[B]\npool_id = 2\n"
    assert set_values(text, {"B": {"pool_id": "9"}}) == "[A]\npool_id = 1\n\n[B]\npool_id = 9\n"


def test_a_value_with_a_line_break_is_refused() -> None:
    with pytest.raises(ValueError, match="one line"):
        set_values(TEXT, {"Toloka": {"environment": "a\n[Secrets]"}})
