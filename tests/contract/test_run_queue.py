"""The leased run queue's contract, on memory and on Redis: jobs come out in order and an
acked job never returns; a consumer that stops heartbeating loses its job to another
after the lease, one that heartbeats keeps it; two consumers never hold one job."""

from __future__ import annotations

import asyncio

from assistd.queue.base import IngestJob, RunJob
from assistd.queue.redis import GROUP, RedisRunQueue
from tests.contract.conftest import Transport

LEASE_S = 0.6


def _job(index: int) -> RunJob:
    return RunJob("ws_default", f"thread_{index}", f"run_{index}")


async def test_jobs_are_claimed_in_order_and_acked(transport: Transport) -> None:
    (queue,) = transport.queues(1, LEASE_S)
    for index in range(3):
        await queue.enqueue(_job(index))
    leases = [await queue.claim("worker-a", timeout_s=2) for _ in range(3)]
    assert [lease.job if lease else None for lease in leases] == [_job(i) for i in range(3)]
    for lease in leases:
        assert lease is not None and await queue.ack(lease)
    assert await queue.claim("worker-a", timeout_s=0.2) is None


async def test_a_claim_waits_for_the_next_job(transport: Transport) -> None:
    waiting, feeding = transport.queues(2, LEASE_S)
    claim = asyncio.create_task(waiting.claim("worker-a", timeout_s=5))
    await asyncio.sleep(0.1)
    assert not claim.done()
    await feeding.enqueue(_job(1))
    lease = await claim
    assert lease is not None and lease.job == _job(1) and lease.consumer == "worker-a"
    assert await waiting.ack(lease)


async def test_a_job_whose_lease_lapsed_is_taken_over(transport: Transport) -> None:
    first, second = transport.queues(2, LEASE_S)
    await first.enqueue(_job(1))
    lost = await first.claim("worker-a", timeout_s=2)
    assert lost is not None
    # worker-a neither heartbeats nor acks, as if it had died
    taken = await second.claim("worker-b", timeout_s=LEASE_S * 4)
    assert taken is not None and taken.job == _job(1) and taken.consumer == "worker-b"
    assert taken.token == lost.token
    # worker-a coming back finds the job is not its own any more, and cannot ack it
    assert not await first.heartbeat(lost)
    assert not await first.ack(lost)
    assert await second.heartbeat(taken)
    assert await second.ack(taken)
    assert await second.claim("worker-b", timeout_s=LEASE_S * 2) is None


async def test_a_heartbeating_consumer_keeps_its_job(transport: Transport) -> None:
    first, second = transport.queues(2, LEASE_S)
    await first.enqueue(_job(1))
    held = await first.claim("worker-a", timeout_s=2)
    assert held is not None

    async def heartbeat() -> None:
        while True:
            assert await first.heartbeat(held)
            await asyncio.sleep(LEASE_S / 4)

    beating = asyncio.create_task(heartbeat())
    try:
        assert await second.claim("worker-b", timeout_s=LEASE_S * 3) is None
    finally:
        beating.cancel()
    assert await first.ack(held)
    assert await second.claim("worker-b", timeout_s=LEASE_S * 2) is None


async def test_an_acked_job_never_returns(transport: Transport) -> None:
    first, second = transport.queues(2, LEASE_S)
    await first.enqueue(_job(1))
    lease = await first.claim("worker-a", timeout_s=2)
    assert lease is not None and await first.ack(lease)
    assert not await first.ack(lease)  # a second ack changes nothing
    assert not await first.heartbeat(lease)
    await asyncio.sleep(LEASE_S * 1.5)
    assert await second.claim("worker-b", timeout_s=LEASE_S * 2) is None


async def test_two_consumers_never_hold_one_job(transport: Transport) -> None:
    queues = transport.queues(4, lease_s=5.0)
    jobs = [_job(i) for i in range(24)]
    for job in jobs:
        await queues[0].enqueue(job)
    held: set[RunJob] = set()
    done: list[RunJob] = []

    async def consume(index: int) -> None:
        queue = queues[index]
        while (lease := await queue.claim(f"worker-{index}", timeout_s=0.5)) is not None:
            assert lease.job not in held
            held.add(lease.job)
            await asyncio.sleep(0.01)
            assert await queue.heartbeat(lease)
            held.discard(lease.job)
            assert await queue.ack(lease)
            done.append(lease.job)

    await asyncio.gather(*(consume(i) for i in range(4)))
    assert sorted(done, key=lambda job: job.run_id) == sorted(jobs, key=lambda job: job.run_id)


