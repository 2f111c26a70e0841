"""A stream following its run on the in-process bus writes each frame in the publisher's
step, where the response can be written at once (api.sse._Leg.take, api.body_send's
direct write), and through its own task otherwise: either way every frame goes out once,
in order. And the direct write is there under uvicorn's httptools protocol, the server
`assistd serve` runs (if a uvicorn upgrade takes it away, this says so), and a finished
request leaves nothing for the collector."""

from __future__ import annotations

import asyncio
import gc

import pytest
from starlette.types import Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

from assistd.api.body_send import BodySend, ServerSend, direct_writer
from assistd.api.dashscope import render
from assistd.api.sse import DONE, StreamGate, StreamSource, frame, run_frames
from assistd.core.events import MessageDelta, RunEvent
from assistd.core.objects import Run
from assistd.queue.memory import MemoryEventBus
from tests.support.in_process_uvicorn import served

RUN = "run_1"


async def _no_run() -> Run | None:
    return None


def _expected(deltas: int) -> list[bytes]:
    frames = []
    for seq in range(2, deltas + 2):
        event = RunEvent(seq, "thread.message.delta", MessageDelta("msg_1", f"w{seq} "))
        rendered = render.event(event)
        assert rendered is not None
        frames.append(frame(*rendered))
    return frames


async def _follow(bus: MemoryEventBus, writes_allowed: int, deltas: int) -> list[tuple[str, bytes]]:
    """Streams run_1 while `deltas` deltas and then a failure are published; what went
    out, in order, each frame marked `direct` or `task`."""
    out: list[tuple[str, bytes]] = []
    source = StreamSource(bus, RUN, render.event, _no_run, StreamGate(), heartbeat_s=30.0)

    class Writer:
        def write(self, body: bytes) -> bool:
            if len([1 for how, _ in out if how == "direct"]) >= writes_allowed:
                return False  # the client reads slowly: the task writes from here on
            out.append(("direct", body))
            return True

        def flush(self) -> None:
            pass

    source.direct.writer = Writer()  # type: ignore[assignment]

    async def stream() -> None:
        async for chunk in run_frames(source, 1):
            out.append(("task", chunk))

    streaming = asyncio.ensure_future(stream())
    await asyncio.sleep(0.01)  # the stream waits for run_1's next event
    for seq in range(2, deltas + 2):
        bus.publish_soon(RUN, "thread.message.delta", MessageDelta("msg_1", f"w{seq} "))
        if seq % 3 == 0:
            await asyncio.sleep(0)  # the task may run between some of them
    await bus.publish(RUN, "thread.run.failed", None)
    async with asyncio.timeout(5):
        await streaming
    return out


def _frames_of(out: list[tuple[str, bytes]]) -> list[bytes]:
    whole = b"".join(chunk for _, chunk in out)
    return [part + b"\n\n" for part in whole.split(b"\n\n") if part]


@pytest.mark.parametrize("writes_allowed", [1000, 4, 0])
async def test_every_frame_goes_out_once_in_order(writes_allowed: int) -> None:
    bus = MemoryEventBus()
    await bus.publish(RUN, "thread.run.in_progress", None)
    out = await _follow(bus, writes_allowed, deltas=12)
    frames = _frames_of(out)
    assert frames[:12] == _expected(12)
    assert frames[-1] == DONE  # the run's end went through the task, ending the leg
    direct = [chunk for how, chunk in out if how == "direct"]
    assert direct == _expected(12)[: min(writes_allowed, 12)]
    if writes_allowed >= 12:  # every delta taken at once: the task woke only for the end
        assert [how for how, _ in out] == ["direct"] * 12 + ["task"]


async def test_a_follower_that_fails_leaves_the_event_to_its_read() -> None:
    bus = MemoryEventBus()
    await bus.publish(RUN, "thread.run.in_progress", None)

    class Failing:
        seq = 1

        def take(self, event: RunEvent) -> bool:
            raise RuntimeError("a bug in a stream")

    reading = asyncio.ensure_future(bus.follow(RUN, Failing(), 5.0))
    await asyncio.sleep(0.01)
    await bus.publish(RUN, "thread.message.delta", MessageDelta("msg_1", "hi"))
    async with asyncio.timeout(5):
        events = await reading
    assert [e.seq for e in events] == [2]


async def _app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] != "http":
        return
    headers = [(b"content-type", b"text/event-stream")]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    writer = direct_writer(scope)
    if writer is None:
        await send({"type": "http.response.body", "body": b"no direct write", "more_body": False})
        return
    for part in (b"one ", b"two "):
        assert writer.write(part)
    await asyncio.sleep(0)  # held to the end of the loop's pass, then written
    await asyncio.sleep(0)
    assert writer.write(b"three ")
    writer.flush()  # before anything goes through `send`
    await send({"type": "http.response.body", "body": b"end", "more_body": False})


async def _get(port: int) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    reply = await reader.read()
    writer.close()
    return reply


async def test_uvicorns_httptools_protocol_takes_direct_writes() -> None:
    async with served(ServerSend(_app)) as port:
        reply = await _get(port)
    head, _, body = reply.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower()
    assert body == b"4\r\none \r\n4\r\ntwo \r\n6\r\nthree \r\n3\r\nend\r\n0\r\n\r\n"


async def test_a_finished_request_leaves_no_cycle_for_the_collector() -> None:
    """The sends left in the scope are taken out again: else scope, send and uvicorn's
    request cycle held each other until a collection."""
    gc.collect()
    async with served(ServerSend(BodySend(_app))) as port:
        for _ in range(20):
            assert (await _get(port)).endswith(b"0\r\n\r\n")
        gc.set_debug(gc.DEBUG_SAVEALL)
        try:
            gc.collect()
            left = [o for o in gc.garbage if isinstance(o, RequestResponseCycle)]
        finally:
            gc.set_debug(0)
            gc.garbage.clear()
    assert left == []
