"""The worker pool: claims run jobs off the leased queue (queue/ is transport only),
executes them while heartbeating the lease, and acks each once its run needs no more work
(core/leases.py). With a knowledge service, it also claims ingestion jobs off their own
queue, into slots of their own (`ingest_workers`).

Also the housekeeping that keeps every run moving: every second, runs whose wait for tool
outputs ran out are expired (in every worker process: the journal's compare-and-set lets
only one of them move a run); every `thread_sweep_interval_s`, threads idle past their
time-to-live are deleted (one process at a time, core/thread_ttl.py); at start and every
few leases, the queue forgets the idle consumers that stopped processes left behind.

In the embedded shape, `recover` at start queues again the runs left queued and those a
stopped server left in progress (the executor resumes them from what they committed), and
the files it left `in_progress` (ingested again from the start); in
the distributed shape nothing is done at start: a dead worker's lapsed leases are taken
over by the queue.
"""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from dataclasses import dataclass

from assistd.core.audit import AuditRetention
from assistd.core.executor import Executor
from assistd.core.knowledge import KnowledgeService
from assistd.core.leases import Claimer, cancel
from assistd.core.run_service import RunService
from assistd.core.thread_ttl import ThreadSweeper
from assistd.queue.base import IngestJob, Job, LeasedRunQueue, RunJob
from assistd.store.base import Store

log = logging.getLogger("assistd.worker")
PRUNE_EVERY_LEASES = 10  # how often idle queue consumers are looked for


def process_name() -> str:
    """This process's part of its consumer ids: host, PID and a random tag (a PID can come
    back after a restart, in another container)."""
    return f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"


@dataclass(slots=True)
class Ingestion:
    """What the pool needs to ingest files: their queue, the service, and how many files
    this process ingests at once."""

    queue: LeasedRunQueue
    knowledge: KnowledgeService
    slots: int


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
        ingestion: Ingestion | None = None,
        threads: ThreadSweeper | None = None,
        thread_sweep_s: float = 60.0,
        audit: AuditRetention | None = None,
    ) -> None:
        self.store = store
        self.queue = queue
        self.executor = executor
        self.runs = runs
        self.concurrency = concurrency
        self.recover = recover  # the embedded shape's start recovery (see _recover)
        self.ingestion = ingestion
        name = process_name()
        self._claimers = [Claimer(queue, concurrency, name, self._execute)]
        if ingestion is not None:
            self._claimers.append(Claimer(ingestion.queue, ingestion.slots, name, self._ingest))
        self.threads = threads  # the thread time-to-live sweep (core/thread_ttl.py)
        self.thread_sweep_s = thread_sweep_s
        self.audit = audit  # the audit log's retention, pruned on the same sweep
        self._tasks: list[asyncio.Task[None]] = []

    def consumer(self, slot: int) -> str:
        """The run queue consumer of one slot of this process."""
        return self._claimers[0].consumer(slot)

    async def _execute(self, job: Job) -> None:
        assert isinstance(job, RunJob)  # the run queue carries nothing else
        await self.executor.execute(job)

    async def _ingest(self, job: Job) -> None:
        assert isinstance(job, IngestJob) and self.ingestion is not None
        await self.ingestion.knowledge.ingest(job.workspace_id, job.vector_store_id, job.file_id)

    async def start(self) -> None:
        if self.recover:
            await self._recover()
        await self._prune()
        self._tasks = [
            *(asyncio.create_task(claimer.claim()) for claimer in self._claimers),
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
        if self.ingestion is not None:
            files = await self.store.files_ingesting()
            for workspace_id, vector_store_id, file_id in files:
                job = IngestJob(workspace_id, vector_store_id, file_id)
                await self.ingestion.queue.enqueue(job)
            if files:
                log.info("queued again %d files a stopped server left in progress", len(files))

    async def _sweep(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                await self.runs.expire_overdue()
            except Exception:
                log.exception("the run expiry sweep failed")
            if self.executor.telemetry.metrics is not None:
                await self._sample_depth()

    async def _sample_depth(self) -> None:
        try:
            self.executor.telemetry.queue_depth(await self.queue.depth())
        except Exception:
            log.debug("reading the queue's depth failed", exc_info=True)

    async def _expire_threads(self, sweeper: ThreadSweeper) -> None:
        while True:
            await asyncio.sleep(self.thread_sweep_s)
            try:
                await sweeper.sweep()
            except Exception:
                log.exception("the thread time-to-live sweep failed; trying again later")
            try:
                if self.audit is not None:
                    await self.audit.prune()
            except Exception:
                log.exception("pruning the audit log failed; trying again later")

    async def _prune(self) -> None:
        """Forgets the queue consumers that stopped processes left (each process start
        names new ones); a failure is only logged: it is tried again later."""
        for claimer in self._claimers:
            try:
                if removed := await claimer.queue.prune():
                    log.info("forgot %d idle queue consumers of stopped workers", removed)
            except Exception:
                log.warning("forgetting idle queue consumers failed", exc_info=True)

    async def _prune_every(self, seconds: float) -> None:
        while True:
            await asyncio.sleep(seconds)
            await self._prune()

    async def stop(self) -> None:
        """Stops claiming and lets go of the runs held: nothing is ended; in the
        distributed shape their leases lapse and other workers take them over."""
        await cancel(*self._tasks)
        self._tasks = []
