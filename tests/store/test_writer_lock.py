"""The SQLite writers' lock: one holder at a time, a free lock taken at once even while
a woken writer has yet to run (so writers do not queue a loop pass each under load),
and a writer that leaves the queue, woken or not, never strands the ones behind it."""

from __future__ import annotations

import asyncio

import pytest

from assistd.store.writer_lock import WriterLock


def test_one_holder_at_a_time_across_awaits() -> None:
    async def main() -> list[int]:
        lock, inside, order = WriterLock(), [0], []

        async def writer(i: int) -> None:
            await lock.acquire()
            try:
                inside[0] += 1
                assert inside[0] == 1
                for _ in range(3):
                    await asyncio.sleep(0)
                order.append(i)
                inside[0] -= 1
            finally:
                lock.release()

        await asyncio.gather(*(writer(i) for i in range(40)))
        assert not lock.locked()
        return order

    assert sorted(asyncio.run(main())) == list(range(40))


def test_a_free_lock_is_taken_at_once_while_a_woken_writer_waits_its_turn() -> None:
    async def main() -> None:
        lock, ran = WriterLock(), []
        await lock.acquire()

        async def queued() -> None:
            await lock.acquire()
            ran.append("queued")
            lock.release()

        task = asyncio.ensure_future(queued())
        await asyncio.sleep(0)  # it waits in the queue
        lock.release()  # and is woken, but has not run yet
        await lock.acquire()  # a free lock: taken without waiting behind it
        assert ran == []
        await asyncio.sleep(0)
        assert ran == []  # it woke to a taken lock and waits again
        lock.release()
        await task
        assert ran == ["queued"]

    asyncio.run(main())


def test_a_woken_writer_that_is_cancelled_passes_the_lock_on() -> None:
    async def main() -> None:
        lock, got = WriterLock(), []
        await lock.acquire()

        async def writer(name: str) -> None:
            await lock.acquire()
            got.append(name)
            lock.release()

        first = asyncio.ensure_future(writer("first"))
        second = asyncio.ensure_future(writer("second"))
        await asyncio.sleep(0)
        lock.release()  # wakes `first`
        first.cancel()
        with pytest.raises(asyncio.CancelledError):
            await first
        await asyncio.wait_for(second, 1)
        assert got == ["second"]
        assert not lock.locked()

    asyncio.run(main())


def test_a_writer_that_gives_up_waiting_leaves_the_queue() -> None:
    async def main() -> None:
        lock = WriterLock()
        await lock.acquire()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                await lock.acquire()
        lock.release()
        assert not lock.locked()
        await asyncio.wait_for(lock.acquire(), 1)
        assert lock.locked()

    asyncio.run(main())
