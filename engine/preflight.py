"""``pipeline.py check``: everything the daemon needs, checked without acting.

:func:`run_checks` reads; it never creates, changes or deletes anything on
Toloka (only GET requests: the requester, the pools, their projects), and it
writes no checkpoint, log or result file. The one write is the photo store's
probe photo (``probe/daemon-probe.jpg``, :mod:`engine.probe`), the same object
the daemon rewrites every tick: writing it, making a link and reading it back
through that link is the only way to know checkers will see the photos.

The checks, each one :class:`Check` line:

- keyring: every entry the configuration names and the daemon would read
  (``[Secrets] toloka_token``, the chosen store's keys, ``[Status] token``);
- token: ``GET /requester`` with that token;
- each pool: it exists and its project fits what the pipeline sends and reads
  (:mod:`engine.pool_specs`, via ``PipelineSpec.expected_pools``);
- photo store: write, link, read back.

A check that cannot run because an earlier one failed (no token: no pool can
be read) fails too, saying why, so the summary never shows a pass it did not see.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from common.errors import PipelineError, SecretError
from common.secrets import Secret, read_secret
from engine.config import Settings
from engine.pool_specs import PoolReport, check_pool_specs
from engine.probe import StoreProbe
from engine.spec import PipelineSpec
from file_store import open_file_store
from toloka_client.client import TolokaClient
from toloka_client.errors import TolokaError
from toloka_client.http import HttpSettings


@dataclass(frozen=True, slots=True)
class Check:
    """One line of the summary: what was checked, whether it passed, and why (never a secret)."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{'OK  ' if self.ok else 'FAIL'} {self.name}: {self.detail}"


def keyring_entries(settings: Settings[Any]) -> list[tuple[str, str]]:
    """(where the configuration names it, keyring entry) for every secret the daemon would read."""
    entries = [("[Secrets] toloka_token", settings.secrets.toloka_token)]
    store = settings.file_store
    if store is not None and store.s3 is not None:
        entries += [("[Secrets] s3_key_id", store.s3.key_id_entry),
                    ("[Secrets] s3_access_key", store.s3.access_key_entry)]
    if store is not None and store.azure is not None:
        entries.append(("[Secrets] azure_account_key", store.azure.account_key_entry))
    if settings.status.enabled and settings.status.token is not None:
        entries.append(("[Status] token", settings.status.token))
    return entries


async def run_checks(
    spec: PipelineSpec[Any, Any],
    settings: Settings[Any],
    now: datetime,
    *,
    secrets: Callable[[str], Secret] = read_secret,
    http: HttpSettings | None = None,
) -> list[Check]:
    """Every check, in order (see the module docstring); ``now`` stamps the store probe."""
    checks: list[Check] = []
    read: dict[str, Secret] = {}
    for where, entry in keyring_entries(settings):
        try:
            read[entry] = await asyncio.to_thread(secrets, entry)
        except SecretError as exc:
            checks.append(Check(f"keyring {where}", False, str(exc)))
        else:
            checks.append(Check(f"keyring {where}", True, f"entry {entry!r} is set"))
    checks += await _toloka_checks(spec, settings, read.get(settings.secrets.toloka_token), http)
    checks.append(await _store_check(settings, read, now))
    return checks


async def _toloka_checks(
    spec: PipelineSpec[Any, Any], settings: Settings[Any], token: Secret | None, http: HttpSettings | None
) -> list[Check]:
    pools = settings.pools()
    if token is None:
        why = f"not checked: keyring entry {settings.secrets.toloka_token!r} ([Secrets] toloka_token) is missing"
        return [Check("token", False, why), *(Check(f"{name} pool", False, why) for name in pools)]
    settings_http = http or HttpSettings(total_timeout_s=settings.toloka.timeout_s)
    async with TolokaClient.connect(settings.toloka.base_url, token, settings_http) as client:
        try:
            requester = await client.get_requester()
        except TolokaError as exc:
            why = "not checked: the token was refused"
            return [Check("token", False, f"GET /requester at {settings.toloka.base_url}: {exc}"),
                    *(Check(f"{name} pool", False, why) for name in pools)]
        checks = [Check("token", True, f"accepted for requester {requester.id} at {settings.toloka.base_url}")]
        if spec.expected_pools is None:
            return checks + [await _pool_exists(client, name, pool_id) for name, pool_id in pools.items()]
        reports = await check_pool_specs(client, spec.expected_pools(settings.config), pools)
        return checks + [_pool_check(report) for report in reports]


async def _pool_exists(client: TolokaClient, name: str, pool_id: str) -> Check:
    """For a pipeline that declares no expectations: the pool can be read."""
    try:
        pool = await client.get_pool(pool_id)
    except TolokaError as exc:
        return Check(f"{name} pool", False, f"pool {pool_id}: {exc}")
    return Check(f"{name} pool", True, f"pool {pool_id} exists ({pool.status}); its project is not checked")


def _pool_check(report: PoolReport) -> Check:
    return Check(f"{report.name} pool", report.ok, report.line())


async def _store_check(settings: Settings[Any], read: dict[str, Secret], now: datetime) -> Check:
    """Write the probe photo, make a link, read it back through the link."""
    if settings.file_store is None:
        return Check("photo store", False, "no [FileStore] section was read")

    def secret(entry: str) -> Secret:
        found = read.get(entry)
        if found is None:
            raise SecretError(f"keyring entry {entry!r} is missing (see its keyring line above)")
        return found

    where = settings.file_store.backend
    try:
        store = await open_file_store(settings.file_store, secrets=secret)
    except PipelineError as exc:
        return Check("photo store", False, f"{where}: cannot open: {exc}")
    try:
        result = await StoreProbe(store).check(now)
    finally:
        await store.aclose()
    if result.ok:
        return Check("photo store", True, f"{where}: wrote the probe photo, made a link, read it back through it")
    return Check("photo store", False, f"{where}: {result.detail}")
