"""The distributed shape's transport on Redis Streams: the leased run queue (a consumer
group), per-run event logs (a stream each) and cancel signals (a key plus pub/sub).

Keys, all under one prefix: `runs` (the job stream, group `workers`), `events:<run>`,
`cancel:<run>` and the channel `cancels`. Nothing here is used unless `redis_url` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any, cast

from redis.asyncio import Redis
from redis.asyncio.client import PubSub
from redis.exceptions import ResponseError

from assistd.core.events import FINAL_EVENTS, EventLogGone, RunEvent
from assistd.queue.base import DEFAULT_LEASE_S, Lease, RunJob
from assistd.queue.codec import decode_event, encode_event

GROUP = "workers"
PRUNE_IDLE_LEASES = 20  # a consumer idle this many leases, holding nothing, is forgotten

# Ownership is checked and changed in one step, so a consumer whose job was taken over
# can neither win it back by heartbeating nor ack it out from under the new holder.
_HEARTBEAT = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XCLAIM', KEYS[1], ARGV[1], ARGV[3], 0, ARGV[2], 'JUSTID')
return 1
"""
_ACK = """
local p = redis.call('XPENDING', KEYS[1], ARGV[1], ARGV[2], ARGV[2], 1)
if #p == 0 or p[1][2] ~= ARGV[3] then return 0 end
redis.call('XACK', KEYS[1], ARGV[1], ARGV[2])
redis.call('XDEL', KEYS[1], ARGV[2])
return 1
"""
# Consumers holding no job and idle past ARGV[2] ms are deleted, each checked and
# deleted in one step: XGROUP DELCONSUMER drops a consumer's pending entries with it, and
# a job dropped so would never be delivered again.
_PRUNE = """
local removed = 0
for _, consumer in ipairs(redis.call('XINFO', 'CONSUMERS', KEYS[1], ARGV[1])) do
  local f = {}
  for i = 1, #consumer, 2 do f[consumer[i]] = consumer[i + 1] end
  if f['pending'] == 0 and f['idle'] > tonumber(ARGV[2]) then
    redis.call('XGROUP', 'DELCONSUMER', KEYS[1], ARGV[1], f['name'])
    removed = removed + 1
  end
end
return removed
"""
# An event's stream id is `<seq>-0`, seq counting from 1; a finished run's stream expires.
_APPEND = """
local last = redis.call('XREVRANGE', KEYS[1], '+', '-', 'COUNT', 1)
local seq = 1
if #last > 0 then seq = tonumber(string.match(last[1][1], '^(%d+)')) + 1 end
redis.call('XADD', KEYS[1], 'MAXLEN', ARGV[1], seq .. '-0', 'e', ARGV[2])
if ARGV[3] == '1' then redis.call('EXPIRE', KEYS[1], ARGV[4])
else redis.call('PERSIST', KEYS[1]) end
return seq
"""


def connect(url: str, longest_block_s: float = 15.0) -> Redis:
    """`longest_block_s`: the longest blocking read made on the connections (a stream's
    XREAD waits up to sse_heartbeat_s, a claim's XREADGROUP lease_s / 2). redis-py's
    default read timeout (5 s) is shorter: its TimeoutError cut every stream whose run
    waited 5 s for a new worker. A read silent for longer than the longest block plus a
    margin still fails, so a dead connection is not waited on for ever."""
    timeout = longest_block_s + 10.0
    return Redis.from_url(url, decode_responses=True, socket_timeout=timeout)


