"""The lock that queues this process's SQLite writers.

asyncio.Lock hands the lock to the writer at the head of its queue and makes every
newcomer wait behind it, even while the lock lies free. A woken writer only runs on a
later pass of the event loop, so once a queue forms each write costs a whole loop pass,
and under a streaming load a pass runs thousands of callbacks: runs waited seconds, in
single file, to be created. Almost every write transaction runs from BEGIN to COMMIT
without yielding to the loop, so the lock is nearly always free when a writer comes:
here a newcomer takes a free lock at once, and a woken writer that finds it taken (by
such a newcomer) waits again at the head of the queue. A writer that holds the lock
across an await (one waiting out another process's lock) still excludes every other.
"""

from __future__ import annotations

import asyncio
from collections import deque


class WriterLock:
    def __init__(self) -> None:
        self._held = False
        self._waiters: deque[asyncio.Future[None]] = deque()

    def locked(self) -> bool:
        return self._held

    async def acquire(self) -> None:
        if not self._held:
            self._held = True
            return
        front = False  # a woken writer that lost the lock waits at the head, not the back
        while True:
            waiter = asyncio.get_running_loop().create_future()
            if front:
                self._waiters.appendleft(waiter)
            else:
                self._waiters.append(waiter)
            try:
                await waiter
            except BaseException:
                if waiter.done() and not waiter.cancelled():
                    self._wake()  # woken, but leaving: the next writer goes instead
                else:
                    self._waiters.remove(waiter)
                raise
            if not self._held:
                self._held = True
                return
            front = True

    def release(self) -> None:
        self._held = False
        self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return
