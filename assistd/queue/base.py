"""Transport contracts: the leased run queue, the cancel channel (and, in
core/events.py, the event bus). A run is a row plus a job; the queue carries only the job.
The same leased queue, on a stream of its own, carries ingestion jobs (a vector-store
file to parse, chunk and embed), so that ingestion scales out with the workers too.

Two implementations of each: memory.py (one process) and redis.py (Redis Streams, many
processes). tests/contract runs one suite against both.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

DEFAULT_LEASE_S = 15.0


@dataclass(slots=True, frozen=True)
class RunJob:
    """Work on a run: its leg (`Run.leg`) is the time it was queued that this job is for.
    A job of an earlier leg is stale (its worker died before acking it, and the run has
    been queued again since): the executor lets it go. None: a job queued before jobs
    carried legs, or queued again at an embedded start; its leg is not checked.
    `trace`: the W3C traceparent of the request that queued it (tracing on), which the
    run's span continues."""

    workspace_id: str
    thread_id: str
    run_id: str
    leg: int | None = None
    trace: str | None = None


@dataclass(slots=True, frozen=True)
class IngestJob:
    """Ingestion of one vector-store file; the file's row (`in_progress`) is the state,
    so a job delivered again (taken over, or queued again at start) redoes it whole."""

    workspace_id: str
    vector_store_id: str
    file_id: str


Job = RunJob | IngestJob


@dataclass(slots=True, frozen=True)
class Lease:
    """A claimed job. `token` names the delivery (the same across takeovers, like a
    stream entry id); `consumer` is who holds it now."""

    job: Job
    token: str
    consumer: str


class LeasedRunQueue(Protocol):
    """At-least-once delivery: a claimed job stays leased to its consumer while it
    heartbeats; once it has gone `lease_s` without one, any other consumer's `claim` may
    take it over. Two consumers never hold one job at once; an acked job never returns."""

    lease_s: float

    async def enqueue(self, job: Job) -> None: ...

    async def claim(self, consumer: str, timeout_s: float | None = None) -> Lease | None:
        """Waits for a job (a new one, or one whose lease lapsed) and leases it to
        `consumer`; None if none came within `timeout_s` (None: waits for ever)."""
        ...

    async def heartbeat(self, lease: Lease) -> bool:
        """Extends the lease; False if the job is no longer this consumer's (taken over
        or acked): the consumer must then stop working on it."""
        ...

    async def ack(self, lease: Lease) -> bool:
        """Ends the job for good; False (and nothing done) if it was not this
        consumer's any more."""
        ...

    async def prune(self) -> int:
        """Forgets the consumers that hold no job and have been idle for many leases
        (those of stopped processes: each process start names new ones); returns how
        many. A consumer holding a job is never forgotten."""
        ...

    async def depth(self) -> int:
        """Jobs queued and not yet claimed by any consumer (the metrics' queue depth)."""
        ...

    async def close(self) -> None: ...


class CancelChannel(Protocol):
    """Tells whichever process holds a run that a client asked to cancel it. A request
    made before the holder starts waiting is not lost: it stands until `forget`."""

    async def cancel(self, run_id: str) -> None: ...

    async def cancelled(self, run_id: str) -> None:
        """Returns once a cancel of the run is requested (at once if one stands)."""
        ...

    async def forget(self, run_id: str, asked: bool = True) -> None:
        """Drops the run's cancel request. `asked` False: the caller knows none was made
        through the store (the run never became cancelling), so a transport need only
        drop one it heard of itself."""
        ...

    async def close(self) -> None: ...
