"""The embedded shape: an in-process run queue, event log and cancel signals."""

from __future__ import annotations

import asyncio
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from assistd.core.events import FINAL_EVENTS, EventLogGone, MessageDelta, RunEvent, StepDelta
from assistd.core.objects import Message
from assistd.queue.base import RunJob


class MemoryRunQueue:
    def __init__(self) -> None:
        self._jobs: asyncio.Queue[RunJob] = asyncio.Queue()

    async def enqueue(self, job: RunJob) -> None:
        self._jobs.put_nowait(job)

    async def take(self) -> RunJob:
        return await self._jobs.get()

    async def close(self) -> None:
        return None


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


# What an event costs in memory beyond its text: the event, its payload object, the
# sequence number and the log's slot (about 150 bytes measured for a token delta).
EVENT_OVERHEAD = 200
OBJECT_COST = 1024  # a run, step or message object, beside any text it carries


def event_cost(event: RunEvent) -> int:
    """An estimate of the bytes an event holds, counting the text it carries."""
    data = event.data
    if isinstance(data, MessageDelta):
        return EVENT_OVERHEAD + sys.getsizeof(data.text)
    if isinstance(data, Message):
        return OBJECT_COST + sum(sys.getsizeof(text) for text in _texts(data))
    if isinstance(data, StepDelta):
        return EVENT_OVERHEAD + sum(len(str(call)) for call in data.tool_calls)
    return OBJECT_COST


def _texts(message: Message) -> list[str]:
    parts = (part.get("text") for part in message.content if isinstance(part, dict))
    return [t["value"] for t in parts if isinstance(t, dict) and isinstance(t.get("value"), str)]


@dataclass
class _RunLog:
    events: list[RunEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None
    size: int = 0  # estimated bytes, see event_cost

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class MemoryEventBus:
    """Per-run event logs kept in memory, so a client reconnecting with Last-Event-ID
    misses nothing. A log is dropped `retention_s` after the run's last final event, or
    sooner, oldest finished first, while all logs together exceed `max_bytes` (a log still
    being written is never dropped)."""

    def __init__(self, retention_s: float = 600.0, max_bytes: int = 64 * 1024 * 1024) -> None:
        self._logs: dict[str, _RunLog] = {}
        self._finished: dict[str, None] = {}  # finished logs, oldest finish first
        self._retention_s = retention_s
        self._max_bytes = max_bytes
        self._size = 0

    @property
    def size(self) -> int:
        """Estimated bytes held by every log."""
        return self._size

    async def publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        event = RunEvent(seq=len(log.events) + 1, name=name, data=data)
        log.events.append(event)
        cost = event_cost(event)
        log.size += cost
        self._size += cost
        self._finished.pop(run_id, None)
        if name in FINAL_EVENTS:
            log.finished_at = time.monotonic()
            self._finished[run_id] = None
        else:
            log.finished_at = None
        log.wake()
        self._drop_old()
        return event

    async def last_seq(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        return len(log.events) if log else 0

    async def read(
        self, run_id: str, after_seq: int, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        log = self._logs.get(run_id)
        if log is None:
            raise EventLogGone(run_id)
        if len(log.events) <= after_seq:
            try:
                await asyncio.wait_for(log.changed.wait(), timeout_s)
            except TimeoutError:
                return []
            if self._logs.get(run_id) is not log:
                raise EventLogGone(run_id)
        return log.events[after_seq : after_seq + limit]

    def wake_readers(self) -> None:
        for log in self._logs.values():
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
                return
            del self._finished[run_id]
            del self._logs[run_id]
            self._size -= log.size
            log.wake()  # a reader still waiting on it learns it is gone

    async def close(self) -> None:
        self._logs.clear()
        self._finished.clear()
        self._size = 0
