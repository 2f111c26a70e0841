"""The in-memory event bus keeps finished runs' logs within a byte budget: past it the
oldest finished logs go first, a log still being written is never dropped, and a reader
of a dropped log is told it is gone rather than left waiting."""

from __future__ import annotations

import asyncio
import secrets

import pytest

from assistd.core.events import EventLogGone, MessageDelta
from assistd.queue.memory import MemoryEventBus


def _text() -> str:
    """About 650 bytes a delta that compression cannot shrink much (a finished run's log
    is compressed): the budgets below are met by what the logs really hold."""
    return secrets.token_urlsafe(480)


async def _write_run(bus: MemoryEventBus, run_id: str, deltas: int, finish: bool = True) -> None:
    await bus.publish(run_id, "thread.run.in_progress", None)
    for _ in range(deltas):
        await bus.publish(run_id, "thread.message.delta", MessageDelta("msg_1", _text()))
    if finish:
        await bus.publish(run_id, "thread.run.completed", None)


async def test_the_oldest_finished_logs_are_dropped_to_stay_within_the_budget() -> None:
    bus = MemoryEventBus(retention_s=600, max_bytes=100_000)
    for index in range(10):
        await _write_run(bus, f"run_{index}", deltas=40)  # about 35 KB each
        assert bus.size <= 100_000
    with pytest.raises(EventLogGone):
        await bus.read("run_0", 0, 0.01)
    kept = await bus.read("run_9", 0, 0.01, limit=1000)
    assert [e.seq for e in kept] == list(range(1, 43))
    assert kept[-1].name == "thread.run.completed"


async def test_a_log_still_being_written_is_kept_over_the_budget() -> None:
    bus = MemoryEventBus(retention_s=600, max_bytes=10_000)
    await _write_run(bus, "run_live", deltas=50, finish=False)
    await _write_run(bus, "run_done", deltas=50)
    assert bus.size > 10_000  # the live log alone is over the budget, and stays
    assert len(await bus.read("run_live", 0, 0.01, limit=1000)) == 51
    with pytest.raises(EventLogGone):
        await bus.read("run_done", 0, 0.01)
    await bus.publish("run_live", "thread.run.completed", None)
    assert bus.size == 0  # once finished, it goes too


async def test_a_run_waiting_for_tool_outputs_is_finished_until_it_goes_on() -> None:
    bus = MemoryEventBus(retention_s=600, max_bytes=45_000)
    await _write_run(bus, "run_a", deltas=40, finish=False)
    await bus.publish("run_a", "thread.run.requires_action", None)
    await bus.publish("run_a", "thread.run.queued", None)  # outputs came: live again
    await _write_run(bus, "run_b", deltas=60)  # pushes the bus over its budget
    assert len(await bus.read("run_a", 0, 0.01, limit=1000)) == 43
    with pytest.raises(EventLogGone):
        await bus.read("run_b", 0, 0.01)


async def test_finished_logs_past_their_retention_are_dropped() -> None:
    bus = MemoryEventBus(retention_s=0.05, max_bytes=10_000_000)
    await _write_run(bus, "run_old", deltas=1)
    await asyncio.sleep(0.1)
    await _write_run(bus, "run_new", deltas=1)
    with pytest.raises(EventLogGone):
        await bus.read("run_old", 0, 0.01)
    assert len(await bus.read("run_new", 0, 0.01)) == 3


async def test_a_finished_log_is_dropped_at_its_retention_with_nothing_else_happening() -> None:
    """After a load, no later event or read comes to drop the logs: a timer does."""
    bus = MemoryEventBus(retention_s=0.05, max_bytes=10_000_000)
    await _write_run(bus, "run_a", deltas=3)
    await _write_run(bus, "run_b", deltas=3)
    assert bus.size > 0
    await asyncio.sleep(0.3)
    assert bus.size == 0


async def test_a_waiting_reader_learns_its_log_was_dropped() -> None:
    bus = MemoryEventBus(retention_s=600, max_bytes=1_000)
    await bus.publish("run_a", "thread.run.requires_action", None)  # finished, tiny
    reader = asyncio.ensure_future(bus.read("run_a", 1, 30))
    await asyncio.sleep(0.01)
    await _write_run(bus, "run_b", deltas=5)  # over budget: run_a, oldest, is dropped
    with pytest.raises(EventLogGone):
        await asyncio.wait_for(reader, 5)


async def test_wake_readers_returns_every_waiting_read() -> None:
    bus = MemoryEventBus()
    await bus.publish("run_a", "thread.run.in_progress", None)
    reader = asyncio.ensure_future(bus.read("run_a", 1, 30))
    await asyncio.sleep(0.01)
    bus.wake_readers()
    assert await asyncio.wait_for(reader, 5) == []


