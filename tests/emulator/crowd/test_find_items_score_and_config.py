"""Scoring a find_items run, and the toloka.ini written for it (the pedestrian one unchanged)."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import pytest

from emulator.crowd.config_out import render_ini, write_ini
from emulator.crowd.find_items_truth import normalize_verdict, score_find_items
from emulator.crowd.scenario import load_scenario_file

HERE = Path(__file__).resolve().parent
BASE = "http://127.0.0.1:8000/_emulator/catalogue"


def _img(n: int) -> str:
    return f"{BASE}/images/img-0{n}.jpg"


def _link(product: str, port: int = 8000) -> str:
    return f"http://127.0.0.1:{port}/_emulator/catalogue/products/{product}.jpg"


#: Two images with 4 candidates each (the first 2 match), one junk product.
TRUTH: dict[str, Any] = {
    "kind": "find_items",
    "catalogue": {
        "candidates_per_image": 4,
        "images": {"img-01": {"candidates": ["a0", "a1", "a2", "a3"], "matching": ["a0", "a1"]},
                   "img-02": {"candidates": ["b0", "b1", "b2", "b3"], "matching": ["b0", "b1"]}},
        "products": {p: {} for p in ("a0", "a1", "a2", "a3", "b0", "b1", "b2", "b3", "j0")},
        "junk": ["j0"],
    },
    "submissions": {
        "s1": {"image_id": "img-01", "worker_id": "w1", "product_id": "a0", "junk": False},
        "s2": {"image_id": "img-01", "worker_id": "w2", "product_id": "a2", "junk": False},
        "s3": {"image_id": "img-01", "worker_id": "w3", "product_id": "j0", "junk": True},
        "s4": {"image_id": "img-01", "worker_id": "w4", "product_id": "b0", "junk": True},
        "s5": {"image_id": "img-02", "worker_id": "w1", "product_id": "b1", "junk": False},
        "s6": {"image_id": "img-02", "worker_id": "w3", "product_id": "j0", "junk": True},
        "s7": {"image_id": "img-01", "worker_id": "w5", "product_id": "a1", "junk": False},
    },
}

VERIFIED: list[dict[str, Any]] = [
    {"image": _img(1), "link": _link("a0"), "worker": "w1", "verdict": "accepted", "confidence": "1.0"},
    {"image": _img(1), "link": _link("a2", port=9999), "worker": "w2", "verdict": "ACCEPTED", "confidence": 0.67},
    {"image": _img(1), "link": _link("j0"), "worker": "w3", "verdict": "rejected", "confidence": 1.0},
    {"image": _img(1), "link": _link("b0"), "worker": "w4", "verdict": "Yes", "confidence": 0.67},
    {"image": "img-02", "link": _link("b1"), "worker": "w1", "verdict": "accept", "confidence": 1.0},
    {"image": _img(1), "link": _link("a1"), "worker": "w5", "verdict": "No", "confidence": 1.0},
]


def test_score_counts_precision_junk_and_bad_links() -> None:
    result = score_find_items(TRUTH, VERIFIED, [])
    assert (result["verified"], result["links_accepted"], result["links_rejected"]) == (6, 4, 2)
    assert result["accepted_matching"] == 2 and result["precision_accepted"] == 0.5
    assert result["bad_links_accepted"] == 2 and result["good_links_rejected"] == 1  # a2 and b0 in; a1 out
    assert (result["junk_submissions"], result["junk_caught"], result["junk_undecided"]) == (3, 1, 1)
    assert result["junk_caught_rate"] == pytest.approx(1 / 3, abs=1e-4)
    assert result["spearman_mean"] is None and result["unknown_rows"] == []


def test_spearman_per_image_and_its_edge_cases() -> None:
    rankings = [
        # img-01 ranked a0 > a1 > junk: the true order -> 1.0
        {"image": _img(1), "link": _link("a0"), "score": 2.0, "rank": 1},
        {"image": _img(1), "link": _link("a1"), "score": 1.0, "rank": "2"},
        {"image": _img(1), "link": _link("j0"), "score": 0.1, "rank": 3.0},
        # img-02 ranked b2 > b1 > b0: reversed -> -1.0
        {"image": _img(2), "link": _link("b2"), "score": 0.9, "rank": 1},
        {"image": _img(2), "link": _link("b1"), "score": 0.5, "rank": 2},
        {"image": _img(2), "link": _link("b0"), "score": 0.1, "rank": 3},
    ]
    result = score_find_items(TRUTH, [], rankings)
    assert result["spearman_by_image"] == {"img-01": 1.0, "img-02": -1.0}
    assert result["spearman_mean"] == 0.0 and result["images_ranked"] == 2

    partly = [{"image": _img(1), "link": _link("a0"), "score": 1, "rank": 2},
              {"image": _img(1), "link": _link("a2"), "score": 2, "rank": 1},
              {"image": _img(1), "link": _link("a1"), "score": 0.5, "rank": 3}]
    assert score_find_items(TRUTH, [], partly)["spearman_mean"] == pytest.approx(-0.5)

    one_link = [{"image": _img(2), "link": _link("b0"), "score": 1, "rank": 1}]
    tied = [{"image": _img(1), "link": _link("j0"), "score": 1, "rank": 1},
            {"image": _img(1), "link": _link("b3"), "score": 0, "rank": 2}]   # both "unrelated": no order
    by_score = [{"image": _img(2), "link": _link("b1"), "score": 0.2, "rank": ""},
                {"image": _img(2), "link": _link("b0"), "score": 0.8, "rank": None}]
    result = score_find_items(TRUTH, [], tied + by_score)
    assert result["images_too_few_links"] == 0 and result["images_undefined"] == 1
    assert result["spearman_by_image"] == {"img-02": 1.0}   # the score orders links without a rank
    assert score_find_items(TRUTH, [], one_link)["images_too_few_links"] == 1


def test_rows_that_name_no_catalogue_image_are_reported() -> None:
    rows = [{"image": "http://elsewhere/cat.jpg", "link": _link("a0"), "worker": "w1", "verdict": "accepted"}]
    result = score_find_items(TRUTH, rows, [{"image": "img-77", "link": _link("a0"), "rank": 1}])
    assert result["verified"] == 0 and len(result["unknown_rows"]) == 2
    assert normalize_verdict(" Rejected ") == "reject" and normalize_verdict(True) == "accept"
    with pytest.raises(ValueError, match="unknown verdict"):
        score_find_items(TRUTH, [{"image": _img(1), "link": _link("a0"), "verdict": "maybe"}], [])


# ---------------------------------------------------------------- toloka.ini

PED_SETUP = {"pools": {"pedestrian": "100001", "visit": "100002", "quality": "100003", "relevance": "100004"},
             "skills": {"visit": "100011", "quality": "100012", "relevance": "100013"}, "project_ids": {}}
FIND_SETUP = {"pools": {"find_items": "100001", "verification": "100002", "sbs": "100003"},
              "skills": {"verification": "100001", "sbs": "100002"}, "project_ids": {}}

EXPECTED_FIND_ITEMS = {
    "Secrets": {"toloka_token": "toloka_token"},
    "Toloka": {"environment": "http://127.0.0.1:8765", "timeout_seconds": "30", "cursor_lag_seconds": "2"},
    "Pipeline": {"definition": "find_items", "period_seconds": "1", "stop_when_pools_closed": "false",
                 "log_level": "INFO", "results_folder": ".", "saves_folder": "saves", "logs_folder": "logs",
                 "concurrency": "8", "auto_accept_warning_hours": "12", "max_spend": ""},
    "Status": {"enabled": "false", "host": "127.0.0.1", "port": "8787", "token": "", "refresh_seconds": "5",
               "stuck_after_hours": "24"},
    "FileStore": {"backend": "local", "local_folder": "demo-files"},
    "FindItemsProject": {"pool_id": "100001", "event": "submitted", "image_field": "image",
                         "link_field": "found_link", "links_per_image": "4", "accept_comment": "Well done!",
                         "reject_comment": "Incorrect object."},
    "FindItemsVerification": {"pool_id": "100002", "skill_id": "100001", "event": "accepted", "overlap": "3",
                              "answer_field": "result", "accept_label": "Yes", "reject_label": "No",
                              "aggregation": "MajorityVote", "default_skill": "50"},
    "FindItemsComparison": {"pool_id": "100003", "skill_id": "100002", "event": "accepted", "overlap": "3",
                            "answer_field": "result", "left_label": "left", "right_label": "right",
                            "aggregation": "BradleyTerry"},
}


def test_find_items_ini_has_exactly_the_agreed_sections_and_keys(tmp_path: Path) -> None:
    out = tmp_path / "toloka.ini"
    write_ini(out, url="http://127.0.0.1:8765", setup_result=FIND_SETUP, scenario=load_scenario_file("find_items"),
              period_seconds=1, cursor_lag_seconds=2, local_folder="demo-files")
    cfg = configparser.ConfigParser()
    assert cfg.read(out, encoding="utf-8") == [str(out)]
    assert {s: dict(cfg[s]) for s in cfg.sections()} == EXPECTED_FIND_ITEMS
    assert cfg.sections() == list(EXPECTED_FIND_ITEMS)
    assert list(tmp_path.iterdir()) == [out]


def test_the_pedestrian_ini_is_byte_for_byte_what_it_was() -> None:
    """The pedestrian file as committed (a change to the generated ini shows up in review as a fixture diff)."""
    text = render_ini(url="http://127.0.0.1:8765", setup_result=PED_SETUP, scenario=load_scenario_file("demo"))
    assert text == (HERE / "data" / "pedestrian_demo.ini").read_text(encoding="utf-8")
    assert "\n[Pipeline]\ndefinition = pedestrian\n" in text
