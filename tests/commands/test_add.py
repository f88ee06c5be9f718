"""``python pipeline.py add FILE`` against the emulator over HTTP: each good row becomes one task, once.

Every run is the real command in a child process with a private keyring; the
pool's tasks are read back through the emulator's task search. The emulator's
crowd is paused, so nothing but ``add`` touches the pedestrian pool.
"""

from __future__ import annotations

import random
import shutil
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from aggregation.geo import parse_point
from engine.intake import IntakeError, IntakeRecord, check_rows, read_sheet
from engine.lock import DaemonLock
from handlers.intake import coordinates_problem
from pipelines import get, load_settings
from tools.harness import (
    REPO,
    admin,
    admin_send,
    edit_ini,
    pipeline_process,
    run_pipeline,
    served_emulator,
)

HEADER = "name\taddress\tcoordinates\tphone"


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, str]]:
    """An emulator with the demo scenario, its crowd paused, and a toloka.ini with the token stored."""
    folder = tmp_path_factory.mktemp("served")
    with served_emulator(folder, seed=3, speed=1, crowd=False) as url:
        yield folder, url


def own_config(served: tuple[Path, str], tmp_path: Path) -> Path:
    """The served toloka.ini with this test's own saves folder (so each test starts with no record)."""
    folder, _ = served
    config = tmp_path / "toloka.ini"
    shutil.copy(folder / "toloka.ini", config)
    edit_ini(config, "Pipeline", saves_folder=str(tmp_path / "saves"))
    return config


