"""``pipeline.py relink``: fresh links from the storage keys the results keep, rows intact.

The result tables come from a short real run (the demo scenario against the
emulator, the daemon as a child process, the real local store); the S3 case
puts the same kind of table beside real objects in moto's S3 server.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlparse

import boto3
import pytest

from engine.lock import DaemonLock
from file_store.testing import MotoServer, start_moto
from handlers.relevance import main_columns
from pipelines import load_settings
from tables.tsv import TsvTable
from tools.harness import (
    edit_ini,
    pedestrian_finished,
    run_pipeline,
    served_emulator,
    set_password,
    start_pipeline,
    stop,
)

ORGANIZATIONS = 12  # the demo scenario
TABLES = ("main_tasks.tsv", "bonus_tasks.tsv")


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle, delimiter="\t"))


def link_pairs(row: dict[str, str]) -> list[tuple[str, str]]:
    return [(column, column + "_keys") for column in row if column + "_keys" in row]


def read_link(url: str) -> bytes:
    if url.startswith("file://"):
        return Path(unquote(urlparse(url).path)).read_bytes()
    with urllib.request.urlopen(url, timeout=10) as answer:
        return bytes(answer.read())


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with the results of a finished demo run (the emulator is gone: relink needs only the store)."""
    folder = tmp_path_factory.mktemp("relink")
    with served_emulator(folder, seed=5, speed=240) as url:
        settings = load_settings(folder / "toloka.ini")
        daemon = start_pipeline(folder)
        deadline = time.monotonic() + 150
        while not pedestrian_finished(url, dict(settings.pools())["pedestrian"], ORGANIZATIONS):
            assert daemon.poll() is None and time.monotonic() < deadline, (folder / "pipeline.out").read_text()[-2000:]
            time.sleep(0.5)
        time.sleep(2)
        assert stop(daemon) == 0
    return folder


@pytest.fixture
def run(finished: Path, tmp_path: Path) -> Path:
    """A private copy of the finished run (each test changes its files)."""
    folder = tmp_path / "run"
    shutil.copytree(finished, folder, ignore=shutil.ignore_patterns("emulator.sqlite*"))
    edit_ini(folder / "toloka.ini", "Pipeline", results_folder=str(folder / "results"),
             saves_folder=str(folder / "saves"), logs_folder=str(folder / "logs"))
    edit_ini(folder / "toloka.ini", "FileStore", local_folder=str(folder / "photos"))
    return folder


