"""The event bus's contract, on memory and on Redis: a run's events come back in order,
from any sequence number, to a follower without loss or duplicates, as the objects that
were published; a log keeps its newest events, expires after the run ends, and a reader
too far behind is told it is gone. The cancel channel reaches a waiter."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from assistd.core.events import EventLogGone, MessageDelta, StepDelta, StreamError
from assistd.core.events import ToolCallFragment as Fragment
from assistd.core.journal import Journal
from assistd.core.objects import (
    Message,
    MessageCreationDetails,
    RequiredAction,
    Run,
    RunStep,
    SamplingParams,
    Thread,
    ToolCall,
    ToolCallsDetails,
)
from tests.contract.conftest import Transport

CALL = ToolCall("call_1", "function", "lookup", '{"q": "x"}', output=None, file_ids=["file_1"])
RUN = Run(
    "run_1", "thread_1", "asst_1", 1700000000, "requires_action", "qwen-max",
    tools=[{"type": "function", "function": {"name": "lookup"}}], metadata={"k": "v"},
    required_action=RequiredAction([CALL]), sampling=SamplingParams(temperature=0.5),
)  # fmt: skip
FRAGMENT = Fragment(0, "call_1", "function", "lookup", "start", arguments="{")
EVENTS: list[tuple[str, Any]] = [
    ("thread.created", Thread("thread_1", 1700000000, {"a": "b"})),
    ("thread.run.in_progress", None),
    (
        "thread.run.step.created",
        RunStep(
            "step_1",
            "run_1",
            "thread_1",
            "asst_1",
            1700000001,
            "tool_calls",
            "in_progress",
            ToolCallsDetails([CALL]),
        ),
    ),
    ("thread.run.step.delta", StepDelta("step_1", [FRAGMENT])),
    (
        "thread.run.step.completed",
        RunStep(
            "step_2",
            "run_1",
            "thread_1",
            "asst_1",
            1700000002,
            "message_creation",
            "completed",
            MessageCreationDetails("msg_1"),
        ),
    ),
    (
        "thread.message.created",
        Message(
            "msg_1",
            "thread_1",
            1700000003,
            "assistant",
            [{"type": "text", "text": {"value": "hi"}}],
        ),
    ),
    ("thread.message.delta", MessageDelta("msg_1", "hi")),
    ("error", StreamError("server_error", "boom")),
    ("thread.run.requires_action", RUN),
]


async def test_events_come_back_in_order_as_published(transport: Transport) -> None:
    writer, reader = transport.buses(2)
    for expected_seq, (name, data) in enumerate(EVENTS, start=1):
        event = await writer.publish("run_1", name, data)
        assert (event.seq, event.name, event.data) == (expected_seq, name, data)
    got = await reader.read("run_1", 0, timeout_s=1)
    assert [(e.seq, e.name, e.data) for e in got] == [
        (seq, name, data) for seq, (name, data) in enumerate(EVENTS, start=1)
    ]
    assert await reader.last_seq("run_1") == len(EVENTS)
    assert await reader.last_seq("run_other") == 0
    middle = await reader.read("run_1", 3, timeout_s=1, limit=2)
    assert [e.seq for e in middle] == [4, 5]


async def test_events_queued_without_waiting_keep_their_order(transport: Transport) -> None:
    """publish_soon (a worker's token deltas) interleaved with publish (its state events):
    the log holds them in the order they were made, each with its own seq."""
    writer, reader = transport.buses(2)
    await writer.publish("run_1", "thread.run.in_progress", None)
    queued = [
        writer.publish_soon("run_1", "thread.message.delta", MessageDelta("msg_1", f"t{i}"))
        for i in range(300)
    ]
    await writer.publish_many([("run_1", "thread.run.completed", None)])
    for pending in queued:
        if pending is not None:  # None: in the log already
            await pending
    got = await reader.read("run_1", 0, timeout_s=1, limit=1000)
    assert [e.seq for e in got] == list(range(1, 303))
    texts = [e.data.text for e in got if e.name == "thread.message.delta"]
    assert texts == [f"t{i}" for i in range(300)]
    assert [got[0].name, got[-1].name] == ["thread.run.in_progress", "thread.run.completed"]


async def test_a_run_without_a_log_is_gone(transport: Transport) -> None:
    (bus,) = transport.buses(1)
    with pytest.raises(EventLogGone):
        await bus.read("run_never", 0, timeout_s=0.1)


async def test_followers_miss_nothing_and_see_nothing_twice(transport: Transport) -> None:
    writer, early, late = transport.buses(3)
    await writer.publish("run_1", "thread.run.in_progress", None)

    async def follow(bus: Any, after: int) -> list[int]:
        seqs: list[int] = []
        while True:
            events = await bus.read("run_1", after, timeout_s=2, limit=7)
            for event in events:
                seqs.append(event.seq)
                if event.name == "thread.run.completed":
                    return seqs
            after = events[-1].seq if events else after

    first = asyncio.create_task(follow(early, 0))
    second = None
    for index in range(200):
        await writer.publish("run_1", "thread.message.delta", MessageDelta("msg_1", f"t{index}"))
        if index % 10 == 0:
            await asyncio.sleep(0)
        if index == 100:
            second = asyncio.create_task(follow(late, 50))
    await writer.publish("run_1", "thread.run.completed", None)
    assert second is not None
    assert await first == list(range(1, 203))
    assert await second == list(range(51, 203))


async def test_a_reader_resuming_after_a_legs_end_gets_the_next_leg_only(
    transport: Transport,
) -> None:
    writer, reader = transport.buses(2)
    await writer.publish("run_1", "thread.run.in_progress", None)
    ended = await writer.publish("run_1", "thread.run.requires_action", None)
    # Nothing follows the end of the leg yet: the resumed reader waits, then gets nothing.
    assert await reader.read("run_1", ended.seq, timeout_s=0.2) == []
    waiting = asyncio.create_task(reader.read("run_1", ended.seq, timeout_s=30))
    await asyncio.sleep(0.05)
    for name in ("thread.run.queued", "thread.run.in_progress", "thread.run.completed"):
        await writer.publish("run_1", name, None)
    got = await asyncio.wait_for(waiting, 5)
    rest = got + await reader.read("run_1", got[-1].seq, timeout_s=1)
    assert [(e.seq, e.name) for e in rest] == [
        (3, "thread.run.queued"), (4, "thread.run.in_progress"), (5, "thread.run.completed")
    ]  # fmt: skip


async def test_publishers_on_two_connections_share_one_sequence(transport: Transport) -> None:
    """A replica cancelling and the worker streaming write the same run's log: every event
    gets its own number, the one every reader sees (what a resuming client sends back)."""
    first, second, reader = transport.buses(3)

    async def publish(bus: Any, who: str) -> list[tuple[int, str]]:
        published = []
        for index in range(50):
            event = await bus.publish(
                "run_1", "thread.message.delta", MessageDelta(who, str(index))
            )
            published.append((event.seq, f"{who}{index}"))
        return published

    mine, theirs = await asyncio.gather(publish(first, "a"), publish(second, "b"))
    read = await reader.read("run_1", 0, timeout_s=1, limit=200)
    assert [e.seq for e in read] == list(range(1, 101))
    assert sorted(mine + theirs) == [(e.seq, e.data.message_id + e.data.text) for e in read]


async def test_a_waiting_read_returns_when_nothing_comes(transport: Transport) -> None:
    (bus,) = transport.buses(1)
    await bus.publish("run_1", "thread.run.in_progress", None)
    assert await bus.read("run_1", 1, timeout_s=0.2) == []
    waiting = asyncio.create_task(bus.read("run_1", 1, timeout_s=30))
    await asyncio.sleep(0.1)
    bus.wake_readers()  # the server stopping: streams must notice at once
    assert await asyncio.wait_for(waiting, 5) == []


async def test_hundreds_of_waiting_readers_share_a_small_pool(transport: Transport) -> None:
    """Each open stream waits in a read: 300 of them on one bus whose pool holds 10
    connections all get their run's events (a connection per waiter would run out)."""
    writer, bus, client = transport.small_pool_bus(10)
    runs = [f"run_{index}" for index in range(300)]
    try:
        for run_id in runs:
            await writer.publish(run_id, "thread.run.in_progress", None)

        async def follow(run_id: str) -> list[tuple[int, str]]:
            got: list[tuple[int, str]] = []
            while len(got) < 3:
                events = await bus.read(run_id, len(got) + 1, timeout_s=10)
                got += [(e.seq, e.data.text) for e in events]
            return got

        readers = [asyncio.create_task(follow(run_id)) for run_id in runs]
        await asyncio.sleep(0.2)  # every reader waiting
        assert not any(reader.done() for reader in readers)
        for index in range(3):
            for run_id in runs:
                delta = MessageDelta("msg_1", f"{run_id}:{index}")
                await writer.publish(run_id, "thread.message.delta", delta)
        results = await asyncio.wait_for(asyncio.gather(*readers), 30)
        for run_id, got in zip(runs, results, strict=True):
            assert got == [(2 + i, f"{run_id}:{i}") for i in range(3)]
    finally:
        await bus.close()
        if client is not None:
            await client.aclose()


async def test_readers_of_many_runs_get_their_runs_events_in_order(
    transport: Transport,
) -> None:
    """Many runs streaming at once, interleaved, some read by two readers each: every
    reader gets exactly its run's events, in order, none missed or repeated."""
    writer, reader = transport.buses(2)
    runs = [f"run_{index}" for index in range(40)]
    for run_id in runs:
        await writer.publish(run_id, "thread.run.in_progress", None)

    async def follow(run_id: str, after: int) -> list[tuple[int, str]]:
        got: list[tuple[int, str]] = []
        while True:
            events = await reader.read(run_id, after, timeout_s=10, limit=5)
            for event in events:
                if event.name == "thread.run.completed":
                    return got
                got.append((event.seq, event.data.text))
            after = events[-1].seq if events else after

    readers = [asyncio.create_task(follow(run_id, 1)) for run_id in runs]
    readers += [asyncio.create_task(follow(run_id, 1)) for run_id in runs[::4]]
    for index in range(30):
        for run_id in runs:
            await writer.publish(
                run_id, "thread.message.delta", MessageDelta("m", f"{run_id}:{index}")
            )
        await asyncio.sleep(0)
    for run_id in runs:
        await writer.publish(run_id, "thread.run.completed", None)
    results = await asyncio.wait_for(asyncio.gather(*readers), 30)
    for run_id, got in zip(runs + runs[::4], results, strict=True):
        assert got == [(2 + i, f"{run_id}:{i}") for i in range(30)]


async def test_a_log_keeps_its_newest_events(transport: Transport) -> None:
    writer, reader = transport.buses(2, max_events=5)
    for index in range(12):
        await writer.publish("run_1", "thread.message.delta", MessageDelta("msg_1", str(index)))
    assert await reader.last_seq("run_1") == 12
    assert [e.seq for e in await reader.read("run_1", 7, timeout_s=1)] == [8, 9, 10, 11, 12]
    with pytest.raises(EventLogGone):  # seq 1 to 7 were trimmed away
        await reader.read("run_1", 0, timeout_s=1)


async def test_a_log_expires_after_its_run_ends_and_not_before(transport: Transport) -> None:
    (bus,) = transport.buses(1, retention_s=1)
    await bus.publish("run_done", "thread.run.in_progress", None)
    await bus.publish("run_done", "thread.run.completed", None)
    # requires_action ends a leg; the run going on keeps its log
    await bus.publish("run_on", "thread.run.requires_action", None)
    await bus.publish("run_on", "thread.run.in_progress", None)
    assert len(await bus.read("run_done", 0, timeout_s=1)) == 2
    await asyncio.sleep(1.5)
    with pytest.raises(EventLogGone):
        await bus.read("run_done", 0, timeout_s=1)
    assert await bus.last_seq("run_done") == 0  # how a resuming stream knows it is gone
    assert len(await bus.read("run_on", 0, timeout_s=1)) == 2


async def test_a_cancel_reaches_the_waiter(transport: Transport) -> None:
    asking, holding = transport.cancel_channels(2)
    try:
        waiting = asyncio.create_task(holding.cancelled("run_1"))
        await asyncio.sleep(0.1)
        assert not waiting.done()
        await asking.cancel("run_1")
        await asyncio.wait_for(waiting, 5)
        # a cancel asked before the holder waits is not lost
        await asking.cancel("run_2")
        await asyncio.wait_for(holding.cancelled("run_2"), 5)
        # once forgotten it no longer stands, and other runs were never cancelled
        await holding.forget("run_2")
        for run_id in ("run_2", "run_3"):
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(holding.cancelled(run_id), 0.3)
    finally:
        await asking.close()
        await holding.close()


async def test_deltas_published_now_or_later_keep_their_order(transport: Transport) -> None:
    """A worker publishes a token at once where it can (Journal.publish_now, from the
    model connection's callback) and through `publish` where it cannot: mixed, with the
    transport settling some between, the log holds every token once, in order."""
    writer, reader = transport.buses(2)
    journal = Journal(None, writer)  # type: ignore[arg-type]  # the bus is all it uses here
    await writer.publish("run_1", "thread.run.in_progress", None)
    at_once = 0
    for i in range(300):
        delta = MessageDelta("msg_1", f"t{i}")
        if journal.publish_now("run_1", "thread.message.delta", delta):
            at_once += 1
        else:
            await journal.publish("run_1", "thread.message.delta", delta)
        if i % 50 == 49:
            await asyncio.sleep(0.02)  # the transport settles what was queued
    await journal.publish("run_1", "thread.run.completed", None)
    got = await reader.read("run_1", 0, timeout_s=1, limit=1000)
    assert [e.seq for e in got] == list(range(1, 303))
    assert [e.data.text for e in got[1:-1]] == [f"t{i}" for i in range(300)]
    assert at_once == 300  # what settled well is let go of: nothing waits
