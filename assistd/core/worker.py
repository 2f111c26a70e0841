"""The worker pool: claims run jobs off the leased queue (queue/ is transport only),
executes them while heartbeating the lease, and acks each once its run needs no more work.

Also the housekeeping that keeps every run moving: every second, runs whose wait for tool
outputs ran out are expired (in every worker process: the journal's compare-and-set lets
only one of them move a run); every `thread_sweep_interval_s`, threads idle past their
time-to-live are deleted (one process at a time, core/thread_ttl.py); at start and every
few leases, the queue forgets the idle consumers that stopped processes left behind.

In the embedded shape, `recover` at start queues again the runs left queued and those a
stopped server left in progress (the executor resumes them from what they committed); in
the distributed shape nothing is done at start: a dead worker's lapsed leases are taken
over by the queue.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import secrets
import socket

from assistd.core.executor import Executor
from assistd.core.run_service import RunService
from assistd.core.thread_ttl import ThreadSweeper
from assistd.queue.base import Lease, LeasedRunQueue, RunJob
from assistd.store.base import Store

log = logging.getLogger("assistd.worker")
PRUNE_EVERY_LEASES = 10  # how often idle queue consumers are looked for


def process_name() -> str:
    """This process's part of its consumer ids: host, PID and a random tag (a PID can come
    back after a restart, in another container)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


class WorkerPool:
    def __init__(
        self,
        store: Store,
        queue: LeasedRunQueue,
        executor: Executor,
        runs: RunService,
        concurrency: int,
        *,
        recover: bool = True,
        threads: ThreadSweeper | None = None,
        thread_sweep_s: float = 60.0,
    ) -> None:
        self.store = store
        self.queue = queue
        self.executor = executor
        self.runs = runs
        self.concurrency = concurrency
        self.recover = recover  # the embedded shape's start recovery (see _recover)
        self.threads = threads  # the thread time-to-live sweep (core/thread_ttl.py)
        self.thread_sweep_s = thread_sweep_s
        self._name = process_name()
        self._tasks: list[asyncio.Task[None]] = []
        self._held: set[asyncio.Task[None]] = set()

    def consumer(self, slot: int) -> str:
        """The queue consumer of one slot of this process."""
        return f"{self._name}:{slot}"

    async def start(self) -> None:
        if self.recover:
            await self._recover()
        await self._prune()
        self._tasks = [
            asyncio.create_task(self._claim()),
            asyncio.create_task(self._sweep()),
            asyncio.create_task(self._prune_every(self.queue.lease_s * PRUNE_EVERY_LEASES)),
        ]
        if self.threads is not None:
            self._tasks.append(asyncio.create_task(self._expire_threads(self.threads)))

    async def _recover(self) -> None:
        # Taking over every in-progress run is sound only because this process holds the
        # store's serving lock (server_lock.py): the process that ran them is gone. Each
        # resumes from what it committed (a cancelling one ends cancelled). The in-process
        # queue started empty, so these are the only jobs: they need no leg.
        queued = await self.store.runs_in(["queued"])
        stopped = await self.store.runs_in(["in_progress", "cancelling"])
        for workspace_id, thread_id, run_id in [*queued, *stopped]:
            await self.queue.enqueue(RunJob(workspace_id, thread_id, run_id))
        log.info(
            "recovered %d runs at start: %d queued again, %d taken over (a stopped server "
            "left them in progress)", len(queued) + len(stopped), len(queued), len(stopped),
        )  # fmt: skip

    async def _claim(self) -> None:
        """One claimer per process, claiming only while a slot is free (so a busy process
        leaves new jobs to the others)."""
        free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(self.concurrency):
            free.put_nowait(slot)
        while True:
            slot = await free.get()
            try:
                lease = await self.queue.claim(self.consumer(slot), self.queue.lease_s)
            except Exception:
                log.exception("claiming a run job failed; trying again")
                free.put_nowait(slot)
                await asyncio.sleep(1.0)
                continue
            if lease is None:
                free.put_nowait(slot)
                continue
            task = asyncio.create_task(self._hold(lease))
            self._held.add(task)
            task.add_done_callback(functools.partial(self._release, free, slot))

    def _release(self, free: asyncio.Queue[int], slot: int, task: asyncio.Task[None]) -> None:
        self._held.discard(task)
        free.put_nowait(slot)

    async def _hold(self, lease: Lease) -> None:
        """Executes the job while heartbeating its lease; stops the execution at once if
        the lease was lost (another worker has the run now)."""
        job = lease.job
        execution = asyncio.create_task(self.executor.execute(job))
        beating = asyncio.create_task(self._heartbeat(lease))
        try:
            await asyncio.wait({execution, beating}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            # Stopping: the run is left as it is, and its lease lapses for another worker.
            await _cancel(execution, beating)
            raise
        if not execution.done():
            log.warning("run %s: its lease was taken over; this worker lets it go", job.run_id)
            await _cancel(execution)
            return
        await _cancel(beating)
        failure = None if execution.cancelled() else execution.exception()
        if execution.cancelled() or failure is not None:
            log.error("run %s: the executor failed; its lease will lapse and it is tried "
                      "again", job.run_id, exc_info=failure)  # fmt: skip
            return
        # The executor returns once the run needs no more work from this job (ended, or
        # waiting for tool outputs, or not this job's to run). The run is not read again
        # to decide: by now a later leg (outputs submitted) may hold it under a job of its own.
        try:
            await self.queue.ack(lease)
        except Exception:  # the lease lapses; whoever claims it finds nothing left to do
            log.warning("run %s: its job could not be acked", job.run_id, exc_info=True)

    async def _heartbeat(self, lease: Lease) -> None:
        """Returns when the lease is lost; a failed heartbeat (Redis briefly gone) is
        retried on the next beat."""
        while True:
            await asyncio.sleep(self.queue.lease_s / 3)
            try:
                if not await self.queue.heartbeat(lease):
                    return
            except Exception:
                log.warning("run %s: a lease heartbeat failed", lease.job.run_id, exc_info=True)

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.runs.expire_overdue()
            except Exception:
                log.exception("the run expiry sweep failed")

    async def _expire_threads(self, sweeper: ThreadSweeper) -> None:
        while True:
            await asyncio.sleep(self.thread_sweep_s)
            try:
                await sweeper.sweep()
            except Exception:
                log.exception("the thread time-to-live sweep failed; trying again later")

    async def _prune(self) -> None:
        """Forgets the queue consumers that stopped processes left (each process start
        names new ones); a failure is only logged: it is tried again later."""
        try:
            if removed := await self.queue.prune():
                log.info("forgot %d idle run queue consumers of stopped workers", removed)
        except Exception:
            log.warning("forgetting idle run queue consumers failed", exc_info=True)

    async def _prune_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._prune()

    async def stop(self) -> None:
        """Stops claiming and lets go of the runs held: nothing is ended; in the
        distributed shape their leases lapse and other workers take them over."""
        tasks = [*self._tasks, *self._held]
        await _cancel(*tasks)
        self._tasks = []
        self._held.clear()


async def _cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
