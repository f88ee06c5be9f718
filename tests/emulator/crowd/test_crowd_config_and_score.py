"""config_out writes the example toloka.ini's format; the scoring helper counts what it says."""

from __future__ import annotations

import configparser
from pathlib import Path

import pytest

from emulator.crowd.config_out import render_ini, write_ini
from emulator.crowd.scenario import Scenario
from emulator.crowd.truth import normalize_decision, score
from common import ini

REPO = Path(__file__).resolve().parents[3]
SETUP = {"pools": {"pedestrian": "100001", "visit": "100002", "quality": "100003", "relevance": "100004"},
         "skills": {"visit": "100011", "quality": "100012", "relevance": "100013"}, "project_ids": {}}


def _read(path: Path) -> configparser.ConfigParser:
    cfg = configparser.ConfigParser()
    assert cfg.read(path, encoding="utf-8") == [str(path)]
    return cfg


def test_written_ini_has_exactly_the_sections_and_keys_of_the_example(tmp_path: Path, demo: Scenario) -> None:
    out = tmp_path / "conf" / "toloka.ini"
    write_ini(out, url="http://127.0.0.1:8765", setup_result=SETUP, scenario=demo)
    example, written = _read(REPO / "toloka.example.ini"), _read(out)
    assert written.sections() == example.sections()
    for section in example.sections():
        assert list(written[section]) == list(example[section]), section
    # where the example works with the emulator, the values agree, apart from the ids and the URL, and the
    # pedestrian restriction (off in a rehearsal: a barred pedestrian would leave organizations unvisited)
    for section in example.sections():
        for key, value in example[section].items():
            if key not in ("pool_id", "skill_id", "environment", "restrict_after_rejections"):
                assert written[section][key] == value, (section, key)


def test_written_ini_carries_ids_url_and_demo_timing(tmp_path: Path, demo: Scenario) -> None:
    out = tmp_path / "toloka.ini"
    write_ini(out, url="http://127.0.0.1:8765", setup_result=SETUP, scenario=demo,
              period_seconds=3, cursor_lag_seconds=2, local_folder="demo-photos")
    cfg = _read(out)
    assert ini.get_str(cfg, "Toloka", "environment") == "http://127.0.0.1:8765"
    assert ini.get_int(cfg, "Pipeline", "period_seconds") == 3
    assert ini.get_int(cfg, "Toloka", "cursor_lag_seconds") == 2
    assert ini.get_str(cfg, "FileStore", "backend") == "local"
    assert ini.get_str(cfg, "FileStore", "local_folder") == "demo-photos"
    assert ini.get_str(cfg, "PedestrianProject", "pool_id") == "100001"
    for section, pool, skill in (("ValidationVisit", "100002", "100011"), ("ValidationQuality", "100003", "100012"),
                                 ("ValidationRelevance", "100004", "100013")):
        assert ini.get_str(cfg, section, "pool_id") == pool
        assert ini.get_str(cfg, section, "skill_id") == skill
        assert ini.get_int(cfg, section, "min_overlap") == 2 and ini.get_int(cfg, section, "max_overlap") == 17
    assert list(tmp_path.iterdir()) == [out]  # no temp file left behind


def test_renamed_fields_reach_the_ini(demo_doc: dict, demo: Scenario) -> None:
    from emulator.crowd.scenario import parse_scenario

    demo_doc["fields"] = {"verdict_field": "answer", "relevance": {"accept_label": "yes_rel"}}
    text = render_ini(url="http://x", setup_result=SETUP, scenario=parse_scenario(demo_doc))
    cfg = configparser.ConfigParser()
    cfg.read_string(text)
    assert cfg["PedestrianProject"]["verdict_field"] == "answer"
    assert cfg["ValidationRelevance"]["accept_label"] == "yes_rel"


def test_values_configparser_would_mangle_are_refused(demo: Scenario) -> None:
    with pytest.raises(ValueError, match="cannot be written"):
        render_ini(url="http://x/%d", setup_result=SETUP, scenario=demo)


TRUTH = {
    "assignments": {
        "h1": {"kind": "honest", "expected": "accept", "bonus_fields": ["imgs_menu"]},
        "h2": {"kind": "honest", "expected": "no_org", "bonus_fields": []},
        "s1": {"kind": "sloppy", "expected": "reject", "bonus_fields": []},
        "c1": {"kind": "cheat", "expected": "reject", "bonus_fields": []},
        "c2": {"kind": "cheat", "expected": "reject", "bonus_fields": []},
    },
    "photos": {
        "p1": {"assignment_id": "h1", "good": True}, "p2": {"assignment_id": "h1", "good": False},
        "p3": {"assignment_id": "s1", "good": False}, "p4": {"assignment_id": "c1", "good": False},
        "p5": {"assignment_id": "c2", "good": False},
    },
}


def test_score_counts_precision_cheats_and_bad_photos() -> None:
    decisions = {"h1": "ACCEPTED", "h2": "no_org", "s1": "accept", "c1": "reject"}
    result = score(TRUTH, decisions, kept_photos=["p1", "p3"], bonus_fields={"h1": ["imgs_menu", "imgs_interior"]})
    assert result["decided"] == 4 and result["undecided"] == 1
    assert result["accepted"] == 3 and result["accepted_right"] == 2
    assert result["precision_accepted"] == pytest.approx(2 / 3, abs=1e-4)
    assert result["recall_accepted"] == 1.0
    assert result["exact"] == 3
    assert (result["cheats"], result["cheats_caught"]) == (2, 1)
    # bad photos of decided work: p2, p3, p4; p3 was kept
    assert (result["bad_photos"], result["bad_photos_kept_out"], result["good_photos_kept"]) == (3, 2, 1)
    assert result["confusion"]["reject->accept"] == 1
    assert (result["bonus_fields_paid"], result["bonus_fields_right"]) == (2, 1)


def test_score_without_kept_photos_assumes_accepted_work_keeps_all_its_photos() -> None:
    result = score(TRUTH, {"h1": "accept", "s1": "reject", "c1": "reject", "c2": "reject"})
    assert result["bad_photos"] == 4 and result["bad_photos_kept_out"] == 3  # p2 sits in accepted h1
    assert result["precision_accepted"] == 1.0 and result["cheats_caught"] == 2


def test_unknown_decisions_are_reported_and_bad_labels_refused() -> None:
    assert score(TRUTH, {"zz": "accept"})["unknown_ids"] == ["zz"]
    assert normalize_decision(" Rejected ") == "reject"
    with pytest.raises(ValueError, match="unknown decision"):
        normalize_decision("maybe")
