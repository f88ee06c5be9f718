"""The executor against the real emulator and a real local file store: every action idempotent."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import pandas as pd
import pytest

from emulator.app import start_emulator
from engine.actions import (
    AppendRows, CopyPhoto, CreateTasks, LinkTo, PayBonus, SetStatus, StorePhoto, TaskSpec, operation_uuid,
)
from engine.executor import ActionFailed, ChainResult, Executor
from common.secrets import Secret
from file_store.local import LocalFileStore
from handlers.base import DECISION_COLUMNS
from tables.tsv import TsvTable
from toloka_client.client import TolokaClient

TOKEN = "executor-test-token"
JPEG = b"\xff\xd8\xff\xe0" + b"0" * 2000


def now() -> datetime:
    return datetime.now(timezone.utc).replace(tzinfo=None)


@dataclass
class World:
    emu: Any
    client: TolokaClient
    store: LocalFileStore
    executor: Executor
    tables: dict[str, TsvTable]
    pool_id: str
    folder: Path

    def submitted(self, user: str = "walker", files: dict[str, bytes] | None = None) -> tuple[str, list[str]]:
        """A submitted pedestrian assignment with attachments; (assignment id, attachment ids)."""
        store = self.emu.store
        (task,) = store.create_tasks(self.pool_id, [{"input_values": {"name": "x"}, "overlap": 1}], now())
        assignment = store.create_assignment(self.pool_id, user, [task["id"]], now())
        ids = [store.add_attachment(assignment["id"], name, "image/jpeg", data, now())["id"]
               for name, data in (files or {"a.jpg": JPEG}).items()]
        store.submit_assignment(assignment["id"], [{"output_values": {"imgs_facade": ids}}], now())
        return assignment["id"], ids

    async def requests(self, route: str) -> int:
        async with aiohttp.ClientSession() as session, session.get(
            f"{self.emu.url}/_emulator/requests", headers={"Authorization": f"OAuth {TOKEN}"}
        ) as response:
            return int((await response.json())["by_route"].get(route, 0))


@pytest.fixture
async def world(tmp_path: Path) -> AsyncIterator[World]:
    async with start_emulator(tmp_path / "emu.sqlite", token=TOKEN) as emu:
        project = emu.store.create_project({"public_name": "p"}, now())
        pool = emu.store.create_pool({"project_id": project["id"], "private_name": "walk",
                                      "reward_per_assignment": 0.5, "auto_accept_solutions": False}, now())
        emu.store.open_pool(pool["id"], now())
        checks = emu.store.create_pool({"project_id": project["id"], "private_name": "check",
                                        "reward_per_assignment": 0.01}, now())
        emu.store.open_pool(checks["id"], now())
        tables = {"decisions": TsvTable(tmp_path / "decisions.tsv", DECISION_COLUMNS),
                  "main_tasks": TsvTable(tmp_path / "main.tsv", ["pedestrian_assignment_id", "imgs_facade"])}
        async with TolokaClient.connect(emu.url, Secret("toloka_token", TOKEN)) as client:
            store = await LocalFileStore.open(tmp_path / "photos", concurrency=4)
            try:
                executor = Executor(client, store, tables, max_photo_bytes=1_000_000, concurrency=4, clock=now)
                world = World(emu, client, store, executor, tables, pool["id"], tmp_path)
                world.check_pool = checks["id"]  # type: ignore[attr-defined]
                yield world
            finally:
                await store.aclose()


async def test_a_stored_photo_is_downloaded_once(world: World) -> None:
    _, (attachment,) = world.submitted()
    action = StorePhoto(attachment, "tmp/2026-11-22/a/imgs_facade/0.jpg")
    await world.executor.run(action)
    await world.executor.run(action)  # a replay after a crash
    assert (world.folder / "photos" / action.dst_key).read_bytes() == JPEG
    assert await world.requests("GET /api/v1/attachments/{id}/download") == 1


@pytest.mark.parametrize("data, reason", [(b"%PDF-1.4 not a photo", "is not an image"), (None, "DOES_NOT_EXIST|404|not found")])
async def test_a_photo_that_cannot_be_stored_fails_for_good(world: World, data: bytes | None, reason: str) -> None:
    attachment = world.submitted(files={"x.pdf": data})[1][0] if data else "0000000000--nosuchattachment000000"
    with pytest.raises(ActionFailed, match=reason) as failure:
        await world.executor.run(StorePhoto(attachment, "tmp/x/0.jpg"))
    assert failure.value.permanent
    assert not (world.folder / "photos" / "tmp" / "x" / "0.jpg").exists()


async def test_created_tasks_carry_working_links_and_are_created_once(world: World) -> None:
    _, (attachment,) = world.submitted()
    await world.executor.run(StorePhoto(attachment, "tmp/d/p/imgs_facade/0.jpg"))
    spec = TaskSpec({"pedestrian_assignment_id": "p", "imgs_facade": [LinkTo("tmp/d/p/imgs_facade/0.jpg")]},
                    overlap=3, unavailable_for=("walker",))
    action = CreateTasks(world.check_pool, operation_uuid("visit", "p"), (spec,))  # type: ignore[attr-defined]
    await world.executor.run(action)
    await world.executor.run(action)
    tasks = [t for t in world.emu.store.available_tasks(world.check_pool, "someone", 100)]  # type: ignore[attr-defined]
    assert len(tasks) == 1
    (link,) = tasks[0]["input_values"]["imgs_facade"]
    assert link.startswith("file://") and link.endswith("/tmp/d/p/imgs_facade/0.jpg")
    assert world.emu.store.available_tasks(world.check_pool, "walker", 100) == []  # type: ignore[attr-defined]


async def test_accept_and_reject_are_idempotent(world: World) -> None:
    accepted, _ = world.submitted()
    rejected, _ = world.submitted()
    for _ in range(2):
        await world.executor.run(SetStatus(accepted, "ACCEPTED", "Good job"))
        await world.executor.run(SetStatus(rejected, "REJECTED", "Incorrect object"))
    assert world.emu.store.get_assignment(accepted)["status"] == "ACCEPTED"
    assert world.emu.store.get_assignment(rejected)["status"] == "REJECTED"
    assert world.emu.store.get_assignment(rejected)["public_comment"] == "Incorrect object"


async def test_a_reject_does_not_read_the_status_first(world: World) -> None:
    rejected, _ = world.submitted()
    reads = await world.requests("GET /api/v1/assignments/{id}")
    await world.executor.run(SetStatus(rejected, "REJECTED", "Incorrect object"))
    assert await world.requests("GET /api/v1/assignments/{id}") == reads
    assert world.emu.store.get_assignment(rejected)["status"] == "REJECTED"


async def test_an_auto_accepted_assignment_is_logged_and_not_rejected(world: World) -> None:
    assignment, _ = world.submitted()
    world.emu.store.review_assignment(assignment, "ACCEPTED", "auto", now())  # what auto-accept does
    reads = await world.requests("GET /api/v1/assignments/{id}")
    row = {"date_time": "2026-05-01 12:00:00", "name": "Cafe", "address": "Main st. 1",
           "pedestrian_assignment_id": assignment, "handler": "quality", "group": f"{assignment}/main",
           "event": "auto-accepted", "comment": "wanted REJECTED: Low quality photos"}
    overtaken = AppendRows("decisions", f"{assignment}/auto-accepted", (row,))
    action = SetStatus(assignment, "REJECTED", "Low quality photos", if_overtaken=overtaken)
    assert await world.executor.run(action) == "ACCEPTED"  # what really happened, for the engine's counts
    assert await world.executor.run(action) == "ACCEPTED"  # a replay writes the row once
    # The refused reject (409) is what reveals the auto-accept: one status read per try, no read before.
    assert await world.requests("GET /api/v1/assignments/{id}") == reads + 2
    rows = pd.read_csv(world.tables["decisions"].path, sep="\t", dtype=str)
    assert rows[["pedestrian_assignment_id", "event", "handler"]].values.tolist() == [[assignment, "auto-accepted", "quality"]]
    assert world.emu.store.get_assignment(assignment)["status"] == "ACCEPTED"


async def test_a_bonus_is_paid_once_even_when_decided_twice(world: World) -> None:
    assignment, _ = world.submitted()
    world.emu.store.review_assignment(assignment, "ACCEPTED", "Good job", now())
    first = PayBonus(assignment, "walker", Decimal("0.10"), "Bonus", "Thanks: imgs_menu", operation_uuid("bonus", assignment))
    await world.executor.run(first)
    await world.executor.run(first)
    # Even a different operation id (say, state lost and rebuilt) pays nothing more.
    await world.executor.run(PayBonus(assignment, "walker", Decimal("0.10"), "Bonus", "again", operation_uuid("x")))
    bonuses = world.emu.store.bonuses(assignment_id=assignment)
    assert [Decimal(str(b["amount"])) for b in bonuses] == [Decimal("0.10")]


async def test_rows_with_links_are_appended_once(world: World) -> None:
    _, (attachment,) = world.submitted()
    await world.executor.run(StorePhoto(attachment, "tmp/d/p/imgs_facade/0.jpg"))
    await world.executor.run(CopyPhoto("tmp/d/p/imgs_facade/0.jpg", "main/p/imgs_facade/0.jpg"))
    rows = AppendRows("main_tasks", "p", ({"pedestrian_assignment_id": "p", "imgs_facade": [LinkTo("main/p/imgs_facade/0.jpg")]},))
    await world.executor.run(rows)
    await world.executor.run(rows)
    frame = pd.read_csv(world.tables["main_tasks"].path, sep="\t", dtype=str)
    assert len(frame) == 1
    (link,) = json.loads(frame["imgs_facade"][0])
    assert link.startswith("file://") and (world.folder / "photos" / "main/p/imgs_facade/0.jpg").read_bytes() == JPEG


async def test_a_failing_chain_stops_alone(world: World) -> None:
    _, (good,) = world.submitted()
    ended: dict[str, tuple[int, bool]] = {}

    async def on_end(chain: str, result: ChainResult) -> None:
        ended[chain] = (len(result.done), result.error is not None)

    chains = {
        "bad": [StorePhoto("0000000000--missing00000000000000", "tmp/bad/0.jpg"), CopyPhoto("tmp/bad/0.jpg", "main/bad/0.jpg")],
        "good": [StorePhoto(good, "tmp/good/0.jpg"), CopyPhoto("tmp/good/0.jpg", "main/good/0.jpg")],
    }
    await world.executor.run_chains(chains, on_end)
    assert ended == {"bad": (0, True), "good": (2, False)}
    assert (world.folder / "photos" / "main/good/0.jpg").exists()
    assert not (world.folder / "photos" / "main/bad/0.jpg").exists()


async def test_an_overlap_is_raised_idempotently_and_a_refusal_is_an_answer(world: World) -> None:
    from engine.actions import RaiseOverlap

    (task,) = world.emu.store.create_tasks(world.check_pool, [{"input_values": {"x": 1}, "overlap": 2}], now())
    action = RaiseOverlap(world.check_pool, task["id"], 3)
    assert await world.executor.run(action) is None
    assert await world.executor.run(action) is None  # a replay sets the same overlap
    assert world.emu.store.tasks[task["id"]]["overlap"] == 3
    row = {"date_time": "x", "event": "overlap not raised", "pedestrian_assignment_id": "pa"}
    gone = RaiseOverlap(world.check_pool, "0000000000--nosuchtask0000000000", 3,
                        if_refused=AppendRows("decisions", "pa/overlap", (row,)))
    reason = await world.executor.run(gone)  # Toloka says 404: decided with the answers it has, not parked
    assert reason is not None and "DOES_NOT_EXIST" in reason, reason
    written = pd.read_csv(world.folder / "decisions.tsv", sep="\t", dtype=str)
    assert list(written["event"]) == ["overlap not raised"]


async def test_a_worker_is_restricted_once_however_often_the_effect_runs(world: World) -> None:
    from engine.actions import RestrictWorker

    action = RestrictWorker(world.check_pool, "bad-checker", "visit: learned accuracy 0.41")
    await world.executor.run(action)
    await world.executor.run(action)  # a replay after a crash
    found = await world.client.find_user_restrictions(user_id="bad-checker", pool_id=world.check_pool)
    assert [(r.scope, r.pool_id, r.private_comment) for r in found] == [
        ("POOL", world.check_pool, "visit: learned accuracy 0.41")]
    assert await world.requests("PUT /api/v1/user-restrictions") == 1


async def test_a_stored_photo_reports_its_facts_and_a_replay_reports_none(world: World) -> None:
    import io

    from PIL import Image, ImageDraw

    from engine.photo_facts import from_text

    image = Image.new("RGB", (320, 240), (90, 140, 200))
    ImageDraw.Draw(image).rectangle([40, 60, 200, 220], fill=(230, 200, 40))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    photo = buffer.getvalue()
    _, (good, broken) = world.submitted(files={"a.jpg": photo, "b.jpg": JPEG})
    store = StorePhoto(good, "tmp/facts/a/imgs_facade/0.jpg")
    ended: dict[str, ChainResult] = {}

    async def on_end(chain: str, result: ChainResult) -> None:
        ended[chain] = result

    await world.executor.run_chains({"pa": [store, StorePhoto(broken, "tmp/facts/a/imgs_facade/1.jpg")]}, on_end)
    facts = ended["pa"].facts
    assert sorted(facts) == ["store:tmp/facts/a/imgs_facade/0.jpg", "store:tmp/facts/a/imgs_facade/1.jpg"]
    measured = from_text(facts[store.key])
    assert measured.readable and (measured.width, measured.height) == (320, 240) and measured.stddev > 20
    assert not from_text(facts["store:tmp/facts/a/imgs_facade/1.jpg"]).readable  # JPEG magic, no picture: stored
    assert ended["pa"].overtaken == {} and ended["pa"].refused == {}
    assert await world.executor.run(store) is None  # stored before a crash: not downloaded, not measured
    assert await world.requests("GET /api/v1/attachments/{id}/download") == 2


@dataclass
class Remembering:
    """A Batching that keeps in memory what the engine would journal."""

    recorded: list[Any]
    settled_batches: list[tuple[Any, list[str]]]

    def untried(self, action: Any) -> bool:
        return True

    async def sending(self, planned: Any) -> None:
        if planned.recorded:
            self.recorded.append(planned.batch)

    async def settled(self, batch: Any, done: Any) -> None:
        self.settled_batches.append((batch, [a.key for a in done]))


def check_tasks(world: World, names: list[str], overlap: int = 1) -> dict[str, list[Any]]:
    """One chain per name: a task creation in the check pool, then a decision row."""
    row = {"date_time": "2026-05-01 12:00:00", "pedestrian_assignment_id": "", "event": "to visit"}
    return {name: [CreateTasks(world.check_pool, operation_uuid("visit", name),  # type: ignore[attr-defined]
                               (TaskSpec({"pedestrian_assignment_id": name}, overlap),)),
                   AppendRows("decisions", f"{name}/to-visit", ({**row, "pedestrian_assignment_id": name},))]
            for name in names}


async def test_task_creations_of_several_chains_go_out_in_one_request_and_every_chain_goes_on(world: World) -> None:
    posts = await world.requests("POST /api/v1/tasks")
    memory = Remembering([], [])
    ended: list[str] = []

    async def end(chain: str, result: ChainResult) -> None:
        assert result.error is None and len(result.done) == 2
        ended.append(chain)

    await world.executor.run_chains(check_tasks(world, ["a", "b", "c"]), end, batching=memory)
    assert sorted(ended) == ["a", "b", "c"]
    assert await world.requests("POST /api/v1/tasks") == posts + 1
    assert await world.requests("GET /api/v1/operations/{id}") == 0  # answered in the request itself
    created = world.emu.store.available_tasks(world.check_pool, "someone", 100)  # type: ignore[attr-defined]
    assert sorted(t["input_values"]["pedestrian_assignment_id"] for t in created) == ["a", "b", "c"]
    (batch,) = memory.recorded
    assert memory.settled_batches == [(batch, [m.key for m in batch.members])]
    rows = pd.read_csv(world.tables["decisions"].path, sep="\t", dtype=str)
    assert sorted(rows["pedestrian_assignment_id"]) == ["a", "b", "c"]

    # The same batch again (a replay after a crash): Toloka knows its operation, nothing is created twice.
    outcomes, answered = await world.executor.send_batch(batch)
    assert answered and set(outcomes.values()) == {"existed"}
    assert len(world.emu.store.available_tasks(world.check_pool, "someone", 100)) == 3  # type: ignore[attr-defined]


async def test_a_batch_with_one_bad_task_is_sent_again_member_by_member_and_only_that_one_fails(world: World) -> None:
    chains = {**check_tasks(world, ["good1"]), **check_tasks(world, ["bad"], overlap=0),
              **check_tasks(world, ["good2"])}
    memory = Remembering([], [])
    results = await world.executor.run_chains(chains, lambda chain, result: _noop(), batching=memory)
    assert results["bad"].error is not None and results["bad"].error.permanent
    assert "overlap" in str(results["bad"].error)
    assert results["good1"].error is None and results["good2"].error is None
    created = world.emu.store.available_tasks(world.check_pool, "someone", 100)  # type: ignore[attr-defined]
    assert sorted(t["input_values"]["pedestrian_assignment_id"] for t in created) == ["good1", "good2"]
    # Answered: the batch is settled with the two that took effect; it is never sent again.
    ((batch, done),) = memory.settled_batches
    assert sorted(done) == sorted(chains[n][0].key for n in ("good1", "good2"))


async def test_bonuses_decided_together_are_paid_in_one_request_without_a_look_up(world: World) -> None:
    names = []
    for _ in range(3):
        assignment, _ = world.submitted()
        world.emu.store.review_assignment(assignment, "ACCEPTED", "Good job", now())
        names.append(assignment)
    chains = {a: [PayBonus(a, "walker", Decimal("0.10"), "Bonus", "Thanks", operation_uuid("bonus", a))] for a in names}
    posts = await world.requests("POST /api/v1/user-bonuses")
    await world.executor.run_chains(chains, lambda chain, result: _noop(), batching=Remembering([], []))
    assert await world.requests("POST /api/v1/user-bonuses") == posts + 1
    assert await world.requests("GET /api/v1/user-bonuses") == 0
    for a in names:
        assert [Decimal(str(b["amount"])) for b in world.emu.store.bonuses(assignment_id=a)] == [Decimal("0.10")]


async def _noop() -> None:
    return None


async def test_a_photo_not_to_measure_is_stored_without_facts(world: World) -> None:
    _, (attachment,) = world.submitted()
    measured = await world.executor.run(StorePhoto(attachment, "tmp/m/0.jpg"))
    assert measured is not None and "\"sha\"" in measured
    _, (other,) = world.submitted()
    assert await world.executor.run(StorePhoto(other, "tmp/n/0.jpg", measure=False)) is None
    assert (world.folder / "photos" / "tmp" / "n" / "0.jpg").read_bytes() == JPEG


async def test_rows_of_many_chains_for_one_keyed_table_share_writes_and_each_lands_once(
        world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    table = TsvTable(world.folder / "keyed.tsv", ["pedestrian_assignment_id", "event"], key=["pedestrian_assignment_id"])
    world.executor.tables = {**world.tables, "keyed": table}
    writes: list[int] = []
    raw_write = TsvTable._raw_write

    def counted(self: TsvTable, data: bytes) -> None:  # the real write, counted
        writes.append(data.count(b"\n"))
        raw_write(self, data)

    monkeypatch.setattr(TsvTable, "_raw_write", counted)
    chains = {f"c{i}": [AppendRows("keyed", f"c{i}/x", ({"pedestrian_assignment_id": f"a{i}", "event": "x"},))]
              for i in range(12)}
    chains["again"] = [AppendRows("keyed", "again", ({"pedestrian_assignment_id": "a3", "event": "x"},))]
    results = await world.executor.run_chains(chains, lambda chain, result: _noop())
    assert all(r.error is None and len(r.done) == 1 for r in results.values())
    rows = pd.read_csv(table.path, sep="\t", dtype=str)
    assert sorted(rows["pedestrian_assignment_id"]) == sorted(f"a{i}" for i in range(12))  # a3 once
    assert len(writes) < 12 and sum(writes) == 1 + 12  # the header and twelve rows, in fewer writes


async def test_a_failed_group_write_fails_every_chain_it_carried(world: World, monkeypatch: pytest.MonkeyPatch) -> None:
    # The write itself fails as on a full disk. (/dev/full, which tests/tables uses, cannot stand in for a
    # keyed table: its key index reads the file first, and reading /dev/full never ends.)
    table = TsvTable(world.folder / "keyed.tsv", ["pedestrian_assignment_id", "event"], key=["pedestrian_assignment_id"])
    world.executor.tables = {**world.tables, "keyed": table}

    def full(self: TsvTable, data: bytes) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(TsvTable, "_raw_write", full)
    chains = {f"c{i}": [AppendRows("keyed", f"c{i}/x", ({"pedestrian_assignment_id": f"a{i}", "event": "x"},))]
              for i in range(5)}
    results = await world.executor.run_chains(chains, lambda chain, result: _noop())
    assert all(r.error is not None and "No space left" in str(r.error) and not r.done for r in results.values())


class CountingTable(TsvTable):
    """A real keyed table that also counts its appends (each one is a write and an fsync)."""

    appends = 0

    def append(self, rows: Any) -> int:
        self.appends += 1
        return super().append(rows)


def _fact_row(name: str) -> dict[str, str]:
    return {"pedestrian_assignment_id": name, "imgs_facade": "[]"}


async def test_rows_of_chains_that_end_together_are_written_in_one_append_per_table(world: World) -> None:
    facts = CountingTable(world.folder / "facts.tsv", ["pedestrian_assignment_id", "imgs_facade"],
                          key=["pedestrian_assignment_id"])
    world.executor.tables = {**world.tables, "facts": facts}
    _, (photo,) = world.submitted()
    chains: dict[str, list[Any]] = {name: [AppendRows("facts", f"{name}/row", (_fact_row(name),))]
                                    for name in ("a", "b", "c")}
    chains["d"] = [StorePhoto(photo, "tmp/d/0.jpg"), AppendRows("facts", "d/row", (_fact_row("d"),))]
    results = await world.executor.run_chains(chains, lambda chain, result: _noop())
    assert all(r.error is None and len(r.done) == len(chains[c]) for c, r in results.items())
    assert facts.appends == 1
    rows = pd.read_csv(facts.path, sep="\t", dtype=str)
    assert sorted(rows["pedestrian_assignment_id"]) == ["a", "b", "c", "d"]
    # A replay (after a crash before the done marks) writes no row twice.
    await world.executor.run_chains(chains, lambda chain, result: _noop())
    assert len(pd.read_csv(facts.path, sep="\t", dtype=str)) == 4


async def test_a_chain_whose_rows_cannot_be_written_stops_there_and_its_later_steps_are_not_done(world: World) -> None:
    (world.folder / "not-a-folder").write_text("x")
    broken = TsvTable(world.folder / "not-a-folder" / "facts.tsv", ["pedestrian_assignment_id", "imgs_facade"],
                      key=["pedestrian_assignment_id"])
    fine = TsvTable(world.folder / "fine.tsv", ["pedestrian_assignment_id", "imgs_facade"],
                    key=["pedestrian_assignment_id"])
    world.executor.tables = {**world.tables, "broken": broken, "fine": fine}
    assignment, _ = world.submitted()
    accept = SetStatus(assignment, "ACCEPTED", "Good job")
    chains: dict[str, list[Any]] = {
        "bad": [AppendRows("broken", "bad/row", (_fact_row("bad"),)), accept],
        "good": [AppendRows("fine", "good/row", (_fact_row("good"),))],
    }
    ended: dict[str, ChainResult] = {}

    async def on_end(chain: str, result: ChainResult) -> None:
        ended[chain] = result

    await world.executor.run_chains(chains, on_end)
    bad, good = ended["bad"], ended["good"]
    assert bad.error is not None and bad.error.action == chains["bad"][0] and "facts.tsv" in str(bad.error)
    assert bad.done == []  # the accept went out, but is not counted: the next try replays it (a no-op) and counts it
    assert good.error is None and good.done == chains["good"]
    assert list(pd.read_csv(fine.path, sep="\t", dtype=str)["pedestrian_assignment_id"]) == ["good"]


async def test_a_photo_the_journal_proves_untried_is_downloaded_without_a_look_first(world: World) -> None:
    _, (photo,) = world.submitted()
    action = StorePhoto(photo, "tmp/u/0.jpg", measure=True)
    await world.executor.run(action)  # stored (say, by an operator's command): the file is there
    downloads = await world.requests("GET /api/v1/attachments/{id}/download")
    assert await world.executor.run(action) is None  # a replay: the look finds it, nothing is downloaded
    assert await world.requests("GET /api/v1/attachments/{id}/download") == downloads
    results = await world.executor.run_chains({"u": [action]}, lambda chain, result: _noop(),
                                              batching=Remembering([], []))
    # Untried: no look, so the photo is downloaded (and measured) again; the same bytes replace the same file.
    assert await world.requests("GET /api/v1/attachments/{id}/download") == downloads + 1
    assert action.key in results["u"].facts
    assert (world.folder / "photos" / "tmp/u/0.jpg").read_bytes() == JPEG
