"""The photo store probe: can a checker's browser open a photo link right now?

When the photo store (S3, Azure, a local folder) stalls, checkers on Toloka
cannot open the photos and answer "bad", so honest work would be rejected while
nothing else in the daemon fails. Once per tick :class:`StoreProbe` writes a
tiny JPEG it owns under a fixed key, asks the store for a link to it and fetches
that link as a browser would (HTTP GET for ``http(s)`` links, a file read in a
worker thread for ``file://`` links), checking the same bytes come back.

:func:`record_probe` turns the results into *outage windows*
(:class:`~engine.spec.Outage`): a failed probe opens one that starts at the last
successful probe (the links may have failed any time after it), later failures
extend it, and the next successful probe closes it at its own time. The engine
checkpoints the windows and hands them to the handlers (``Context.outages``),
so negative answers given inside a window can be voided and asked again.

Nothing here reads the clock (the time is passed in) or blocks the event loop,
and no vendor error escapes: every failure becomes ``ok=False`` with a detail
that never holds a link's query string (a presigned URL or SAS token carries
credentials there).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit
from urllib.request import url2pathname

import aiohttp
from yarl import URL

from common.errors import StorageError
from engine.spec import Outage
from file_store.base import FileStore

#: The object the probe owns: rewritten with the same bytes every tick, never read by anything else.
PROBE_KEY = "probe/daemon-probe.jpg"
#: A valid 1x1 JPEG (286 bytes): what a browser would be shown.
PROBE_PHOTO = bytes.fromhex(
    "ffd8ffe000104a46494600010100000100010000ffdb004300100b0c0e0c0a100e0d0e1211101318281a181616183123251d283a"
    "333d3c3933383740485c4e404457453738506d51575f626768673e4d71797064785c656763ffdb0043011112121815182f1a1a2f"
    "634238426363636363636363636363636363636363636363636363636363636363636363636363636363636363636363636363"
    "636363ffc00011080001000103012200021101031101ffc4001500010100000000000000000000000000000004ffc40014100100"
    "000000000000000000000000000000ffc40014010100000000000000000000000000000005ffc400141101000000000000000000"
    "00000000000000ffda000c03010002110311003f009403031fffd9"
)
PROBE_CONTENT_TYPE = "image/jpeg"
#: Outage windows kept: those that ended within this time (an open one is always kept) ...
KEEP_OUTAGES = timedelta(hours=24)
#: ... and at most this many, the newest.
MAX_OUTAGES = 50
_MAX_BODY = 1024 * 1024  # a link that serves more than this is not serving the probe photo
# A URL's query (and fragment): presigned S3 links and Azure SAS links carry credentials there.
_QUERY = re.compile(r"(\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s?#'\"<>]*)[?#][^\s'\"<>)]*")

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """One probe: did the link serve the probe photo at ``at``, and what happened (no secrets)."""

    ok: bool
    at: datetime
    detail: str


def without_query(text: str) -> str:
    """``text`` with the query string and fragment cut from every URL in it (they may hold credentials)."""
    return _QUERY.sub(r"\1", text)


class _OneAtATime:
    """Runs at most one operation at a time; one that outlives its timeout goes on alone.

    A stalled disk keeps a worker thread busy whatever we do, so instead of
    starting another one every tick the probe waits for the one in flight.
    """

    def __init__(self) -> None:
        self._task: asyncio.Task[Any] | None = None

    async def run(self, make: Callable[[], Awaitable[T]], timeout_s: float) -> T:
        """The operation's result; ``TimeoutError`` when it takes longer, ``_Busy`` when one still runs."""
        if self._task is not None and not self._task.done():
            raise _Busy
        task: asyncio.Task[T] = asyncio.ensure_future(make())
        task.add_done_callback(_consume)
        self._task = task
        done, _ = await asyncio.wait({task}, timeout=timeout_s)
        if not done:
            raise TimeoutError
        return task.result()


class _Busy(Exception):
    """The previous probe's operation has not finished yet."""


def _consume(task: asyncio.Task[Any]) -> None:
    """Retrieve a left-over task's outcome, so an error of a timed-out operation is never reported as lost."""
    if not task.cancelled():
        task.exception()


