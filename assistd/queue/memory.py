"""The embedded shape: an in-process run queue, event log and cancel signals."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

from assistd.core.events import FINAL_EVENTS, RunEvent
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


@dataclass
class _RunLog:
    events: list[RunEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    finished_at: float | None = None


class MemoryEventBus:
    """Per-run event logs kept in memory for `retention_s` after the run's last final event,
    so a client reconnecting with Last-Event-ID misses nothing."""

    def __init__(self, retention_s: float = 600.0) -> None:
        self._logs: dict[str, _RunLog] = {}
        self._retention_s = retention_s
        self._last_sweep = time.monotonic()

    def _log(self, run_id: str) -> _RunLog:
        log = self._logs.get(run_id)
        if log is None:
            log = self._logs[run_id] = _RunLog()
        return log

    async def publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        log = self._log(run_id)
        event = RunEvent(seq=len(log.events) + 1, name=name, data=data)
        log.events.append(event)
        log.finished_at = time.monotonic() if name in FINAL_EVENTS else None
        log.changed.set()
        log.changed = asyncio.Event()
        self._expire_old()
        return event

    async def last_seq(self, run_id: str) -> int:
        log = self._logs.get(run_id)
        return len(log.events) if log else 0

    async def read(self, run_id: str, after_seq: int, timeout_s: float) -> list[RunEvent]:
        log = self._log(run_id)
        if len(log.events) <= after_seq:
            try:
                await asyncio.wait_for(log.changed.wait(), timeout_s)
            except TimeoutError:
                return []
        return log.events[after_seq:]

    def _expire_old(self) -> None:
        now = time.monotonic()
        if now - self._last_sweep < 1.0:
            return
        self._last_sweep = now
        stale = [
            run_id
            for run_id, log in self._logs.items()
            if log.finished_at is not None and now - log.finished_at > self._retention_s
        ]
        for run_id in stale:
            del self._logs[run_id]

    async def close(self) -> None:
        self._logs.clear()