async def test_the_embedded_take_delivers_each_job_once(transport: Transport) -> None:
    if transport.client is not None:
        return  # take() is the in-process worker pool's form only
    from assistd.queue.memory import MemoryRunQueue

    queue = MemoryRunQueue(LEASE_S)
    await queue.enqueue(_job(1))
    assert await queue.take() == _job(1)
    await asyncio.sleep(LEASE_S * 1.5)
    assert await queue.claim("worker-b", timeout_s=LEASE_S) is None


async def test_a_job_carries_its_runs_leg(transport: Transport) -> None:
    """The leg a job was queued for comes back with it; a job queued before jobs carried
    legs (Redis fields without one) has none, and is run as before."""
    (queue,) = transport.queues(1, LEASE_S)
    await queue.enqueue(RunJob("ws_default", "thread_1", "run_1", 3))
    await queue.enqueue(_job(2))
    first = await queue.claim("worker-a", timeout_s=2)
    second = await queue.claim("worker-a", timeout_s=2)
    assert first is not None and first.job.leg == 3
    assert second is not None and second.job == _job(2) and second.job.leg is None


async def test_idle_consumers_holding_nothing_are_forgotten(transport: Transport) -> None:
    """Every process start names new consumers; those of stopped processes are deleted
    once idle for long, unless they hold a job (deleting one would lose its job)."""
    if transport.client is None:
        return  # in process, a consumer is only a name on a lease
    client = transport.client
    (queue,) = transport.queues(1, lease_s=30)
    assert isinstance(queue, RedisRunQueue)
    queue.idle_consumer_s = 0.5

    async def worked(consumer: str, job: RunJob) -> None:
        """`consumer` took a job and finished it (Redis names a consumer once it is
        delivered something)."""
        await queue.enqueue(job)
        lease = await queue.claim(consumer, timeout_s=1)
        assert lease is not None and await queue.ack(lease)

    await worked("gone-idle", _job(1))
    await queue.enqueue(_job(2))
    held = await queue.claim("gone-holding", timeout_s=1)
    assert held is not None
    await asyncio.sleep(0.8)
    await worked("live", _job(3))

    assert await queue.prune() == 1
    stream = f"{transport.prefix}runs"
    names = {c["name"] for c in await client.xinfo_consumers(stream, GROUP)}
    assert names == {"gone-holding", "live"}
    assert await queue.ack(held)  # its job was kept: acked by it, never lost
    await asyncio.sleep(0.6)
    assert await queue.prune() == 2
    assert await client.xinfo_consumers(stream, GROUP) == []


async def test_ingestion_jobs_travel_on_a_queue_of_their_own(transport: Transport) -> None:
    """An ingestion job comes back as it was queued, and never reaches the run queue's
    consumers (nor a run job the ingestion queue's)."""
    (runs,) = transport.queues(1, LEASE_S)
    (ingest,) = transport.queues(1, LEASE_S, stream="ingest")
    if transport.client is None:
        from assistd.queue.memory import MemoryRunQueue

        ingest = MemoryRunQueue(LEASE_S)  # the runtime makes one queue each
    job = IngestJob("ws_default", "vs_1", "file_1")
    await ingest.enqueue(job)
    await runs.enqueue(_job(1))
    lease = await ingest.claim("worker-a", timeout_s=2)
    assert lease is not None and lease.job == job
    assert await ingest.ack(lease)
    assert await ingest.claim("worker-a", timeout_s=0.2) is None
    lease = await runs.claim("worker-a", timeout_s=2)
    assert lease is not None and lease.job == _job(1)


async def test_depth_counts_the_jobs_no_consumer_has_claimed(transport: Transport) -> None:
    (queue,) = transport.queues(1, LEASE_S)
    assert await queue.depth() == 0
    traced = RunJob(
        "ws_default", "thread_t", "run_t", 1, "00-" + "ab" * 16 + "-" + "cd" * 8 + "-01"
    )
    for job in (_job(1), _job(2), traced):
        await queue.enqueue(job)
    assert await queue.depth() == 3
    first = await queue.claim("worker-a", timeout_s=2)
    assert first is not None and await queue.depth() == 2
    assert await queue.ack(first)
    assert await queue.depth() == 2  # an acked job was counted off when it was claimed
    for _ in range(2):
        lease = await queue.claim("worker-a", timeout_s=2)
        assert lease is not None and await queue.ack(lease)
    assert lease.job == traced  # the traceparent travels with the job
    assert await queue.depth() == 0