class StoreProbe:
    """Writes, links and fetches the probe photo; see the module docstring.

    ``timeout_s`` bounds fetching the link (a checker's browser gives up too);
    ``write_timeout_s`` bounds writing the probe photo.
    """

    def __init__(
        self, store: FileStore, *, key: str = PROBE_KEY, timeout_s: float = 5.0, write_timeout_s: float = 10.0
    ) -> None:
        self.store = store
        self.key = key
        self.timeout_s = timeout_s
        self.write_timeout_s = write_timeout_s
        self._writing = _OneAtATime()
        self._reading = _OneAtATime()

    async def check(self, now: datetime) -> ProbeResult:
        """Probe the store once; ``now`` is the result's time. Never raises an ordinary exception.

        The probe counts as ok when the link serves the probe photo, even if
        writing it failed this time (the link then serves the copy of an earlier
        tick): what matters to a checker is whether photo links open.
        """
        write_problem = await self._write()
        problem = await self._serve()
        if problem is None:
            detail = "links serve the probe photo"
            if write_problem is not None:
                detail += f"; but writing it failed: {write_problem}"
            return ProbeResult(True, now, without_query(detail))
        detail = problem if write_problem is None else f"{problem}; writing it failed too: {write_problem}"
        return ProbeResult(False, now, without_query(detail))

    async def _write(self) -> str | None:
        """Store the probe photo; a problem's description, or None."""
        try:
            await self._writing.run(lambda: self.store.put(self.key, PROBE_PHOTO, PROBE_CONTENT_TYPE),
                                    self.write_timeout_s)
        except _Busy:
            return "the previous write of the probe photo has not finished yet"
        except TimeoutError:
            return f"storing the probe photo took more than {self.write_timeout_s:g} s"
        except StorageError as exc:
            return str(exc)
        return None

    async def _serve(self) -> str | None:
        """Fetch the probe photo through its link; a problem's description, or None."""
        try:
            link = await asyncio.wait_for(self.store.link(self.key), self.timeout_s)
        except TimeoutError:
            return f"making a link to the probe photo took more than {self.timeout_s:g} s"
        except StorageError as exc:
            return f"cannot make a link to the probe photo: {exc}"
        scheme = urlsplit(link).scheme.lower()
        if scheme in ("http", "https"):
            return await self._get(link)
        if scheme == "file":
            return await self._read(link)
        return f"the link {without_query(link)} is not an http(s) or file link a browser opens"

    async def _get(self, link: str) -> str | None:
        """GET the link as a browser would (the URL exactly as given: a presigned one must not be re-quoted)."""
        shown = without_query(link)
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with (
                aiohttp.ClientSession(timeout=timeout) as session,
                session.get(URL(link, encoded=True)) as response,
            ):
                if response.status != 200:
                    return f"GET {shown} answered HTTP {response.status}"
                body = bytearray()
                async for chunk in response.content.iter_chunked(64 * 1024):
                    body += chunk
                    if len(body) > _MAX_BODY:
                        break
                content_type = response.content_type
        except TimeoutError:
            return f"GET {shown}: no answer within {self.timeout_s:g} s"
        except (aiohttp.ClientError, ValueError) as exc:
            reason = str(exc)
            return f"GET {shown} failed: {type(exc).__name__}" + (f" ({reason})" if reason else "")
        return _compare(shown, bytes(body), content_type)

    async def _read(self, link: str) -> str | None:
        """Read a ``file://`` link's file in a worker thread (at most one read at a time)."""
        path = Path(url2pathname(urlsplit(link).path))
        try:
            body = await self._reading.run(lambda: asyncio.to_thread(_read_limited, path), self.timeout_s)
        except _Busy:
            return f"reading {path} from an earlier probe has not finished yet"
        except TimeoutError:
            return f"reading {path} took more than {self.timeout_s:g} s"
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror or type(exc).__name__}"
        return _compare(str(path), body, None)


def _read_limited(path: Path) -> bytes:
    with path.open("rb") as handle:
        return handle.read(_MAX_BODY + 1)


def _compare(shown: str, body: bytes, content_type: str | None) -> str | None:
    """None when ``body`` is the probe photo (served as an image); else what differs."""
    if body != PROBE_PHOTO:
        return (f"{shown} served {len(body)}{'+' if len(body) > _MAX_BODY else ''} bytes that are not "
                f"the {len(PROBE_PHOTO)}-byte probe photo")
    if content_type is not None and not content_type.startswith("image/"):
        return f"{shown} served the probe photo as {content_type or 'no content type'}, which a browser does not show"
    return None


@dataclass(frozen=True, slots=True)
class OutageChange:
    """The windows after one probe, the last successful probe's time, and what this probe opened or closed."""

    outages: list[Outage]
    ok_at: datetime | None
    opened: Outage | None = None
    closed: Outage | None = None


def record_probe(
    outages: Sequence[Outage],
    ok_at: datetime | None,
    result: ProbeResult,
    *,
    keep: timedelta = KEEP_OUTAGES,
    limit: int = MAX_OUTAGES,
) -> OutageChange:
    """Fold one probe into the outage windows (oldest first; only the last may be open).

    A failure opens a window starting at ``ok_at``, the last successful probe
    (the links may have failed any time after it; with none known, at the
    failure itself), or extends the open one (same start, the latest detail).
    A success closes the open window at the success's time. Windows that ended
    more than ``keep`` before the probe are dropped, then all but the newest
    ``limit``; an open window is never dropped.
    """
    windows = list(outages)
    current = windows[-1] if windows and windows[-1].end is None else None
    opened = closed = None
    if result.ok:
        ok_at = result.at
        if current is not None:
            closed = windows[-1] = replace(current, end=result.at)
    elif current is not None:
        windows[-1] = replace(current, detail=result.detail)
    else:
        start = ok_at if ok_at is not None and ok_at <= result.at else result.at
        opened = Outage(start, None, result.detail)
        windows.append(opened)
    cutoff = result.at - keep
    windows = [w for w in windows if w.end is None or w.end >= cutoff]
    if len(windows) > limit:
        windows = windows[-limit:]
    return OutageChange(windows, ok_at, opened, closed)