class RedisRunQueue:
    """base.LeasedRunQueue on a consumer group: XREADGROUP delivers, XAUTOCLAIM takes over
    jobs idle past the lease, a heartbeat resets the idle time (XCLAIM JUSTID)."""

    def __init__(self, client: Redis, prefix: str, lease_s: float = DEFAULT_LEASE_S) -> None:
        self.lease_s = lease_s
        # Far past a lease: a live process's idle slot may wait several leases between
        # reads (its claimer serves one slot at a time), and a consumer deleted while
        # live is made again by its next read.
        self.idle_consumer_s = PRUNE_IDLE_LEASES * lease_s
        self._r = client
        self._stream = f"{prefix}runs"
        self._group_ready = False
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._ack = client.register_script(_ACK)
        self._prune = client.register_script(_PRUNE)

    async def enqueue(self, job: RunJob) -> None:
        fields = {"v": "1", "w": job.workspace_id, "t": job.thread_id, "r": job.run_id}
        if job.leg is not None:
            fields["l"] = str(job.leg)
        await self._r.xadd(self._stream, cast(Any, fields))

    async def _ensure_group(self) -> None:
        if self._group_ready:
            return
        try:
            await self._r.xgroup_create(self._stream, GROUP, id="0", mkstream=True)
        except ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise
        self._group_ready = True

    async def claim(self, consumer: str, timeout_s: float | None = None) -> Lease | None:
        await self._ensure_group()
        loop = asyncio.get_running_loop()
        end = None if timeout_s is None else loop.time() + timeout_s
        while (lease := await self._take_over(consumer)) is None:
            # Block at most half a lease, so lapsed jobs are noticed in time.
            block = self.lease_s / 2
            if end is not None:
                if (remaining := end - loop.time()) <= 0:
                    return None
                block = min(block, remaining)
            reply: Any = await self._r.xreadgroup(
                GROUP, consumer, {self._stream: ">"}, count=1, block=max(1, int(block * 1000))
            )
            for _stream, entries in reply or []:
                for entry_id, fields in entries:
                    return Lease(_job(fields), entry_id, consumer)
        return lease

    async def _take_over(self, consumer: str) -> Lease | None:
        idle_ms = int(self.lease_s * 1000)
        cursor = "0-0"
        while True:
            reply = await self._r.xautoclaim(
                self._stream, GROUP, consumer, idle_ms, start_id=cursor, count=1
            )
            cursor, entries = reply[0], reply[1]
            for entry_id, fields in entries:
                if fields:  # an entry deleted meanwhile comes back empty
                    return Lease(_job(fields), entry_id, consumer)
            if cursor == "0-0":
                return None

    async def heartbeat(self, lease: Lease) -> bool:
        args = [GROUP, lease.token, lease.consumer]
        return bool(await self._heartbeat(keys=[self._stream], args=args))

    async def ack(self, lease: Lease) -> bool:
        return bool(await self._ack(keys=[self._stream], args=[GROUP, lease.token, lease.consumer]))

    async def prune(self) -> int:
        await self._ensure_group()
        idle_ms = int(self.idle_consumer_s * 1000)
        return int(await self._prune(keys=[self._stream], args=[GROUP, idle_ms]))

    async def close(self) -> None:
        return None


def _job(fields: dict[str, str]) -> RunJob:
    # `l` (the run's leg) was added to version 1; a job queued before it has none.
    leg = fields.get("l")
    return RunJob(fields["w"], fields["t"], fields["r"], int(leg) if leg is not None else None)


