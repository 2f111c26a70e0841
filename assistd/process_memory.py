"""Giving memory back to the system once a load is over.

The interpreter's own allocator (pymalloc) takes memory from the system in arenas of
1 MiB and gives an arena back only when every block in it is free. Under a streaming load
the server's arenas fill with what each request makes; after it, the few objects that
outlive the load (a finished run's log, a cache entry, a kept connection) lie scattered
over nearly all of them, and RSS stayed 60 % above idle however little was still alive
(bench/README.md). The C library's allocator keeps blocks in pages and, asked with
`malloc_trim`, gives back every free page in the middle of its heaps too, so with it RSS
falls back to the pages that still hold something: the fewer objects outlive a load,
the fewer those are (a finished run's log is one object, memory_log.SealedLog).

So the long-running commands run on the C allocator (`assistd.launch`), and once the
process has been busy and is quiet again the `MemorySettler` collects the cycles left
behind and trims the heap.
"""

from __future__ import annotations

import asyncio
import ctypes
import gc
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[], object] | None:
    """glibc's malloc_trim(0), where the C library has it."""
    try:
        trim = ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    return lambda: trim(0)


@dataclass
class Quietness:
    """Decides from the process's CPU time, read every `interval_s`, when to settle: after
    a busy spell (an interval at `busy_share` of a core or more), once it has been quiet
    for each of `settle_after` intervals. The later settles give back what outlived the
    first for a while: kept model connections (5 s), finished runs' logs (their
    retention, 60 s by default)."""

    interval_s: float = 1.0
    busy_share: float = 0.2
    quiet_share: float = 0.05
    settle_after: tuple[int, ...] = (2, 8, 64)
    _busy: bool = False
    _quiet: int = 0

    def settle_now(self, cpu_s: float) -> bool:
        """Whether to settle after this interval, which used `cpu_s` of CPU."""
        share = cpu_s / self.interval_s
        if share >= self.busy_share:
            self._busy, self._quiet = True, 0
            return False
        self._quiet = self._quiet + 1 if share < self.quiet_share else 0
        if not self._busy or self._quiet not in self.settle_after:
            return False
        if self._quiet == self.settle_after[-1]:
            self._busy = False
        return True


class MemorySettler:
    """After each busy spell: a full collection (the cycles a request leaves behind wait
    for one, and young and middle collections are rare by design: runtime.py), then the
    C heap trimmed. A pause of tens of ms, taken only while the process is idle."""

    def __init__(self, *releases: Callable[[], None], quietness: Quietness | None = None) -> None:
        self._releases = releases  # caches to empty first (the store's)
        self._quietness = quietness or Quietness()
        self._trim = _malloc_trim()
        self._task: asyncio.Task[None] | None = None
        self.settles = 0

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._watch())

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _watch(self) -> None:
        interval = self._quietness.interval_s
        last = time.process_time()
        while True:
            await asyncio.sleep(interval)
            now = time.process_time()
            if self._quietness.settle_now(now - last):
                self.settle()
            last = time.process_time()  # the settle's own CPU is not the load's

    def settle(self) -> None:
        started = time.perf_counter()
        for release in self._releases:
            try:
                release()
            except Exception:  # a cache kept is no reason to keep the rest
                log.exception("memory settle: could not release %r", release)
        freed = gc.collect()
        if self._trim is not None:
            self._trim()
        self.settles += 1
        log.debug(
            "memory settled: %d objects collected, heap trimmed, in %.1f ms",
            freed, (time.perf_counter() - started) * 1000,
        )  # fmt: skip