def add(served: tuple[Path, str], config: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return run_pipeline(served[0], "add", "--config", str(config), *args, timeout=timeout)


def pool_tasks(url: str, config: Path) -> list[dict[str, Any]]:
    pool_id = load_settings(config).config.pedestrian.pool_id
    return list(admin(url, f"/api/v1/tasks?pool_id={pool_id}&limit=100000")["items"])


def mine(tasks: list[dict[str, Any]], tag: str) -> Counter[str]:
    """How many tasks each of this test's organizations has (names start with ``tag``)."""
    return Counter(t["input_values"]["name"] for t in tasks if str(t["input_values"].get("name", "")).startswith(tag))


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_good_rows_become_tasks_with_the_input_the_daemon_reads(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [
        HEADER,
        "Good Cafe A\t1 Main St\t55.7558,37.6173\t+7 495 000",
        "Good Cafe B\t2 Main St\t 55.76 ; 37.62 \t",
        "Good Cafe C\t3 Main St\t55.77,37.63",  # the trailing (optional) cell left out
    ])
    result = add(served, config, str(orgs))
    assert result.returncode == 0, result.stderr
    assert "added 3, already sent 0, refused 0" in result.stdout
    found = {t["input_values"]["name"]: t for t in pool_tasks(served[1], config)
             if t["input_values"]["name"].startswith("Good Cafe")}
    assert {n: t["input_values"] for n, t in found.items()} == {
        "Good Cafe A": {"name": "Good Cafe A", "address": "1 Main St", "coordinates": "55.7558,37.6173",
                        "phone": "+7 495 000"},
        "Good Cafe B": {"name": "Good Cafe B", "address": "2 Main St", "coordinates": "55.76,37.62"},
        "Good Cafe C": {"name": "Good Cafe C", "address": "3 Main St", "coordinates": "55.77,37.63"},
    }
    assert all(t["overlap"] == 1 and parse_point(t["input_values"]["coordinates"]) for t in found.values())

    again = add(served, config, str(orgs))
    assert again.returncode == 0, again.stderr
    assert "added 0, already sent 3, refused 0" in again.stdout
    assert mine(pool_tasks(served[1], config), "Good Cafe") == dict.fromkeys(found, 1)


def malformed_file(path: Path, tag: str, rows: int, seed: int) -> tuple[Path, set[str], dict[int, str]]:
    """``rows`` organizations, some malformed: (file, good names, line -> what its refusal must say)."""
    rng = random.Random(seed)
    lines = [HEADER]
    good: set[str] = set()
    bad: dict[int, str] = {}
    for i in range(rows):
        line = len(lines) + 1
        name = f"{tag} {i:05d}"
        point = f"{55 + rng.random():.5f},{37 + rng.random():.5f}"
        kind = rng.random()
        if kind < 0.01:
            lines.append(f"\t{i} Side St\t{point}\t")
            bad[line] = "missing name"
        elif kind < 0.02:
            lines.append(f"{name}\t{i} Side St\tnot a place\t")
            bad[line] = "coordinates 'not a place'"
        elif kind < 0.03:
            lines.append(f"{name}\t{i} Side St\t123.4,37\t")
            bad[line] = "latitude 123.4 is outside -90..90"
        elif kind < 0.04 and good:
            first = sorted(good)[0]
            lines.append(f"{first.upper()}\t{first.split()[-1].lstrip('0') or '0'} Side St\t{point}\t")
            bad[line] = "duplicate of line"
        elif kind < 0.045:
            lines.append(f"{name}\t{i} Side St")
            bad[line] = "2 cells, the header has 4"
        else:
            lines.append(f"{name}\t{i} Side St\t{point}\t")
            good.add(name)
    return write(path, lines), good, bad


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_ten_thousand_rows_with_malformed_ones_create_exactly_the_good_rows_once(
        served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs, good, bad = malformed_file(tmp_path / "organizations.tsv", "Bulk", 10_000, seed=12)
    assert 300 < len(bad) < 600  # every kind of problem is there
    result = add(served, config, str(orgs))
    assert result.returncode == 1, result.stderr[-2000:]
    refused = [line for line in result.stderr.splitlines() if line.startswith(f"{orgs}:")]
    assert len(refused) == len(bad)
    for line in refused:
        number = int(line.split(":")[1])
        assert bad[number] in line, line
    assert f"added {len(good)}, already sent 0, refused {len(bad)}" in result.stdout
    assert mine(pool_tasks(served[1], config), "Bulk") == dict.fromkeys(good, 1)

    again = add(served, config, str(orgs))
    assert again.returncode == 1
    assert f"added 0, already sent {len(good)}, refused {len(bad)}" in again.stdout
    assert mine(pool_tasks(served[1], config), "Bulk") == dict.fromkeys(good, 1)


def run_until_killed(config: Path, orgs: Path, folder: Path, out: Path, *, after_batches: int,
                     rng: random.Random) -> None:
    """Start ``add``, let ``after_batches`` batches finish, then SIGKILL it at a random instant of the next."""
    proc = pipeline_process(folder, "add", "--config", str(config), "--batch-size", "200", str(orgs), out=out)
    deadline = time.monotonic() + 120
    while out.read_text().count("tasks created") < after_batches:
        assert proc.poll() is None, out.read_text()
        assert time.monotonic() < deadline
        time.sleep(0.02)
    time.sleep(rng.uniform(0.0, 1.2))  # inside the next batch: recorded, sent, or waiting on its operation
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)


@pytest.mark.slow
@pytest.mark.timeout(400)
def test_kill_9_mid_run_then_rerun_creates_each_good_row_exactly_once(
        served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs, good, bad = malformed_file(tmp_path / "orgs.tsv", "Killed", 2000, seed=7)
    url = served[1]
    rng = random.Random(20261130)
    # Each create operation shows RUNNING for a second: the kills land while Toloka works on a batch.
    admin_send(url, "PUT", "/_emulator/operations", {"running_seconds": 1})
    try:
        outputs = []
        for kill in range(3):
            out = tmp_path / f"kill{kill}.out"
            run_until_killed(config, orgs, served[0], out, after_batches=1, rng=rng)
            outputs.append(out.read_text())
            counts = mine(pool_tasks(url, config), "Killed")
            assert max(counts.values(), default=1) == 1, "a task was created twice"
        final = add(served, config, "--batch-size", "200", str(orgs))
    finally:
        admin_send(url, "PUT", "/_emulator/operations", {})
    assert final.returncode == 1, final.stderr[-2000:]
    assert f"refused {len(bad)}" in final.stdout
    assert mine(pool_tasks(url, config), "Killed") == dict.fromkeys(good, 1)
    record = IntakeRecord.open(tmp_path / "saves", load_settings(config).config.pedestrian.pool_id)
    assert record.open_batches == {} and len(record.sent) == len(good)
    # The runs after a kill found the interrupted batch and finished it, or closed it when its tasks were
    # in the pool already (the window was really hit).
    assert any(f"{done} an interrupted batch" in text for text in (*outputs[1:], final.stdout)
               for done in ("finished", "closed"))


def test_a_batch_recorded_but_never_sent_is_sent_by_the_next_run(served: tuple[Path, str], tmp_path: Path) -> None:
    """The crash window between the durable record and the POST: the next run sends that batch, once."""
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [HEADER] + [f"Window {i}\t{i} Dock Rd\t60.{i:03d},30.1\t" for i in range(5)])
    settings = load_settings(config)
    intake = get("pedestrian").intake
    assert intake is not None
    spec = intake(settings.config)
    checked = check_rows(read_sheet(orgs), spec)
    pool_id = settings.config.pedestrian.pool_id
    record = IntakeRecord.open(tmp_path / "saves", pool_id)
    record.begin([g.key for g in checked.good[:3]],
                 [{"pool_id": pool_id, "input_values": dict(g.input_values), "overlap": 1, "infinite_overlap": False}
                  for g in checked.good[:3]])
    result = add(served, config, str(orgs))
    assert result.returncode == 0, result.stderr
    assert "finished an interrupted batch of 3 rows from an earlier run (3 tasks, 0 refused by Toloka)" in result.stdout
    assert "added 2, already sent 3, refused 0" in result.stdout
    assert mine(pool_tasks(served[1], config), "Window") == {f"Window {i}": 1 for i in range(5)}


def test_a_lost_saves_folder_sends_nothing_twice(served: tuple[Path, str], tmp_path: Path) -> None:
    """The pool's own tasks count as sent: a rerun with ``saves/`` deleted adds nothing."""
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Lost A\t1 Pier\t59.9,30.3\t", "Lost B\t2 Pier\t59.91,30.31\t"])
    assert add(served, config, str(orgs)).returncode == 0
    shutil.rmtree(tmp_path / "saves")
    again = add(served, config, str(orgs))
    assert again.returncode == 0 and "added 0, already sent 2, refused 0" in again.stdout
    assert mine(pool_tasks(served[1], config), "Lost") == {"Lost A": 1, "Lost B": 1}


def test_a_csv_works_too(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs = tmp_path / "orgs.csv"
    orgs.write_text('\ufeffname,address,coordinates,website\n'
                    '"Csv Bakery, the ""best""","10 Baker St, London","51.52,-0.158",https://example.org\n'
                    'Csv Deli,11 Baker St,"51.521,-0.1581",\n'
                    'Csv Bad,,"51.5,-0.15",\n', encoding="utf-8")
    result = add(served, config, str(orgs))
    assert result.returncode == 1
    assert f"{orgs}:4: missing address" in result.stderr
    assert "added 2, already sent 0, refused 1" in result.stdout
    inputs = {t["input_values"]["name"]: t["input_values"] for t in pool_tasks(served[1], config)
              if t["input_values"]["name"].startswith("Csv")}
    assert inputs == {
        'Csv Bakery, the "best"': {"name": 'Csv Bakery, the "best"', "address": "10 Baker St, London",
                                   "coordinates": "51.52,-0.158", "website": "https://example.org"},
        "Csv Deli": {"name": "Csv Deli", "address": "11 Baker St", "coordinates": "51.521,-0.1581"},
    }


def test_a_file_that_cannot_be_used_is_refused_whole_and_nothing_is_sent(
        served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    before = len(pool_tasks(served[1], config))
    no_column = write(tmp_path / "no_coords.tsv", ["name\taddress", "Whole A\t1 Road"])
    result = add(served, config, str(no_column))
    assert result.returncode == 2
    assert f"{no_column}:1: missing column 'coordinates'" in result.stderr and "Traceback" not in result.stderr
    latin1 = tmp_path / "latin1.tsv"
    latin1.write_bytes((HEADER + "\nCaf\xe9 Whole\t1 Road\t50,10\t\n").encode("latin-1"))
    result = add(served, config, str(latin1))
    assert result.returncode == 2 and f"{latin1}:2: not UTF-8 text" in result.stderr
    result = add(served, config, str(tmp_path / "absent.tsv"))
    assert result.returncode == 2 and "absent.tsv: cannot read" in result.stderr
    assert len(pool_tasks(served[1], config)) == before


def test_it_runs_beside_the_daemon_but_not_beside_another_add(served: tuple[Path, str], tmp_path: Path) -> None:
    from engine.intake import IntakeLock

    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Beside A\t1 Quay\t48.85,2.35\t"])
    saves = tmp_path / "saves"
    with DaemonLock(saves):  # a daemon runs on this saves folder
        result = add(served, config, str(orgs))
        assert result.returncode == 0 and "added 1" in result.stdout, result.stderr
        with IntakeLock(saves):
            second = add(served, config, str(orgs))
    assert second.returncode == 2 and "another `pipeline.py add` is running" in second.stderr
    assert mine(pool_tasks(served[1], config), "Beside") == {"Beside A": 1}


def test_dry_run_counts_and_sends_nothing(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Dry A\t1 Way\t40.7,-74\t", "Dry B\t2 Way\t40.71,-74\t"])
    result = add(served, config, "--dry-run", str(orgs))
    assert result.returncode == 0 and "would add 2, already sent 0, refused 0" in result.stdout
    assert mine(pool_tasks(served[1], config), "Dry") == {}


@pytest.mark.parametrize(("text", "problem"), [
    ("55.75,37.61", None),
    ("55.75;37.61", None),
    ("-33.9, 151.2", None),
    ("55.75", 'expected "lat,lon" (two numbers'),
    ("north,east", 'expected "lat,lon" in degrees'),
    ("90.01,0", "latitude 90.01 is outside -90..90"),
    ("10,-180.5", "longitude -180.5 is outside -180..180"),
    ("nan,10", "latitude nan is outside"),
    ("10,inf", "longitude inf is outside"),
    ("0,0", "0,0 is a placeholder"),
])
def test_coordinates_are_checked_as_the_daemon_reads_them(text: str, problem: str | None) -> None:
    found = coordinates_problem(text)
    assert (found is None) if problem is None else (found is not None and problem in found), found
    assert (parse_point(text) is not None) or problem is not None


def test_the_header_check_names_every_missing_column(tmp_path: Path) -> None:
    spec_of = get("pedestrian").intake
    assert spec_of is not None
    settings = load_settings(REPO / "toloka.example.ini")
    sheet = read_sheet(write(tmp_path / "x.tsv", ["name\tphone", "A\t1"]))
    with pytest.raises(IntakeError) as err:
        check_rows(sheet, spec_of(settings.config))
    assert [line.split(" (")[0] for line in err.value.lines] == [
        f"{tmp_path / 'x.tsv'}:1: missing column 'address'", f"{tmp_path / 'x.tsv'}:1: missing column 'coordinates'"]


def test_open_pool_opens_a_closed_pedestrian_pool(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    url = served[1]
    pool_id = load_settings(config).config.pedestrian.pool_id
    admin_send(url, "POST", f"/api/v1/pools/{pool_id}/close", {})
    assert admin(url, f"/api/v1/pools/{pool_id}")["status"] == "CLOSED"
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Opened A\t1 Gate\t41.9,12.5\t"])
    result = add(served, config, "--open-pool", str(orgs))
    assert result.returncode == 0, result.stderr
    assert admin(url, f"/api/v1/pools/{pool_id}")["status"] == "OPEN"
    assert mine(pool_tasks(url, config), "Opened") == {"Opened A": 1}


def test_rows_toloka_refuses_are_reported_by_line_and_stay_unsent(served: tuple[Path, str], tmp_path: Path) -> None:
    """A configuration whose org fields lack one the project requires: Toloka refuses each task, by line."""
    config = own_config(served, tmp_path)
    edit_ini(config, "PedestrianProject", org_fields="name, address")  # the project also requires coordinates
    orgs = write(tmp_path / "orgs.tsv", ["name\taddress", "Spec A\t1 Lane", "Spec B\t2 Lane"])
    for _ in range(2):  # refused items are not recorded as sent: the second run tries them again
        result = add(served, config, str(orgs))
        assert result.returncode == 1, result.stderr
        assert f"{orgs}:2: Toloka refused the task: input_values.coordinates" in result.stderr
        assert f"{orgs}:3: Toloka refused the task: input_values.coordinates" in result.stderr
        assert "added 0, already sent 0, refused 2" in result.stdout
    assert mine(pool_tasks(served[1], config), "Spec") == {}


def test_an_empty_csv_of_separators_is_refused_in_one_line(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    blank = tmp_path / "blank.csv"
    blank.write_text(",,,\n,,,\n", encoding="utf-8")
    result = add(served, config, str(blank))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [f"{blank}: empty file: expected a header line naming the columns",
                                          f"{blank}: nothing was sent"]


def test_dry_run_creates_no_saves_folder_no_lock_and_no_record(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Dryer A\t1 Way\t40.7,-74\t"])
    result = add(served, config, "--dry-run", str(orgs))
    assert result.returncode == 0 and "would add 1, already sent 0, refused 0" in result.stdout, result.stderr
    assert not (tmp_path / "saves").exists()
    assert mine(pool_tasks(served[1], config), "Dryer") == {}


def test_a_lost_saves_folder_over_the_daemons_rows_is_refused_and_not_created(
        served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    edit_ini(config, "Pipeline", results_folder=str(tmp_path / "results"), logs_folder=str(tmp_path / "logs"))
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Fresh A\t1 New Rd\t45.1,9.1\t"])
    # A brand-new project: no saves/, no rows: add makes saves/ as it always did.
    first = add(served, config, str(orgs))
    assert first.returncode == 0 and "added 1" in first.stdout, first.stderr
    shutil.rmtree(tmp_path / "saves")
    (tmp_path / "results").mkdir()
    (tmp_path / "results" / "main_tasks.tsv").write_text("a\tb\nx\ty\n", encoding="utf-8")
    again = add(served, config, str(orgs))
    assert again.returncode == 2, again.stdout
    assert f"no checkpoint in {tmp_path / 'saves'}, but earlier runs left rows:" in again.stderr
    assert f"{tmp_path / 'results' / 'main_tasks.tsv'}: 1 row" in again.stderr
    assert "`add` creates no saves/ over earlier rows" in again.stderr and "Traceback" not in again.stderr
    assert not (tmp_path / "saves").exists()
    assert mine(pool_tasks(served[1], config), "Fresh") == {"Fresh A": 1}


def test_batches_stay_under_tolokas_request_size_limit(served: tuple[Path, str], tmp_path: Path) -> None:
    """1000 rows of 2 KB each pass Toloka's 1 MiB per request: the batches are cut by bytes too."""
    config = own_config(served, tmp_path)
    site = "https://example.org/" + "p" * 2000
    orgs = write(tmp_path / "orgs.tsv", ["name\taddress\tcoordinates\twebsite"]
                 + [f"Heavy {i:04d}\t{i} Long Rd\t50.{i:04d},10.5\t{site}" for i in range(1000)])
    result = add(served, config, str(orgs))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "added 1000, already sent 0, refused 0" in result.stdout
    assert "batch 3 of 3" in result.stderr  # about 440 rows fit 900 KB
    assert len(mine(pool_tasks(served[1], config), "Heavy")) == 1000


def huge_row(name: str) -> str:
    """A row whose website alone passes Toloka's 1 MiB of input_values per request."""
    return f"{name}\t9 Big Rd\t52.5,13.4\thttps://example.org/{'q' * 1_100_000}"


def test_a_request_toloka_refuses_whole_closes_its_batch_and_reports_its_rows(
        served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", ["name\taddress\tcoordinates\twebsite",
                                         "Whole A\t1 Small Rd\t52.5,13.41\t", huge_row("Whole Huge")])
    pool_id = load_settings(config).config.pedestrian.pool_id
    for run in range(2):  # the refused row is not recorded as sent: the next run tries it again, as a new row
        result = add(served, config, str(orgs))
        assert result.returncode == 1, result.stderr[-2000:]
        assert f"{orgs}:3: Toloka refused the whole request: Toloka POST /tasks: HTTP 413" in result.stderr
        assert f"added {1 - run}, already sent {run}, refused 1" in result.stdout
        assert "interrupted" not in result.stdout
        record = IntakeRecord.open(tmp_path / "saves", pool_id)
        assert record.open_batches == {} and len(record.sent) == 1
    assert mine(pool_tasks(served[1], config), "Whole") == {"Whole A": 1}


def begin_interrupted_batch(config: Path, orgs: Path, saves: Path) -> str:
    """Record the good rows of ``orgs`` as a batch begun and never finished (a run killed mid-send); the pool id."""
    settings = load_settings(config)
    intake = get("pedestrian").intake
    assert intake is not None
    checked = check_rows(read_sheet(orgs), intake(settings.config))
    pool_id = settings.config.pedestrian.pool_id
    IntakeRecord.open(saves, pool_id).begin(
        [g.key for g in checked.good],
        [{"pool_id": pool_id, "input_values": dict(g.input_values), "overlap": 1, "infinite_overlap": False}
         for g in checked.good])
    return pool_id


def test_an_open_batch_toloka_refuses_whole_is_closed_not_resent_forever(
        served: tuple[Path, str], tmp_path: Path) -> None:
    """An earlier run's batch that Toloka refuses for good is closed once, its rows reported by line."""
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", ["name\taddress\tcoordinates\twebsite", "Stuck A\t1 Jam Rd\t52.6,13.4\t",
                                         huge_row("Stuck Huge")])
    pool_id = begin_interrupted_batch(config, orgs, tmp_path / "saves")
    result = add(served, config, str(orgs))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "an interrupted batch of 2 rows from an earlier run was refused whole by Toloka" in result.stdout
    assert f"{orgs}:2: Toloka refused the whole request" in result.stderr
    assert f"{orgs}:3: Toloka refused the whole request" in result.stderr
    assert "added 0, already sent 0, refused 2" in result.stdout
    assert IntakeRecord.open(tmp_path / "saves", pool_id).open_batches == {}
    # The next run no longer resends that batch: the good row goes alone now, the huge one is refused alone.
    again = add(served, config, str(orgs))
    assert "interrupted" not in again.stdout
    assert "added 1, already sent 0, refused 1" in again.stdout, again.stderr[-2000:]
    assert mine(pool_tasks(served[1], config), "Stuck") == {"Stuck A": 1}


def test_an_open_batch_already_in_the_pool_is_closed_without_resending(
        served: tuple[Path, str], tmp_path: Path) -> None:
    """Toloka forgets operations after a month: an open batch whose tasks exist is not sent again."""
    config = own_config(served, tmp_path)
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Month A\t1 Old Rd\t61.1,30.1\t", "Month B\t2 Old Rd\t61.2,30.1\t"])
    assert add(served, config, str(orgs)).returncode == 0
    # The same rows begun again under a new operation_id Toloka never saw (as if it had forgotten the old one).
    pool_id = begin_interrupted_batch(config, orgs, tmp_path / "saves")
    result = add(served, config, str(orgs))
    assert result.returncode == 0, result.stderr
    assert ("closed an interrupted batch of 2 rows from an earlier run: its tasks are already in the pool "
            "(not sent again)") in result.stdout
    assert "added 0, already sent 2, refused 0" in result.stdout
    assert mine(pool_tasks(served[1], config), "Month") == {"Month A": 1, "Month B": 1}
    assert IntakeRecord.open(tmp_path / "saves", pool_id).open_batches == {}


def test_open_pool_opens_the_pool_even_when_no_row_is_new(served: tuple[Path, str], tmp_path: Path) -> None:
    config = own_config(served, tmp_path)
    url = served[1]
    pool_id = load_settings(config).config.pedestrian.pool_id
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "Reopen A\t1 Gate\t41.8,12.5\t"])
    assert add(served, config, str(orgs)).returncode == 0
    admin_send(url, "POST", f"/api/v1/pools/{pool_id}/close", {})
    result = add(served, config, "--open-pool", str(orgs))
    assert result.returncode == 0 and "added 0, already sent 1" in result.stdout, result.stderr
    assert admin(url, f"/api/v1/pools/{pool_id}")["status"] == "OPEN"


def test_open_pool_says_why_toloka_refuses_to_open_it(served: tuple[Path, str], tmp_path: Path) -> None:
    """An archived pool cannot be opened: the 409's code and message are printed, exit 1."""
    config = own_config(served, tmp_path)
    url = served[1]
    pedestrian = admin(url, f"/api/v1/pools/{load_settings(config).config.pedestrian.pool_id}")
    copy = {k: v for k, v in pedestrian.items()
            if k not in ("id", "status", "created", "last_started", "last_stopped", "last_close_reason")}
    archived = admin_send(url, "POST", "/api/v1/pools", copy)
    admin_send(url, "POST", f"/api/v1/pools/{archived['id']}/archive", {})
    assert admin(url, f"/api/v1/pools/{archived['id']}")["status"] == "ARCHIVED"
    edit_ini(config, "PedestrianProject", pool_id=archived["id"])
    orgs = write(tmp_path / "orgs.tsv", [HEADER, "\t1 Gate\t41.8,12.5\t"])  # no row is sent
    result = add(served, config, "--open-pool", str(orgs))
    assert result.returncode == 1, result.stderr
    assert (f"{orgs}: --open-pool: pool {archived['id']} is ARCHIVED and Toloka refused to open it: "
            f"POOL_INAPPROPRIATE_STATUS: An archived pool cannot be opened") in result.stderr