class RedisCancelChannel:
    """base.CancelChannel: a cancel sets `cancel:<run>` (so a holder that starts waiting
    later still sees it) and is published on `cancels`, which one subscription per
    process hands to the local waiters."""

    def __init__(self, client: Redis, prefix: str, ttl_s: int = 86400) -> None:
        self._r = client
        self._prefix = prefix
        self._channel = f"{prefix}cancels"
        self._ttl_s = ttl_s
        self._waiters: dict[str, asyncio.Event] = {}
        self._pubsub: PubSub | None = None
        self._listener: asyncio.Task[None] | None = None
        self._lock = asyncio.Lock()

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}cancel:{run_id}"

    async def cancel(self, run_id: str) -> None:
        async with self._r.pipeline(transaction=True) as pipe:
            pipe.set(self._key(run_id), "1", ex=self._ttl_s)
            pipe.publish(self._channel, run_id)
            await pipe.execute()

    async def cancelled(self, run_id: str) -> None:
        await self._subscribe()
        event = self._waiters.setdefault(run_id, asyncio.Event())
        # Subscribed before looking: a cancel after the look arrives as a message.
        if await self._r.exists(self._key(run_id)):
            return
        await event.wait()

    async def forget(self, run_id: str) -> None:
        self._waiters.pop(run_id, None)
        await self._r.delete(self._key(run_id))

    async def _subscribe(self) -> None:
        async with self._lock:
            if self._pubsub is not None:
                return
            pubsub = self._r.pubsub()
            await pubsub.subscribe(self._channel)
            while True:  # the subscription is live once Redis confirms it
                message = await pubsub.get_message(timeout=5.0)
                if message is not None and message["type"] == "subscribe":
                    break
            self._pubsub = pubsub
            self._listener = asyncio.create_task(self._listen(pubsub))

    async def _listen(self, pubsub: PubSub) -> None:
        async for message in pubsub.listen():
            if message["type"] == "message" and (event := self._waiters.get(message["data"])):
                event.set()

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._pubsub is not None:
            await self._pubsub.aclose()  # type: ignore[no-untyped-call]
        self._pubsub = self._listener = None


class RedisEventBus:
    """core.events.EventBus on one stream per run: events as versioned JSON (codec.py),
    at most `max_events` kept a run (MAXLEN), a stream expiring `retention_s` after the
    run's last final event. A reader behind the kept events is told the log is gone."""

    def __init__(
        self, client: Redis, prefix: str, retention_s: float = 600.0, max_events: int = 10_000
    ) -> None:
        self._r = client
        self._prefix = prefix
        self._retention_s = max(1, round(retention_s))
        self._max_events = max_events
        self._append = client.register_script(_APPEND)
        self._wake = asyncio.Event()

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}events:{run_id}"

    async def publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        final = "1" if name in FINAL_EVENTS else "0"
        args: list[str | int | bytes] = [
            self._max_events, encode_event(name, data), final, self._retention_s
        ]  # fmt: skip
        seq = await self._append(keys=[self._key(run_id)], args=args)
        return RunEvent(seq=int(seq), name=name, data=data)

    async def last_seq(self, run_id: str) -> int:
        last: Any = await self._r.xrevrange(self._key(run_id), count=1)
        return _seq(last[0][0]) if last else 0

    async def read(
        self, run_id: str, after_seq: int, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        key = self._key(run_id)
        entries = await self._r.xrange(key, min=f"{after_seq + 1}-0", count=limit)
        if entries:
            return _events(run_id, after_seq, entries)
        if not await self._r.exists(key):
            raise EventLogGone(run_id)
        reply = await self._follow(key, after_seq, timeout_s, limit)
        return _events(run_id, after_seq, reply[0][1]) if reply else []

    async def _follow(self, key: str, after_seq: int, timeout_s: float, limit: int) -> Any:
        """XREAD BLOCK, given up early when wake_readers is called."""
        block = max(1, int(timeout_s * 1000))
        reading = asyncio.ensure_future(
            self._r.xread({key: f"{after_seq}-0"}, count=limit, block=block)
        )
        woken = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({reading, woken}, return_when=asyncio.FIRST_COMPLETED)
        woken.cancel()
        if not reading.done():
            reading.cancel()  # redis-py drops that connection rather than reuse it mid-reply
            with contextlib.suppress(asyncio.CancelledError):
                await reading
            return None
        return reading.result()

    def wake_readers(self) -> None:
        self._wake.set()
        self._wake = asyncio.Event()

    async def close(self) -> None:
        self.wake_readers()


def _seq(entry_id: str) -> int:
    return int(entry_id.split("-", 1)[0])


def _events(run_id: str, after_seq: int, entries: list[Any]) -> list[RunEvent]:
    if _seq(entries[0][0]) != after_seq + 1:  # the reader's next events were trimmed away
        raise EventLogGone(run_id)
    events = []
    for entry_id, fields in entries:
        name, data = decode_event(fields["e"])
        events.append(RunEvent(seq=_seq(entry_id), name=name, data=data))
    return events
