"""`assistd threads expire`: the thread time-to-live sweep run now, or only listed."""

from __future__ import annotations

import datetime as dt

from assistd.core.tenancy import Tenancy
from assistd.core.thread_ttl import ThreadSweeper
from assistd.settings import Settings
from assistd.store.sql import SqlStore
from assistd.store.thread_ttl import IdleThread

HEADER = "WORKSPACE\tTHREAD\tIDLE SINCE\tTTL (s)"
DRY_LIMIT = 100_000  # a dry run lists them all at once (nothing is deleted)


def _row(idle: IdleThread) -> str:
    since = dt.datetime.fromtimestamp(idle.last_active_at / 1000, dt.UTC)
    return f"{idle.workspace_id}\t{idle.thread_id}\t{since:%Y-%m-%dT%H:%M:%SZ}\t{idle.ttl_s}"


async def expire(
    tenancy: Tenancy, settings: Settings, workspace: str | None, dry_run: bool
) -> list[str]:
    """The lines to print: a header, a row per thread, then a summary line."""
    ws = (await tenancy.find_workspace(workspace)).id if workspace else None
    store = tenancy.store
    assert isinstance(store, SqlStore)
    sweeper = ThreadSweeper(store, settings)
    if dry_run:
        idle = await sweeper.idle(ws, DRY_LIMIT)
        return [HEADER, *map(_row, idle), f"{len(idle)} threads would be deleted (dry run)"]
    result = await sweeper.sweep(ws)
    if result.skipped:
        return ["another process is sweeping threads now; nothing was deleted"]
    summary = f"deleted {len(result.threads)} threads and {len(result.files)} files"
    return [HEADER, *map(_row, result.threads), summary]
