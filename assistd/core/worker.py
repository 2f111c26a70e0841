"""The worker pool: takes run jobs off the queue (queue/ is transport only) and executes them.

Also the two housekeeping duties that keep every run moving: at start, runs left queued
are queued again and runs left in progress by a stopped server are queued to be taken
over (the executor resumes them from what they committed); every second, runs whose wait
for tool outputs ran out are expired.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from assistd.core.executor import Executor
from assistd.core.run_service import RunService
from assistd.queue.base import RunJob, RunQueue
from assistd.store.base import Store

log = logging.getLogger("assistd.worker")


class WorkerPool:
    def __init__(
        self, store: Store, queue: RunQueue, executor: Executor, runs: RunService, concurrency: int
    ) -> None:
        self.store = store
        self.queue = queue
        self.executor = executor
        self.runs = runs
        self.concurrency = concurrency
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._recover()
        self._tasks = [asyncio.create_task(self._work()) for _ in range(self.concurrency)]
        self._tasks.append(asyncio.create_task(self._sweep()))

    async def _recover(self) -> None:
        # Taking over every in-progress run is sound only because this process holds the
        # store's serving lock (server_lock.py): the process that ran them is gone. Each
        # resumes from what it committed (a cancelling one ends cancelled).
        queued = await self.store.runs_in(["queued"])
        stopped = await self.store.runs_in(["in_progress", "cancelling"])
        for workspace_id, thread_id, run_id in [*queued, *stopped]:
            await self.queue.enqueue(RunJob(workspace_id, thread_id, run_id))
        log.info(
            "recovered %d runs at start: %d queued again, %d taken over (a stopped server "
            "left them in progress)", len(queued) + len(stopped), len(queued), len(stopped),
        )  # fmt: skip

    async def _work(self) -> None:
        while True:
            job = await self.queue.take()
            try:
                await self.executor.execute(job)
            except Exception:
                log.exception("run %s: the executor failed", job.run_id)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.runs.expire_overdue()
            except Exception:
                log.exception("the run expiry sweep failed")

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
