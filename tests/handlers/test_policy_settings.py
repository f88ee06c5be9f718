"""The dynamic policy's INI keys: validated like the others; an old file keeps its fixed overlap."""

from __future__ import annotations

import configparser

import pytest

from common.errors import ConfigError
from emulator.crowd import config_out
from handlers.settings import RECOMMENDED_POLICY, parse_validation

BASE = """
[ValidationQuality]
pool_id = 3
accept_label = ok
reject_label = bad
reject_comment = Low quality photos
"""


def section(extra: str) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    cfg.read_string(BASE + extra)
    return cfg


def test_an_old_file_with_overlap_only_keeps_a_fixed_overlap() -> None:
    v = parse_validation(section("overlap = 5\n"), "ValidationQuality", "Good job")
    assert v.policy is None and v.overlap == 5


def test_any_policy_key_switches_to_the_policy_with_recommended_defaults() -> None:
    v = parse_validation(section("confidence = 0.95\n"), "ValidationQuality", "Good job")
    assert v.policy is not None
    assert v.policy.confidence == 0.95 and v.policy.min_overlap == RECOMMENDED_POLICY.min_overlap
    assert v.policy.reject_confidence == RECOMMENDED_POLICY.reject_confidence
    assert v.overlap == RECOMMENDED_POLICY.min_overlap  # tasks are created with min_overlap


@pytest.mark.parametrize(
    ("extra", "key", "expected", "found"),
    [
        ("overlap = 3\nmin_overlap = 2\n", "overlap", "no fixed overlap next to the dynamic policy", "3"),
        ("min_overlap = 4\nmax_overlap = 3\n", "max_overlap", "an integer >= min_overlap (4)", "3"),
        ("min_overlap = 0\n", "min_overlap", "an integer from 1 to 100", "0"),
        ("confidence = 0.4\n", "confidence", "a number from 0.5 to 0.9999", "0.4"),
        ("confidence = high\n", "confidence", "a number", "high"),
        ("confidence = 0.95\nreject_confidence = 0.9\n", "reject_confidence", "a probability >= confidence", "0.9"),
        ("fallback = reject\n", "fallback", "one of accept, hold, lean", "reject"),
    ],
)
def test_wrong_policy_values_name_section_key_expected_and_found(extra: str, key: str, expected: str,
                                                                 found: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_validation(section(extra), "ValidationQuality", "Good job")
    message = str(caught.value)
    assert "[ValidationQuality]" in message and key in message and expected in message and found in message


def test_the_emulators_config_out_writes_the_recommended_policy() -> None:
    cfg = section("\n".join(config_out._DYNAMIC_POLICY) + "\n")
    assert parse_validation(cfg, "ValidationQuality", "Good job").policy == RECOMMENDED_POLICY


def test_the_example_toloka_ini_uses_the_recommended_policy() -> None:
    cfg = configparser.ConfigParser()
    cfg.read("toloka.example.ini")
    for name in ("ValidationVisit", "ValidationQuality", "ValidationRelevance"):
        assert parse_validation(cfg, name, "Good job").policy == RECOMMENDED_POLICY
