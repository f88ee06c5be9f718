"""The engine downloads a photo it staged itself without looking for it first, and forgets the proof once tried.

A photo pending at start-up may have been stored by the run before: that one is looked for first,
and not downloaded again when it is there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from engine.actions import Step, StorePhoto
from engine.ticker import UNTRIED_KINDS

TOKEN = "untried-photos-token"
JPEG = b"\xff\xd8\xff\xe0" + b"1" * 3000
DOWNLOAD = "GET /api/v1/attachments/{id}/download"


def _photo(emu: object, pool_id: str) -> str:
    """An attachment of a submitted assignment in ``pool_id``; its id."""
    store = emu.store  # type: ignore[attr-defined]
    now = datetime.now(UTC).replace(tzinfo=None)
    (task,) = store.create_tasks(pool_id, [{"input_values": {"name": "x"}, "overlap": 1}], now)
    assignment = store.create_assignment(pool_id, "walker-untried", [task["id"]], now)
    attachment: str = store.add_attachment(assignment["id"], "a.jpg", "image/jpeg", JPEG, now)["id"]
    return attachment


async def test_a_photo_staged_here_is_downloaded_without_a_look_and_a_pending_one_is_looked_for(tmp_path: Path) -> None:
    from pipelines import open_engine
    from tools.harness import emulator_in_process

    async with emulator_in_process(tmp_path, seed=3, speed=1, token=TOKEN, crowd=False) as (emu, settings):
        ped = settings.pools()["pedestrian"]
        fresh = StorePhoto(_photo(emu, ped), "tmp/untried/fresh/0.jpg")
        left = StorePhoto(_photo(emu, ped), "tmp/untried/left/0.jpg")
        async with open_engine(settings) as first:
            staged = first.journal.stage([Step("fresh", fresh), Step("left", left)])
            first.never_sent.update(s.key for s in staged if isinstance(s.action, UNTRIED_KINDS))  # as a tick does
            await first.checkpoint()
            assert first.untried(fresh) and first.untried(left)
            # Something at the fresh photo's key (it cannot be an earlier try's): no look, so it is replaced.
            (tmp_path / "photos" / "tmp/untried/fresh").mkdir(parents=True)
            (tmp_path / "photos" / "tmp/untried/fresh/0.jpg").write_bytes(b"stale")
            await first.execute_pending()
            assert first.never_sent == set()  # tried: the proof is gone (and the set does not grow)
            assert first.journal.pending() == []
        assert emu.requests.get(DOWNLOAD, 0) == 2
        assert (tmp_path / "photos" / "tmp/untried/fresh/0.jpg").read_bytes() == JPEG

        # The next start finds the second photo pending (say the done mark was lost in a crash): it is
        # not untried for this process, so the store is asked first, and nothing is downloaded again.
        async with open_engine(settings) as second:
            second.journal.stage([Step("left-again", StorePhoto(left.attachment_id, left.dst_key))])
            await second.checkpoint()
        async with open_engine(settings) as third:
            assert not third.untried(left)
            await third.execute_pending()
            assert third.journal.pending() == []
        assert emu.requests.get(DOWNLOAD, 0) == 2
