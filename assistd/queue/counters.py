"""Fixed-window counters for the quotas (core/quotas.py): in memory in the embedded shape,
in Redis when scaled out, so that every API replica counts against the same limits.

`hit(names, ttl_s)` adds one to each named counter and returns the new counts; a counter
starts at 0 and lives `ttl_s` seconds (the names carry their window, so an expired one is
never read again). On Redis that is INCR + EXPIRE per name, all in one round trip.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Protocol

from redis.asyncio import Redis

PRUNE_AT = 4096  # counters held in memory before the expired ones are dropped


class Counters(Protocol):
    async def hit(self, names: Sequence[str], ttl_s: int) -> list[int]: ...


class MemoryCounters:
    def __init__(self) -> None:
        self._counts: dict[str, tuple[float, int]] = {}  # name -> (expires, count)

    async def hit(self, names: Sequence[str], ttl_s: int) -> list[int]:
        now = time.monotonic()
        if len(self._counts) > PRUNE_AT:
            self._counts = {n: v for n, v in self._counts.items() if v[0] > now}
        counts = []
        for name in names:
            expires, count = self._counts.get(name, (0.0, 0))
            if expires <= now:
                expires, count = now + ttl_s, 0
            self._counts[name] = (expires, count + 1)
            counts.append(count + 1)
        return counts


class RedisCounters:
    def __init__(self, client: Redis, prefix: str) -> None:
        self.client = client
        self.prefix = f"{prefix}quota:"

    async def hit(self, names: Sequence[str], ttl_s: int) -> list[int]:
        async with self.client.pipeline(transaction=False) as pipe:  # one round trip
            for name in names:
                pipe.incr(self.prefix + name)
                pipe.expire(self.prefix + name, ttl_s)
            replies = await pipe.execute()
        return [int(count) for count in replies[::2]]
