"""Every transport contract test runs on each implementation: in process and on Redis."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from redis.asyncio import Redis

from assistd.core.events import EventBus
from assistd.queue.base import CancelChannel, LeasedRunQueue
from assistd.queue.memory import MemoryCancelSignals, MemoryEventBus, MemoryRunQueue
from assistd.queue.redis import RedisCancelChannel, RedisEventBus, RedisRunQueue, connect
from tests.support.redis import REDIS_URL, fresh_prefix, redis_or_skip


@dataclass
class Transport:
    """Makes the transport's parts; on Redis each call is another connection's view of
    the same keys, as another process would have."""

    client: Redis | None
    prefix: str
    made: list[EventBus] = field(default_factory=list)  # closed after the test

    def queues(self, count: int, lease_s: float, stream: str = "runs") -> list[LeasedRunQueue]:
        """`stream`: on Redis, the queue's stream (the ingestion queue's is `ingest`)."""
        if self.client is None:
            return [MemoryRunQueue(lease_s)] * count
        return [RedisRunQueue(self.client, self.prefix, lease_s, stream) for _ in range(count)]

    def buses(
        self, count: int, retention_s: float = 600.0, max_events: int = 10_000
    ) -> list[EventBus]:
        if self.client is None:
            return [MemoryEventBus(retention_s, max_events=max_events)] * count
        buses: list[EventBus] = [
            RedisEventBus(self.client, self.prefix, retention_s, max_events) for _ in range(count)
        ]
        self.made += buses
        return buses

    def small_pool_bus(self, max_connections: int) -> tuple[EventBus, EventBus, Redis | None]:
        """A writer, and a reader on a client of its own whose pool holds at most
        `max_connections` (the caller closes that client)."""
        if self.client is None:
            bus = MemoryEventBus(600.0)
            return bus, bus, None
        client = connect(REDIS_URL, max_connections=max_connections)
        writer = RedisEventBus(self.client, self.prefix)
        self.made.append(writer)
        return writer, RedisEventBus(client, self.prefix), client

    def cancel_channels(self, count: int) -> list[CancelChannel]:
        if self.client is None:
            return [MemoryCancelSignals()] * count
        return [RedisCancelChannel(self.client, self.prefix) for _ in range(count)]


@pytest.fixture(params=["memory", "redis"])
async def transport(request: pytest.FixtureRequest) -> AsyncIterator[Transport]:
    if request.param == "memory":
        yield Transport(None, "")
        return
    client = await redis_or_skip()
    try:
        async for prefix in fresh_prefix(client):
            made = Transport(client, prefix)
            yield made
            for bus in made.made:  # their shared readers hold connections
                await bus.close()
    finally:
        await client.aclose()
