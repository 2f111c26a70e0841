"""One claim loop over a leased queue: claims jobs into a fixed number of slots, works on
each while heartbeating its lease, and acks it once the work returns. The worker pool
runs one for run jobs and one for ingestion jobs, each on a queue of its own, so that a
batch of files never keeps runs waiting (nor runs the files).

A job whose work raises is not acked: its lease lapses and another consumer (or this
one) takes it over. A job whose lease is lost (another consumer took it over) is let go
at once: its work is cancelled.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from assistd.logs import log_context
from assistd.queue.base import IngestJob, Job, Lease, LeasedRunQueue

log = logging.getLogger("assistd.worker")

Work = Callable[[Job], Coroutine[Any, Any, None]]


def describe(job: Job) -> str:
    """The job in a log line."""
    if isinstance(job, IngestJob):
        return f"ingestion of {job.file_id} into {job.vector_store_id}"
    return f"run {job.run_id}"


class Claimer:
    def __init__(self, queue: LeasedRunQueue, slots: int, name: str, work: Work) -> None:
        """`name`: the consumers' names are `<name>:<slot>`, unique to this process."""
        self.queue = queue
        self.slots = slots
        self.name = name
        self.work = work
        self._held: set[asyncio.Task[None]] = set()

    def consumer(self, slot: int) -> str:
        return f"{self.name}:{slot}"

    async def claim(self) -> None:
        """Claims for ever, only while a slot is free (so a busy process leaves new jobs
        to the others)."""
        free: asyncio.Queue[int] = asyncio.Queue()
        for slot in range(self.slots):
            free.put_nowait(slot)
        try:
            while True:
                slot = await free.get()
                try:
                    lease = await self.queue.claim(self.consumer(slot), self.queue.lease_s)
                except Exception:
                    log.exception("claiming a job failed; trying again")
                    free.put_nowait(slot)
                    await asyncio.sleep(1.0)
                    continue
                if lease is None:
                    free.put_nowait(slot)
                    continue
                task = asyncio.create_task(self._hold(lease))
                self._held.add(task)
                task.add_done_callback(functools.partial(self._release, free, slot))
        finally:
            # Stopping: the jobs held are left as they are; their leases lapse.
            await cancel(*self._held)
            self._held.clear()

    def _release(self, free: asyncio.Queue[int], slot: int, task: asyncio.Task[None]) -> None:
        self._held.discard(task)
        free.put_nowait(slot)

    async def _hold(self, lease: Lease) -> None:
        """Works on the job while heartbeating its lease; stops the work at once if the
        lease was lost (another consumer has the job now). Its lines (and its work's)
        carry the job's workspace and run id."""
        job = lease.job
        run_id = None if isinstance(job, IngestJob) else job.run_id
        with log_context(workspace=job.workspace_id, run_id=run_id):
            await self._hold_in_context(lease)

    async def _hold_in_context(self, lease: Lease) -> None:
        what = describe(lease.job)
        working = asyncio.create_task(self.work(lease.job))
        beating = asyncio.create_task(self._heartbeat(lease))
        try:
            await asyncio.wait({working, beating}, return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            await cancel(working, beating)
            raise
        if not working.done():
            log.warning("%s: its lease was taken over; this worker lets it go", what)
            await cancel(working)
            return
        await cancel(beating)
        failure = None if working.cancelled() else working.exception()
        if working.cancelled() or failure is not None:
            log.error("%s failed; its lease will lapse and it is tried again", what,
                      exc_info=failure)  # fmt: skip
            return
        # The work returns once the job needs no more of it. Its state is not read again
        # to decide: by now a later job (a run's next leg) may hold it.
        try:
            await self.queue.ack(lease)
        except Exception:  # the lease lapses; whoever claims it finds nothing left to do
            log.warning("%s: its job could not be acked", what, exc_info=True)

    async def _heartbeat(self, lease: Lease) -> None:
        """Returns when the lease is lost; a failed heartbeat (Redis briefly gone) is
        retried on the next beat."""
        while True:
            await asyncio.sleep(self.queue.lease_s / 3)
            try:
                if not await self.queue.heartbeat(lease):
                    return
            except Exception:
                log.warning("%s: a lease heartbeat failed", describe(lease.job), exc_info=True)


async def cancel(*tasks: asyncio.Task[None]) -> None:
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
