"""The embedded shape: an in-process run queue, event log and cancel signals."""

from __future__ import annotations

import asyncio
import itertools
import logging
import math
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from assistd.core.events import FINAL_EVENTS, EventLogGone, Follower, RunEvent
from assistd.queue.base import DEFAULT_LEASE_S, Job, Lease
from assistd.queue.memory_log import EventLog, SealedLog

logger = logging.getLogger("assistd.bus")


@dataclass(slots=True)
class _Held:
    job: Job
    consumer: str
    deadline: float  # time.monotonic() past which another consumer may take the job over


class MemoryRunQueue:
    """The leased run queue in one process (see base.LeasedRunQueue)."""

    def __init__(self, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.lease_s = lease_s
        self._ready: deque[tuple[str, Job]] = deque()
        self._held: dict[str, _Held] = {}  # by token, oldest lease first
        # Claimers waiting for a job, oldest first. A new job wakes one of them, not all:
        # with hundreds of idle workers, waking all for each run cost milliseconds.
        self._waiters: dict[asyncio.Future[None], None] = {}
        self._tokens = itertools.count(1)

    async def enqueue(self, job: Job) -> None:
        self._ready.append((str(next(self._tokens)), job))
        self._wake_one()

    async def depth(self) -> int:
        return len(self._ready)

    async def claim(self, consumer: str, timeout_s: float | None = None) -> Lease | None:
        end = None if timeout_s is None else time.monotonic() + timeout_s
        while (lease := self._lease_next(consumer)) is None:
            now = time.monotonic()
            waits = [held.deadline - now for held in self._held.values()]
            if end is not None:
                if now >= end:
                    return None
                waits.append(end - now)
            await self._wait(max(min(waits), 0.001) if waits else None)
        if self._ready:  # more jobs than woken claimers (e.g. one was cancelled): pass it on
            self._wake_one()
        return lease

    async def _wait(self, timeout_s: float | None) -> None:
        waiter = asyncio.get_running_loop().create_future()
        self._waiters[waiter] = None
        try:
            async with asyncio.timeout(timeout_s):
                await waiter
        except TimeoutError:
            pass
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self._wake_one()  # woken for a job, but stopped: another claimer takes it
            raise
        finally:
            self._waiters.pop(waiter, None)

    def _lease_next(self, consumer: str) -> Lease | None:
        now = time.monotonic()
        for token, held in self._held.items():
            if held.deadline <= now:  # lapsed: its consumer stopped heartbeating
                del self._held[token]
                self._held[token] = _Held(held.job, consumer, now + self.lease_s)
                return Lease(held.job, token, consumer)
        if not self._ready:
            return None
        token, job = self._ready.popleft()
        self._held[token] = _Held(job, consumer, now + self.lease_s)
        return Lease(job, token, consumer)

    async def heartbeat(self, lease: Lease) -> bool:
        held = self._held.get(lease.token)
        if held is None or held.consumer != lease.consumer:
            return False
        held.deadline = time.monotonic() + self.lease_s
        return True

    async def ack(self, lease: Lease) -> bool:
        held = self._held.get(lease.token)
        if held is None or held.consumer != lease.consumer:
            return False
        del self._held[lease.token]
        return True

    async def prune(self) -> int:
        return 0  # consumers here are only names on leases: nothing outlives its lease

    async def take(self) -> Job:
        """The worker pool's form until it moves to leases: claimed and acked at once, so
        a job is delivered at most once, as before."""
        lease = await self.claim("embedded")
        assert lease is not None  # claim without a timeout waits for a job
        await self.ack(lease)
        return lease.job

    def _wake_one(self) -> None:
        while self._waiters:
            waiter = next(iter(self._waiters))
            del self._waiters[waiter]
            if not waiter.done():
                waiter.set_result(None)
                return

    async def close(self) -> None:
        while self._waiters:
            self._wake_one()


class MemoryCancelSignals:
    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    def _event(self, run_id: str) -> asyncio.Event:
        event = self._events.get(run_id)
        if event is None:
            event = self._events[run_id] = asyncio.Event()
        return event

    def request(self, run_id: str) -> None:
        self._event(run_id).set()

    async def wait(self, run_id: str) -> None:
        await self._event(run_id).wait()

    def clear(self, run_id: str) -> None:
        self._events.pop(run_id, None)

    # base.CancelChannel, the form every transport offers
    async def cancel(self, run_id: str) -> None:
        self.request(run_id)

    async def cancelled(self, run_id: str) -> None:
        await self.wait(run_id)

    async def forget(self, run_id: str, asked: bool = True) -> None:
        self.clear(run_id)

    async def close(self) -> None:
        return None


class _Sleepers:
    """Reads waiting for their log's next event, each until its deadline, all timed by
    one timer. An `asyncio.timeout` and an `asyncio.Event` a wait (a timer, a task
    lookup, an event bound to the loop under a lock) were about 8 % of the server's CPU
    under 1,000 streams, each of whose deltas ends a wait. A wait may end up to SLACK_S
    past its deadline: the timer then serves the waits close behind it too."""

    SLACK_S = 0.05

    def __init__(self) -> None:
        self._deadlines: dict[asyncio.Future[None], float] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf
        self._loop: asyncio.AbstractEventLoop | None = None

    def wait(self, timeout_s: float) -> asyncio.Future[None]:
        """A future that is done by `timeout_s` at the latest (its result None)."""
        loop = self._loop
        if loop is None or not loop.is_running():  # a new loop (tests): the old one's timer
            # is gone. Asked only then: asking is a getpid() system call on Python 3.11.
            loop = asyncio.get_running_loop()
            self._deadlines, self._timer, self._timer_at, self._loop = {}, None, math.inf, loop
        future: asyncio.Future[None] = loop.create_future()
        deadline = loop.time() + timeout_s
        self._deadlines[future] = deadline
        if deadline < self._timer_at:
            self._arm(deadline)
        return future

    def forget(self, future: asyncio.Future[None]) -> None:
        self._deadlines.pop(future, None)

    def _arm(self, at: float) -> None:
        assert self._loop is not None
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = self._loop.call_at(at, self._expire), at

    def _expire(self) -> None:
        assert self._loop is not None
        self._timer, self._timer_at = None, math.inf
        late = self._loop.time() + self.SLACK_S
        nearest = math.inf
        for future, deadline in list(self._deadlines.items()):
            if deadline <= late:
                del self._deadlines[future]
                if not future.done():
                    future.set_result(None)
            else:
                nearest = min(nearest, deadline)
        if nearest < math.inf:
            self._arm(nearest)


_Take = Callable[[RunEvent], bool]


class _RunLog(EventLog):
    """A run's events, and the reads waiting for more, each with the follower's `take`
    (None for a plain read). A finished run's log becomes a SealedLog (memory_log), which
    is all its retention keeps; `sealed_as` tells a read woken by the final event where
    the log went."""

    __slots__ = ("finished_at", "readers", "sealed_as")

    def __init__(self, sealed: SealedLog | None = None) -> None:
        super().__init__()
        self.readers: dict[asyncio.Future[None], _Take | None] | None = None
        self.finished_at: float | None = None
        self.sealed_as: SealedLog | None = None
        if sealed is not None:  # reopened: a read waits on it, or the run goes on
            self.reopen(sealed)
            self.finished_at = sealed.finished_at

    def wake(self, event: RunEvent | None = None) -> None:
        """Ends the waiting reads; a follower that takes `event` goes on waiting (and a
        token taken by every reader allocates nothing here)."""
        readers = self.readers
        if not readers:
            return
        ended: list[asyncio.Future[None]] | None = None
        for reader, take in readers.items():
            if reader.done() or take is None or event is None or not _taken(take, event):
                ended = ended or []
                ended.append(reader)
        for reader in ended or ():
            del readers[reader]
            if not reader.done():
                reader.set_result(None)


def _taken(take: _Take, event: RunEvent) -> bool:
    try:
        return take(event)
    except Exception:  # a follower's failure must not fail the publisher
        logger.exception("a stream could not take event %s of its run", event.seq)
        return False


class MemoryEventBus:
    """Per-run event logs kept in memory, so a client reconnecting with Last-Event-ID
    misses nothing. A log is dropped `retention_s` after the run's last final event, or
    sooner, oldest finished first, while all logs together exceed `max_bytes` (a log still
    being written is never dropped). With `max_events`, a log keeps only its newest events
    (as a Redis stream's MAXLEN does), and a reader behind them is told the log is gone."""

    def __init__(
        self,
        retention_s: float = 600.0,
        max_bytes: int = 64 * 1024 * 1024,
        max_events: int | None = None,
    ) -> None:
        self._max_events = max_events
        self._logs: dict[str, _RunLog | SealedLog] = {}
        self._finished: dict[str, None] = {}  # finished logs, oldest finish first
        self._retention_s = retention_s
        self._max_bytes = max_bytes
        self._size = 0
        # Drops the oldest finished log when its retention ends: with no later event or
        # read (a load over, the server idle) nothing else would, and its memory stayed.
        self._sweep: asyncio.TimerHandle | None = None
        self._sleepers = _Sleepers()

    @property
    def size(self) -> int:
        """Estimated bytes held by every log."""
        return self._size

    async def publish_many(self, events: Sequence[tuple[str, str, Any]]) -> None:
        for run_id, name, data in events:
            await self.publish(run_id, name, data)

    async def publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        return self._publish(run_id, name, data)

    def publish_soon(self, run_id: str, name: str, data: Any) -> None:
        # In the log at once, and no future to say so: making one asks for the running
        # loop, a getpid() system call on Python 3.11 (server CPU x0.97 under 1,000
        # streams without it).
        self._publish(run_id, name, data)

    def _publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        log = self._open(run_id)
        event = RunEvent(seq=log.last_seq + 1, name=name, data=data)
        self._size += log.append(event)
        if self._max_events is not None and len(log) > self._max_events:
            self._size += log.trim(len(log) - self._max_events)
        self._finished.pop(run_id, None)
        log.finished_at = None
        log.wake(event)
        if name in FINAL_EVENTS:
            self._seal(run_id, log)
        if name in FINAL_EVENTS or self._size > self._max_bytes:
            self._drop_old()  # else nothing to drop: the sweep drops logs past retention
        return event

    def _open(self, run_id: str) -> _RunLog:
        """The run's log, ready for more events (a sealed one opened again)."""
        log = self._logs.get(run_id)
        if isinstance(log, _RunLog):
            return log
        opened = self._logs[run_id] = _RunLog(log)
        self._size += opened.size - (log.size if log is not None else 0)
        return opened

    def _seal(self, run_id: str, log: _RunLog) -> None:
        """Keeps the finished run's log as one object: no live reader needs its events
        as published, and a read woken by the final event finds it through sealed_as."""
        log.wake()  # every read ends at a final event
        log.finished_at = time.monotonic()
        self._finished[run_id] = None
        held = log.size
        try:
            sealed = log.sealed(log.finished_at)
        except TypeError:  # data the codec cannot write: the log is kept as it is
            logger.warning("run %s: its event log could not be sealed", run_id, exc_info=True)
            self._size += log.size - held  # packed meanwhile
            return
        log.sealed_as = sealed
        self._size += sealed.size - held
        self._logs[run_id] = sealed

    async def last_seq(self, run_id: str) -> int:
        self._drop_old()
        log = self._logs.get(run_id)
        return log.last_seq if log else 0

    async def read(
        self, run_id: str, after_seq: int, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        log = self._live_log(run_id)
        if log.last_seq <= after_seq and timeout_s > 0:
            log = await self._wait(run_id, log, timeout_s, None)
        return self._after(run_id, log, after_seq, limit)

    async def follow(
        self, run_id: str, follower: Follower, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        log = self._live_log(run_id)
        if log.last_seq <= follower.seq and timeout_s > 0:
            log = await self._wait(run_id, log, timeout_s, follower.take)
        return self._after(run_id, log, follower.seq, limit)

    def _live_log(self, run_id: str) -> _RunLog | SealedLog:
        log = self._logs.get(run_id)
        if log is not None and log.finished_at is not None:
            self._drop_old()  # past its retention, a log is gone though the sweep is late
            log = self._logs.get(run_id)
        if log is None:
            raise EventLogGone(run_id)
        return log

    async def _wait(
        self, run_id: str, log: _RunLog | SealedLog, timeout_s: float, take: _Take | None
    ) -> _RunLog | SealedLog:
        """Waits for the run's next event; returns the log to read it from."""
        waiting = self._open(run_id) if isinstance(log, SealedLog) else log
        woken = self._sleepers.wait(timeout_s)
        if waiting.readers is None:
            waiting.readers = {}
        waiting.readers[woken] = take
        try:
            await woken
        finally:
            self._sleepers.forget(woken)
            if waiting.readers is not None:  # timed out or cancelled, not woken by the log
                waiting.readers.pop(woken, None)
        now = self._logs.get(run_id)
        if now is None or (now is not waiting and now is not waiting.sealed_as):
            raise EventLogGone(run_id)
        return now

    def _after(
        self, run_id: str, log: _RunLog | SealedLog, after_seq: int, limit: int
    ) -> list[RunEvent]:
        if after_seq < log.trimmed:  # the reader's next events were trimmed away
            raise EventLogGone(run_id)
        return log.events_after(after_seq, limit)

    def wake_readers(self) -> None:
        for log in self._logs.values():
            if isinstance(log, _RunLog):
                log.wake()

    def _drop_old(self) -> None:
        """Drops finished logs, oldest first, while the bus is over its budget or they
        are past their retention."""
        now = time.monotonic()
        while self._finished:
            run_id = next(iter(self._finished))
            log = self._logs[run_id]
            assert log.finished_at is not None
            if self._size <= self._max_bytes and now - log.finished_at <= self._retention_s:
                break
            del self._finished[run_id]
            del self._logs[run_id]
            self._size -= log.size
            if isinstance(log, _RunLog):
                log.wake()  # a reader still waiting on it learns it is gone
        self._schedule_sweep()

    def _schedule_sweep(self) -> None:
        if self._sweep is not None or not self._finished:
            return
        oldest = self._logs[next(iter(self._finished))]
        assert oldest.finished_at is not None
        delay = oldest.finished_at + self._retention_s - time.monotonic()
        self._sweep = asyncio.get_running_loop().call_later(max(delay, 0.0) + 0.01, self._swept)

    def _swept(self) -> None:
        self._sweep = None
        self._drop_old()

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        self._logs.clear()
        self._finished.clear()
        self._size = 0
