"""Thread time-to-live: the sweep that deletes threads idle past their TTL (rules in
core/ttl_rules.py, SQL in store/thread_ttl.py).

It runs in the worker (WorkerPool: the embedded server's own, or each `assistd worker`),
and at once from `assistd threads expire`. One sweeper at a time across processes (an
advisory lock on PostgreSQL). Each thread goes in its own short transaction, so requests
wait at most for one thread's deletion; a batch at a time, until none is left.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from assistd.core.ids import now_ms
from assistd.settings import Settings
from assistd.store import thread_ttl as sql
from assistd.store.sql import SqlStore

log = logging.getLogger("assistd.threads")


@dataclass(slots=True)
class SweepResult:
    threads: list[sql.IdleThread] = field(default_factory=list)  # deleted (or, dry: would be)
    files: list[str] = field(default_factory=list)  # deleted with them
    skipped: bool = False  # another process was sweeping


class ThreadSweeper:
    def __init__(self, store: SqlStore, settings: Settings) -> None:
        self.store = store
        self.server_ttl = settings.thread_ttl_s
        self.batch = settings.thread_sweep_batch

    async def idle(
        self, workspace_id: str | None = None, limit: int | None = None
    ) -> list[sql.IdleThread]:
        """The threads idle past their TTL now (what a sweep would delete)."""
        return await sql.idle_threads(
            self.store.engine, now_ms(), self.server_ttl, limit or self.batch, workspace_id
        )

    async def sweep(self, workspace_id: str | None = None) -> SweepResult:
        """Deletes every thread idle past its TTL, a batch at a time."""
        result = SweepResult()
        async with sql.sweep_lock(self.store.engine) as mine:
            if not mine:
                result.skipped = True
                return result
            while batch := await self.idle(workspace_id):
                deleted = 0
                for idle in batch:
                    files = await sql.expire_thread(
                        self.store.writing, idle, now_ms(), self.server_ttl
                    )
                    if files is not None:
                        deleted += 1
                        result.threads.append(idle)
                        result.files.extend(files)
                if not deleted:  # every one became active meanwhile: the next sweep sees
                    break
        if result.threads:
            log.info("expired %d idle threads and %d files only they used",
                     len(result.threads), len(result.files))  # fmt: skip
        return result
