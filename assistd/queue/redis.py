"""The distributed shape's transport on Redis Streams: the leased run queue (a consumer
group), per-run event logs (a stream each) and cancel signals (a key plus pub/sub).

Keys, all under one prefix: `runs` (the job stream, group `workers`), `ingest` (the
ingestion job stream, its own group `workers`), `events:<run>`,
`cancel:<run>` and the channel `cancels`. Nothing here is used unless `redis_url` is set.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, cast

from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.client import PubSub
from redis.exceptions import NoScriptError, ResponseError

from assistd.core.events import FINAL_EVENTS, EventLogGone, RunEvent
from assistd.queue.base import DEFAULT_LEASE_S, IngestJob, Job, Lease, RunJob
from assistd.queue.codec import decode_event, encode_event

GROUP = "workers"
PRUNE_IDLE_LEASES = 20  # a consumer idle this many leases, holding nothing, is forgotten

log = logging.getLogger("assistd.queue")

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


def connect(url: str, longest_block_s: float = 15.0, max_connections: int = 100) -> Redis:
    """`longest_block_s`: the longest blocking read made on the connections (a stream's
    XREAD waits up to sse_heartbeat_s, a claim's XREADGROUP lease_s / 2). redis-py's
    default read timeout (5 s) is shorter: its TimeoutError cut every stream whose run
    waited 5 s for a new worker. A read silent for longer than the longest block plus a
    margin still fails, so a dead connection is not waited on for ever.

    The pool blocks: a command finding all `max_connections` busy waits for one (up to
    that same bound) rather than failing, so a burst of streams opening at once queues
    for a moment instead of erroring."""
    timeout = longest_block_s + 10.0
    pool = BlockingConnectionPool.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        max_connections=max_connections,
        timeout=timeout,
    )
    return Redis.from_pool(pool)


class RedisRunQueue:
    """base.LeasedRunQueue on a consumer group: XREADGROUP delivers, XAUTOCLAIM takes over
    jobs idle past the lease, a heartbeat resets the idle time (XCLAIM JUSTID)."""

    def __init__(
        self, client: Redis, prefix: str, lease_s: float = DEFAULT_LEASE_S, stream: str = "runs"
    ) -> None:
        self.lease_s = lease_s
        # Far past a lease: a live process's idle slot may wait several leases between
        # reads (its claimer serves one slot at a time), and a consumer deleted while
        # live is made again by its next read.
        self.idle_consumer_s = PRUNE_IDLE_LEASES * lease_s
        self._r = client
        self._stream = f"{prefix}{stream}"
        self._group_ready = False
        self._next_take_over = 0.0  # loop time of the next look for lapsed jobs
        self._heartbeat = client.register_script(_HEARTBEAT)
        self._ack = client.register_script(_ACK)
        self._prune = client.register_script(_PRUNE)

    async def enqueue(self, job: Job) -> None:
        await self._r.xadd(self._stream, cast(Any, _fields(job)))

    async def depth(self) -> int:
        """The group's lag: entries added that no consumer has read yet."""
        await self._ensure_group()
        for group in await self._r.xinfo_groups(self._stream):
            name = group.get("name")
            if name in (GROUP, GROUP.encode()):
                return int(group.get("lag") or 0)
        return 0

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
        while True:
            # Lapsed jobs are looked for twice a lease, not before every claim: that
            # look is a round trip, and a busy worker claims hundreds of jobs a second.
            if loop.time() >= self._next_take_over:
                self._next_take_over = loop.time() + self.lease_s / 2
                if (lease := await self._take_over(consumer)) is not None:
                    return lease
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


def _fields(job: Job) -> dict[str, str]:
    if isinstance(job, IngestJob):
        return {"v": "1", "k": "ingest", "w": job.workspace_id, "s": job.vector_store_id,
                "f": job.file_id}  # fmt: skip
    fields = {"v": "1", "w": job.workspace_id, "t": job.thread_id, "r": job.run_id}
    if job.leg is not None:
        fields["l"] = str(job.leg)
    if job.trace is not None:
        fields["tp"] = job.trace
    return fields


def _job(fields: dict[str, str]) -> Job:
    if fields.get("k") == "ingest":
        return IngestJob(fields["w"], fields["s"], fields["f"])
    # `l` (the run's leg) was added to version 1; a job queued before it has none.
    leg = fields.get("l")
    leg_number = int(leg) if leg is not None else None
    return RunJob(fields["w"], fields["t"], fields["r"], leg_number, fields.get("tp"))


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

    async def forget(self, run_id: str, asked: bool = True) -> None:
        # A run that never became cancelling has no key, but for one whose thread was
        # deleted just as it completed (that cancel is heard here, or its key expires):
        # a round trip saved on nearly every run.
        waiter = self._waiters.pop(run_id, None)
        if asked or (waiter is not None and waiter.is_set()):
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
            await self._pubsub.aclose()  # type: ignore[no-untyped-call, unused-ignore]  # typed from redis 8.2
        self._pubsub = self._listener = None


# The shared reader's limits: events kept per followed run for the readers of this process,
# how long a run no one waits on stays followed, and the longest XREAD block (a bound on
# how late an idle follow is dropped; new follows wake the reader at once).
FOLLOW_BUFFER = 1024
FOLLOW_IDLE_S = 5.0
FOLLOW_BLOCK_MS = 5000
FOLLOW_COUNT = 256


@dataclass(slots=True, eq=False)
class _Follow:
    """One run the shared reader follows: its newest events as read from Redis."""

    run_id: str
    last: int  # the newest seq read (or the seq the follow started after)
    first: int  # the seq of events[0] (last + 1 while empty)
    events: list[RunEvent] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    readers: int = 0
    idle_since: float = 0.0
    ended: bool = False  # a final event was read: no one waits for more of this leg


class RedisEventBus:
    """core.events.EventBus on one stream per run: events as versioned JSON (codec.py),
    at most `max_events` kept a run (MAXLEN), a stream expiring `retention_s` after the
    run's last final event. A reader behind the kept events is told the log is gone.

    Waiting readers cost no connection each: one task per process follows every run that
    has (or recently had) a waiting reader with a single multi-stream XREAD BLOCK, keeps
    each run's newest events and wakes its readers, who then read them without a round
    trip. A run newly followed wakes that XREAD by an entry on this process's own `wake`
    stream, so it is re-issued with the new set at once."""

    def __init__(
        self, client: Redis, prefix: str, retention_s: float = 600.0, max_events: int = 10_000
    ) -> None:
        self._r = client
        self._prefix = prefix
        self._retention_s = max(1, round(retention_s))
        self._max_events = max_events
        self._appends = _Batched(client, _APPEND)
        self._follows: dict[str, _Follow] = {}  # by stream key
        self._added = asyncio.Event()  # a follow was added (the reader may be asleep)
        self._reader: asyncio.Task[None] | None = None
        self._reading = False  # an XREAD is in flight with the set of follows it was made with
        self._wake_sent = False
        self._wake_key = f"{prefix}wake:{secrets.token_hex(8)}"
        self._wake_id = "0-0"
        self._wakes: set[asyncio.Task[None]] = set()

    def _key(self, run_id: str) -> str:
        return f"{self._prefix}events:{run_id}"

    async def publish(self, run_id: str, name: str, data: Any) -> RunEvent:
        seq = await self._append(run_id, name, data)
        return RunEvent(seq=int(seq), name=name, data=data)

    def publish_soon(self, run_id: str, name: str, data: Any) -> asyncio.Future[Any]:
        # Queued now: the pipelines keep the order of the calls.
        return self._append(run_id, name, data)

    async def publish_many(self, events: Sequence[tuple[str, str, Any]]) -> None:
        # All queued before the first is awaited: they go out in one pipeline.
        for appended in [self._append(run_id, name, data) for run_id, name, data in events]:
            await appended

    def _append(self, run_id: str, name: str, data: Any) -> asyncio.Future[Any]:
        final = "1" if name in FINAL_EVENTS else "0"
        args: list[str | int | bytes] = [
            self._max_events, encode_event(name, data), final, self._retention_s
        ]  # fmt: skip
        return self._appends.submit(self._key(run_id), args)

    async def last_seq(self, run_id: str) -> int:
        last: Any = await self._r.xrevrange(self._key(run_id), count=1)
        return _seq(last[0][0]) if last else 0

    async def read(
        self, run_id: str, after_seq: int, timeout_s: float, limit: int = 256
    ) -> list[RunEvent]:
        key = self._key(run_id)
        follow = self._follows.get(key)
        if follow is not None and follow.first - 1 <= after_seq:
            return await self._read_followed(follow, after_seq, timeout_s, limit)
        async with self._r.pipeline(transaction=False) as pipe:  # one round trip
            pipe.xrange(key, min=f"{after_seq + 1}-0", count=limit)
            pipe.exists(key)
            entries, exists = await pipe.execute()
        if entries:
            return _events(run_id, after_seq, entries)
        if not exists:
            raise EventLogGone(run_id)
        if timeout_s <= 0:
            return []
        follow = self._follows.get(key)
        if follow is None:
            follow = self._follow(key, run_id, after_seq)
        elif follow.first - 1 > after_seq:  # followed meanwhile, from later events: look again
            return await self.read(run_id, after_seq, timeout_s, limit)
        return await self._read_followed(follow, after_seq, timeout_s, limit)

    async def _read_followed(
        self, follow: _Follow, after_seq: int, timeout_s: float, limit: int
    ) -> list[RunEvent]:
        if follow.last <= after_seq:
            if timeout_s <= 0:
                return []
            changed = follow.changed
            follow.readers += 1
            try:
                async with asyncio.timeout(timeout_s):
                    await changed.wait()
            except TimeoutError:
                return []
            finally:
                follow.readers -= 1
                follow.idle_since = asyncio.get_running_loop().time()
            if follow.last <= after_seq:  # woken by wake_readers
                return []
        if after_seq < follow.first - 1:  # more came than are kept here: read them from Redis
            return await self.read(follow.run_id, after_seq, 0.0, limit)
        start = after_seq + 1 - follow.first
        return follow.events[start : start + limit]

    def _follow(self, key: str, run_id: str, after_seq: int) -> _Follow:
        now = asyncio.get_running_loop().time()
        follow = _Follow(run_id, after_seq, after_seq + 1, idle_since=now)
        self._follows[key] = follow
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_all())
        self._added.set()
        if self._reading and not self._wake_sent:  # the XREAD in flight lacks this run
            self._wake_sent = True
            task = asyncio.create_task(self._wake_reader())
            self._wakes.add(task)
            task.add_done_callback(self._wakes.discard)
        return follow

    async def _wake_reader(self) -> None:
        try:
            async with self._r.pipeline(transaction=False) as pipe:
                pipe.xadd(self._wake_key, {"w": "1"}, maxlen=16, approximate=False)
                pipe.expire(self._wake_key, 3600)
                await pipe.execute()
        except Exception:  # the reader's block timeout still brings the new run in
            log.warning("waking the event reader failed", exc_info=True)

    async def _read_all(self) -> None:
        """The shared reader: one XREAD BLOCK over every followed run, for ever."""
        while True:
            self._drop_idle()
            if not self._follows:
                self._added.clear()
                await self._added.wait()
                continue
            streams: dict[Any, Any] = {self._wake_key: self._wake_id}
            for key, follow in self._follows.items():
                streams[key] = f"{follow.last}-0"
            self._reading, self._wake_sent = True, False
            try:
                reply: Any = await self._r.xread(streams, count=FOLLOW_COUNT, block=FOLLOW_BLOCK_MS)
            except Exception:
                log.warning("the shared event reader failed; reading again", exc_info=True)
                await asyncio.sleep(0.5)
                continue
            finally:
                self._reading = False
            for key, entries in reply or []:
                if key == self._wake_key:
                    self._wake_id = entries[-1][0]
                elif (followed := self._follows.get(key)) is not None:
                    _deliver(followed, entries)

    def _drop_idle(self) -> None:
        cutoff = asyncio.get_running_loop().time() - FOLLOW_IDLE_S
        idle = [
            key
            for key, f in self._follows.items()
            if not f.readers and (f.ended or f.idle_since < cutoff)
        ]
        for key in idle:
            del self._follows[key]

    def wake_readers(self) -> None:
        for follow in self._follows.values():
            follow.changed.set()
            follow.changed = asyncio.Event()

    async def close(self) -> None:
        self.wake_readers()
        tasks = [t for t in (self._reader, *self._wakes) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._reader = None
        self._follows.clear()
        await self._appends.close()
        with contextlib.suppress(Exception):
            await self._r.delete(self._wake_key)


class _Batched:
    """Calls of one Lua script sent together in one pipeline, one pipeline in flight at a
    time: the calls made while one is out go in the next. The runs a worker executes
    publish at once, and each command sent alone is a write (a system call) and a round
    trip of its own; one pipeline at a time also keeps every call in the order made."""

    def __init__(self, client: Redis, script: str) -> None:
        self._r = client
        self._script = client.register_script(script)
        self._pending: list[tuple[str, list[Any], asyncio.Future[Any]]] = []
        self._flushes: set[asyncio.Task[None]] = set()
        self._flushing = False  # a flush is scheduled or in flight: it takes what is pending

    def submit(self, key: str, args: list[Any]) -> asyncio.Future[Any]:
        """Queues a call for the next pipeline; the future holds its result."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        if not self._flushing:
            self._flushing = True
            loop.call_soon(self._flush_soon)  # after the calls made in this pass
        self._pending.append((key, args, future))
        return future

    def _flush_soon(self) -> None:
        task = asyncio.create_task(self._flush_all())
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _flush_all(self) -> None:
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                await self._flush(batch)
        finally:
            self._flushing = False  # in the step that found nothing pending
            stranded, self._pending = self._pending, []  # only when cancelled
            for _, _, future in stranded:
                future.set_exception(ConnectionError("the event pipeline was stopped"))

    async def _flush(self, batch: list[tuple[str, list[Any], asyncio.Future[Any]]]) -> None:
        try:
            if len(batch) == 1:
                key, args, _ = batch[0]
                results: list[Any] = [await self._script(keys=[key], args=args)]
            else:
                results = await self._send(batch)
        except BaseException as exc:
            for _, _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, _, future), result in zip(batch, results, strict=True):
            if future.done():
                continue
            if isinstance(result, Exception):
                future.set_exception(result)
            else:
                future.set_result(result)

    async def _send(self, batch: list[tuple[str, list[Any], asyncio.Future[Any]]]) -> list[Any]:
        sha = self._script.sha
        async with self._r.pipeline(transaction=False) as pipe:
            for key, args, _ in batch:
                pipe.evalsha(sha, 1, key, *args)
            results: list[Any] = await pipe.execute(raise_on_error=False)
        # Redis lost its scripts (a restart): those calls did nothing; the script object
        # loads it again. In order, so one run's events keep theirs.
        for index, (key, args, _) in enumerate(batch):
            if isinstance(results[index], NoScriptError):
                results[index] = await self._script(keys=[key], args=args)
        return results

    async def close(self) -> None:
        for task in list(self._flushes):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


def _deliver(follow: _Follow, entries: list[Any]) -> None:
    """Keeps the run's new events and wakes its readers. A gap (events trimmed before
    they were read) restarts the kept events there: a reader behind reads Redis."""
    for entry_id, fields in entries:
        seq = _seq(entry_id)
        if seq <= follow.last:
            continue
        if seq != follow.last + 1:
            follow.events.clear()
            follow.first = seq
        name, data = decode_event(fields["e"])
        follow.events.append(RunEvent(seq=seq, name=name, data=data))
        follow.last = seq
        follow.ended = name in FINAL_EVENTS
    if (extra := len(follow.events) - FOLLOW_BUFFER) > 0:
        del follow.events[:extra]
        follow.first += extra
    follow.changed.set()
    follow.changed = asyncio.Event()


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
