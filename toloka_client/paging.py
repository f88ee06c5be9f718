"""Walking a search to its end with ``sort=id`` and ``id_gt`` (the API's paging)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Protocol, TypeVar

from toloka_client.records import Page


class _HasId(Protocol):
    @property
    def id(self) -> str | None: ...


R = TypeVar("R", bound=_HasId)


async def iterate_by_id(fetch: Callable[[str | None], Awaitable[Page[R]]]) -> AsyncIterator[R]:
    """Yield every item of a search; ``fetch(id_gt)`` asks for the page after ``id_gt``.

    ``fetch`` must sort by id. Ids compare as strings on the server, and the last
    id of a page is the largest, so no item is skipped or repeated.
    """
    last: str | None = None
    while True:
        page = await fetch(last)
        for item in page.items:
            yield item
        if not page.has_more or not page.items:
            return
        last = page.items[-1].id