async def test_reads_with_nothing_new_end_at_their_own_timeouts() -> None:
    """One timer serves every waiting read: a short wait that starts after a long one
    still ends at its own deadline, and the long one at its own."""
    bus = MemoryEventBus()
    await bus.publish("run_a", "thread.run.in_progress", None)
    loop = asyncio.get_running_loop()
    started = loop.time()

    async def timed(timeout_s: float) -> tuple[list[object], float]:
        found = await bus.read("run_a", 1, timeout_s)
        return list(found), loop.time() - started

    long_read = asyncio.ensure_future(timed(1.0))
    await asyncio.sleep(0.01)
    (short, short_s), (long, long_s) = await asyncio.gather(timed(0.2), long_read)
    assert short == [] and long == []
    assert 0.2 <= short_s < 0.9  # not held until the long read's deadline
    assert long_s >= 1.0


async def test_a_waiting_read_is_woken_by_the_next_event_and_a_cancelled_one_by_nothing() -> None:
    bus = MemoryEventBus()
    await bus.publish("run_a", "thread.run.in_progress", None)
    cancelled = asyncio.ensure_future(bus.read("run_a", 1, 30))
    waiting = asyncio.ensure_future(bus.read("run_a", 1, 30))
    await asyncio.sleep(0.01)
    cancelled.cancel()
    await asyncio.sleep(0.01)
    await bus.publish("run_a", "thread.message.delta", MessageDelta("msg_1", "hi"))
    (event,) = await asyncio.wait_for(waiting, 5)
    assert event.seq == 2 and event.data == MessageDelta("msg_1", "hi")
    assert cancelled.cancelled()
    assert await bus.read("run_a", 1, 0.0) == [event]  # a zero timeout does not wait


async def test_a_read_woken_by_the_final_event_gets_it_from_the_sealed_log() -> None:
    bus = MemoryEventBus()
    await _write_run(bus, "run_a", deltas=3, finish=False)
    waiting = asyncio.ensure_future(bus.read("run_a", 4, 30))
    await asyncio.sleep(0.01)
    await bus.publish("run_a", "thread.run.completed", None)
    (event,) = await asyncio.wait_for(waiting, 5)
    assert (event.seq, event.name) == (5, "thread.run.completed")
    assert [e.seq for e in await bus.read("run_a", 0, 0.0, limit=100)] == [1, 2, 3, 4, 5]


async def test_a_read_waiting_on_a_finished_run_gets_what_comes_when_it_goes_on() -> None:
    """After requires_action the log is sealed; a stream that reconnects waits on it, and
    the run's next events (tool outputs came) reach it in order after the old ones."""
    bus = MemoryEventBus()
    await _write_run(bus, "run_a", deltas=2, finish=False)
    await bus.publish("run_a", "thread.run.requires_action", None)
    waiting = asyncio.ensure_future(bus.read("run_a", 4, 30))
    await asyncio.sleep(0.01)
    await bus.publish("run_a", "thread.run.queued", None)
    (event,) = await asyncio.wait_for(waiting, 5)
    assert (event.seq, event.name) == (5, "thread.run.queued")
    await bus.publish("run_a", "thread.run.completed", None)
    names = [e.name for e in await bus.read("run_a", 0, 0.0, limit=100)]
    assert names[3:] == ["thread.run.requires_action", "thread.run.queued", "thread.run.completed"]


async def test_the_size_is_what_the_logs_hold_through_sealing_and_reopening() -> None:
    bus = MemoryEventBus()
    await _write_run(bus, "run_a", deltas=100, finish=False)
    open_size = bus.size
    await bus.publish("run_a", "thread.run.requires_action", None)
    sealed_size = bus.size
    assert 0 < sealed_size < open_size  # one compressed block
    await bus.publish("run_a", "thread.run.queued", None)  # opened again
    await bus.publish("run_a", "thread.run.completed", None)
    await _write_run(bus, "run_b", deltas=10)
    sizes = [log.size for log in bus._logs.values()]
    assert bus.size == sum(sizes) and len(sizes) == 2


async def test_a_log_the_codec_cannot_write_is_kept_as_it_is() -> None:
    bus = MemoryEventBus(retention_s=600)
    await _write_run(bus, "run_a", deltas=3, finish=False)
    odd = {"not": "a run event type"}
    await bus.publish("run_a", "thread.run.completed", odd)
    events = await bus.read("run_a", 0, 0.0, limit=100)
    assert [e.seq for e in events] == [1, 2, 3, 4, 5] and events[-1].data == odd
    assert bus.size == sum(log.size for log in bus._logs.values())
