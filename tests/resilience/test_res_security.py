"""Security at the level of the running daemon.

Siblings that already hold at unit level: redaction of secrets in log records
(tests/engine/test_logs.py), the token never in a client's repr, errors or
logs (tests/client/test_http_client.py), owner-only and refuse-if-shared
checkpoints (tests/engine/test_checkpoint.py).
"""

from __future__ import annotations


import pytest

from common.secrets import Secret
from tests.resilience.conftest import TOKEN, World
from toloka_client.client import TolokaClient
from toloka_client.errors import NotFound


@pytest.mark.parametrize("typed", ["../requester", "../../../_emulator/state?", "x/../../requester", "%2e%2e/requester", "..", "."])
async def test_an_attachment_id_typed_by_a_worker_cannot_steer_the_request(world: World, typed: str) -> None:
    """Photo fields hold ids a worker typed; as path segments they must not reach another resource."""
    async with TolokaClient.connect(world.emu.url, Secret("toloka_token", TOKEN)) as client:
        with pytest.raises(NotFound):
            await client.download_attachment(typed, max_bytes=1_000_000)
        with pytest.raises(NotFound):
            await client.get_attachment(typed)
