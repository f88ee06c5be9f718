"""``python pipeline.py sample N``: a spot-check page of a finished demo run, opened in headless Chromium."""

from __future__ import annotations

import html
import json
import re
from pathlib import Path

import pytest
from commands_run import editable_copy, finished_run, open_in_chromium, tsv

from tables.tsv import TsvTable
from tools.harness import run_pipeline

UNIT = re.compile(r'<section class="unit" data-unit="([^"]+)">')


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory)


def sample(config: Path, *args: str) -> tuple[int, str, str]:
    done = run_pipeline(config.parent, "sample", "--config", str(config), *args, timeout=60)
    return done.returncode, done.stdout, done.stderr


def links(cell: str) -> list[str]:
    """The links of a result cell (a JSON list of links; a list of storage keys has none)."""
    return [url for url in json.loads(cell) if "://" in url] if cell.startswith("[") else []


def test_the_page_has_n_accepted_organizations_with_their_photos_and_opens_without_errors(
    folder: Path, tmp_path: Path,
) -> None:
    page = tmp_path / "spot.html"
    code, out, err = sample(folder / "toloka.ini", "4", "--out", str(page), "--seed", "11")
    assert code == 0, err
    main = tsv(folder / "results" / "main_tasks.tsv")
    assert len(main) > 4
    assert out.strip() == f"wrote 4 of {len(main)} accepted to {page} (seed 11)"
    text = page.read_text()
    units = UNIT.findall(text)
    assert len(units) == len(set(units)) == 4 and set(units) <= set(main["pedestrian_assignment_id"])
    no_org = set(tsv(folder / "results" / "no_org.tsv")["pedestrian_assignment_id"])
    decisions = tsv(folder / "logs" / "decisions.tsv")
    rejected = set(decisions[decisions["event"] == "REJECT assignment"]["pedestrian_assignment_id"])
    assert not set(units) & (no_org | rejected)
    bonus = tsv(folder / "results" / "bonus_tasks.tsv")
    expected_images = 0
    for unit in units:
        row = main[main["pedestrian_assignment_id"] == unit].iloc[0]
        kept = [url for cell in row for url in links(cell)]
        kept += [url for cell in bonus[bonus["pedestrian_assignment_id"] == unit]["links"] for url in links(cell)]
        assert kept
        for url in kept:
            assert f'<img src="{url}"' in text
        expected_images += len(set(kept))
        assert f"<td>{html.escape(row['name'])}</td>" in text
    dom, console = open_in_chromium(tmp_path, page)
    assert f'data-images="{expected_images}"' in dom and 'data-broken="0"' in dom, dom[:500]
    assert console == ""
    # The same seed draws the same organizations; more than there are gives all of them.
    assert sample(folder / "toloka.ini", "4", "--out", str(tmp_path / "again.html"), "--seed", "11")[0] == 0
    assert UNIT.findall((tmp_path / "again.html").read_text()) == units
    code, out, _ = sample(folder / "toloka.ini", "50", "--out", str(tmp_path / "all.html"))
    assert code == 0 and f"wrote {len(main)} of {len(main)} accepted (only {len(main)} accepted)" in out
    assert sorted(UNIT.findall((tmp_path / "all.html").read_text())) == sorted(main["pedestrian_assignment_id"])


def test_workers_free_text_is_escaped(folder: Path, tmp_path: Path) -> None:
    config = editable_copy(folder, tmp_path, "results")
    results = tmp_path / "results"
    main = tsv(results / "main_tasks.tsv")
    row = main.iloc[0].to_dict()
    row.update(pedestrian_assignment_id="hostile-1", name="<script>document.title='owned'</script>",
               comment='<img src=x onerror="alert(1)"> & "quotes" \'too\'\n</td></tr></table>')
    TsvTable(results / "main_tasks.tsv", list(main.columns)).append([row])
    page = tmp_path / "hostile.html"
    code, _, err = sample(config, "50", "--out", str(page))
    assert code == 0, err
    text = page.read_text()
    assert "&lt;script&gt;document.title=&#x27;owned&#x27;&lt;/script&gt;" in text
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt; &amp; &quot;quotes&quot;" in text
    assert "<script>document" not in text and "<img src=x" not in text
    dom, console = open_in_chromium(tmp_path, page)
    assert len(UNIT.findall(dom)) == len(main) + 1
    assert "<title>Spot check: pedestrian pipeline</title>" in dom  # no script of theirs ran
    images = text.count("<img ")
    assert f'data-images="{images}"' in dom and 'data-broken="0"' in dom and console == ""


def test_bad_input_is_one_clear_line_and_writes_nothing(folder: Path, tmp_path: Path) -> None:
    page = tmp_path / "none.html"
    code, out, err = sample(folder / "toloka.ini", "0", "--out", str(page))
    assert (code, out, err.strip()) == (2, "", "pipeline: sample: N must be at least 1, found 0")
    code, out, err = sample(tmp_path / "missing.ini", "3", "--out", str(page))
    assert code == 2 and out == "" and err.strip().count("\n") == 0 and "missing.ini" in err
    assert not page.exists()