def relink(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return run_pipeline(folder, "relink", "--config", str(folder / "toloka.ini"), *args)


def test_new_rows_keep_the_storage_key_of_every_linked_photo(run: Path) -> None:
    main = rows(run / "results" / "main_tasks.tsv")
    assert main
    for row in main + rows(run / "results" / "bonus_tasks.tsv"):
        for link_column, keys_column in link_pairs(row):
            links, keys = json.loads(row[link_column]), json.loads(row[keys_column])
            assert len(links) == len(keys)
            for link, key in zip(links, keys, strict=True):
                assert unquote(urlparse(link).path).endswith("/photos/" + key)


def test_relink_renews_every_link_to_the_same_bytes_and_keeps_every_row(run: Path) -> None:
    """The photo folder moves (another disk, another server): the old links die, relink makes new ones."""
    before = {name: rows(run / "results" / name) for name in TABLES}
    photos = {link: read_link(link) for name in TABLES for row in before[name]
              for column, _ in link_pairs(row) for link in json.loads(row[column])}
    assert photos
    (run / "photos").rename(run / "photos-moved")
    edit_ini(run / "toloka.ini", "FileStore", local_folder=str(run / "photos-moved"))
    mode = (run / "results" / "main_tasks.tsv").stat().st_mode

    result = relink(run)
    assert result.returncode == 0, result.stderr
    assert "link cells renewed" in result.stdout
    after = {name: rows(run / "results" / name) for name in TABLES}
    assert (run / "results" / "main_tasks.tsv").stat().st_mode == mode
    for name in TABLES:
        assert len(after[name]) == len(before[name])
        for old, new in zip(before[name], after[name], strict=True):
            links = {column for column, _ in link_pairs(old)}
            assert {k: v for k, v in old.items() if k not in links} == {k: v for k, v in new.items() if k not in links}
            for column in links:
                for old_link, new_link in zip(json.loads(old[column]), json.loads(new[column]), strict=True):
                    assert "photos-moved" in new_link and read_link(new_link) == photos[old_link]
    assert not list((run / "results").glob("*.relink"))


def test_rewritten_tables_keep_their_owner_group_and_mode(run: Path) -> None:
    """Run with sudo beside the service user, relink leaves the tables the service user's (its appends go on)."""
    if os.geteuid() == 0:
        uid, gid = 4242, 4343
    else:
        others = [g for g in os.getgroups() if g != os.getegid()]
        if not others:
            pytest.skip("not root and in no second group: no other owner or group to give a file")
        uid, gid = os.geteuid(), others[0]
    for name in TABLES:
        os.chown(run / "results" / name, uid, gid)
        os.chmod(run / "results" / name, 0o640)
    result = relink(run)
    assert result.returncode == 0, result.stderr
    for name in TABLES:
        after = (run / "results" / name).stat()
        assert (after.st_uid, after.st_gid, after.st_mode & 0o7777) == (uid, gid, 0o640), name


def test_rows_without_keys_are_reported_and_left_as_they_are(run: Path) -> None:
    """A table written before keys were kept: its key columns are added empty, its links stay."""
    settings = load_settings(run / "toloka.ini")
    columns = main_columns(settings.config.pedestrian)
    older = tuple(c for c in columns if not c.endswith("_keys"))
    path = run / "results" / "main_tasks.tsv"
    original = rows(path)
    path.unlink()
    TsvTable(path, older).append([{c: row[c] for c in older} for row in original])

    result = relink(run)
    assert result.returncode == 1
    assert f"{len(original)} rows have links but no storage keys" in result.stdout
    after = rows(path)
    assert list(after[0]) == list(columns)
    for old, new in zip(original, after, strict=True):
        assert {c: new[c] for c in older} == {c: old[c] for c in older}
        assert all(new[c] == "" for c in columns if c.endswith("_keys"))


def test_it_refuses_while_the_daemon_holds_the_lock(run: Path) -> None:
    before = (run / "results" / "main_tasks.tsv").read_bytes()
    with DaemonLock(run / "saves"):
        result = relink(run)
    assert result.returncode == 2 and "is running" in result.stderr and len(result.stderr.splitlines()) == 1
    assert (run / "results" / "main_tasks.tsv").read_bytes() == before


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    server = start_moto()
    yield server
    server.stop()


def test_s3_links_are_presigned_again_for_the_days_asked(run: Path, moto: MotoServer) -> None:
    """Photos in a real S3 API (moto): fresh presigned links valid --days days that fetch the same bytes."""
    s3 = boto3.client("s3", endpoint_url=moto.endpoint, region_name="us-east-1",
                      aws_access_key_id="test-key-id", aws_secret_access_key="test-secret")
    s3.create_bucket(Bucket="relink-photos")
    stored: dict[str, bytes] = {}
    for row in (r for name in TABLES for r in rows(run / "results" / name)):
        for _column, keys_column in link_pairs(row):
            for key in json.loads(row[keys_column]):
                stored[key] = (run / "photos" / key).read_bytes()
                s3.put_object(Bucket="relink-photos", Key=key, Body=stored[key], ContentType="image/jpeg")
    edit_ini(run / "toloka.ini", "FileStore", backend="s3")
    edit_ini(run / "toloka.ini", "S3", url=moto.endpoint, bucket_name="relink-photos", region="us-east-1")
    for entry, value in (("s3_key_id", "test-key-id"), ("s3_access_key", "test-secret")):
        set_password(run, entry, value)

    too_long = relink(run, "--days", "8")
    assert too_long.returncode == 2 and "at most 7 days" in too_long.stderr

    result = relink(run, "--days", "2")
    assert result.returncode == 0, result.stderr
    renewed = 0
    for row in (r for name in TABLES for r in rows(run / "results" / name)):
        for column, keys_column in link_pairs(row):
            for link, key in zip(json.loads(row[column]), json.loads(row[keys_column]), strict=True):
                assert parse_qs(urlparse(link).query)["X-Amz-Expires"] == [str(2 * 86400)]
                assert read_link(link) == stored[key]
                renewed += 1
    assert renewed == len(stored) > 0


def test_a_store_that_refuses_stops_it_before_any_table_changes(run: Path, moto: MotoServer) -> None:
    """A wrong bucket is one clear line and exit 2, not every photo "missing" and every table rewritten.

    main_tasks.tsv is an older table without key columns, which relink would otherwise upgrade first.
    """
    settings = load_settings(run / "toloka.ini")
    older = tuple(c for c in main_columns(settings.config.pedestrian) if not c.endswith("_keys"))
    path = run / "results" / "main_tasks.tsv"
    original = rows(path)
    path.unlink()
    TsvTable(path, older).append([{c: row[c] for c in older} for row in original])
    before = {name: (run / "results" / name).read_bytes() for name in TABLES}
    edit_ini(run / "toloka.ini", "FileStore", backend="s3")
    edit_ini(run / "toloka.ini", "S3", url=moto.endpoint, bucket_name="no-such-relink-bucket", region="us-east-1")
    for entry, value in (("s3_key_id", "test-key-id"), ("s3_access_key", "test-secret")):
        set_password(run, entry, value)

    result = relink(run)
    assert result.returncode == 2, result.stdout + result.stderr
    assert len(result.stderr.splitlines()) == 1 and "'no-such-relink-bucket' does not exist" in result.stderr
    assert "no photo under key" not in result.stdout
    assert {name: (run / "results" / name).read_bytes() for name in TABLES} == before
    assert not list((run / "results").glob("*.relink"))


def test_a_missing_photo_is_reported_and_its_link_kept(run: Path) -> None:
    path = run / "results" / "main_tasks.tsv"
    row = next(r for r in rows(path) for c, k in link_pairs(r) if json.loads(r[k]))
    column, keys_column = next((c, k) for c, k in link_pairs(row) if json.loads(row[k]))
    gone = json.loads(row[keys_column])[0]
    (run / "photos" / gone).unlink()
    result = relink(run)
    assert result.returncode == 1 and f"no photo under key {gone}" in result.stdout
    kept = next(r for r in rows(path) if r["pedestrian_assignment_id"] == row["pedestrian_assignment_id"])
    assert kept[column] == row[column]
