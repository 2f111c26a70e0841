"""Requests start eagerly (assistd.api.eager_start): a task's first step is taken when
it is made, as the current task and in its context, and whatever that step ends with is
what the task ends with; uvicorn's protocol as assistd serves it answers a request that
needs no wait in the loop's pass that read it."""

from __future__ import annotations

import asyncio
import contextvars
from typing import Any

import pytest
from starlette.types import Receive, Scope, Send

from assistd.api.eager_start import start_eagerly
from assistd.api.server_options import guarded_protocol
from tests.support.in_process_uvicorn import served

TRACE: contextvars.ContextVar[str] = contextvars.ContextVar("trace", default="")


async def _from_callback(coro: Any, seen: list[Any]) -> tuple[asyncio.Task[Any], list[Any]]:
    """start_eagerly as a protocol callback calls it, with no task running: the task, and
    `seen` as it was when start_eagerly returned (what the first step put there)."""
    loop = asyncio.get_running_loop()
    made: asyncio.Future[tuple[asyncio.Task[Any], list[Any]]] = loop.create_future()
    loop.call_soon(lambda: made.set_result((start_eagerly(loop, coro), list(seen))))
    return await made


async def test_the_first_step_is_taken_at_once_as_the_current_task() -> None:
    seen: list[Any] = []

    async def work() -> str:
        seen.append(asyncio.current_task())
        return "done"

    task, at_once = await _from_callback(work(), seen)
    assert at_once == [task]  # it ran there, as the task
    assert await task == "done"


async def test_a_task_that_waits_goes_on_where_it_stopped_in_its_context() -> None:
    gate: asyncio.Future[str] = asyncio.get_running_loop().create_future()
    steps: list[str] = []

    async def work() -> str:
        TRACE.set("set in the first step")
        steps.append("first")
        value = await gate
        steps.append("second")
        return f"{value}, {TRACE.get()}"

    task, at_once = await _from_callback(work(), steps)
    assert at_once == ["first"]
    gate.set_result("opened")
    assert await task == "opened, set in the first step"
    assert steps == ["first", "second"]
    assert TRACE.get() == ""  # the task's context, not the caller's


async def test_an_error_in_the_first_step_is_the_tasks() -> None:
    async def work() -> None:
        raise ValueError("first step")

    task, _ = await _from_callback(work(), [])
    with pytest.raises(ValueError, match="first step"):
        await task


async def test_a_task_cancelled_after_its_first_step_is_cancelled_where_it_waits() -> None:
    cleaned: list[str] = []

    async def work() -> None:
        try:
            await asyncio.get_running_loop().create_future()
        finally:
            cleaned.append("finally ran")

    task, _ = await _from_callback(work(), [])
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cleaned == ["finally ran"]


async def test_from_inside_a_task_the_first_step_waits_for_the_loop() -> None:
    ran: list[str] = []

    async def work() -> None:
        ran.append("ran")

    task = start_eagerly(asyncio.get_running_loop(), work())
    assert ran == []  # a task is running (this test): no second current task
    await task
    assert ran == ["ran"]


# ---- in uvicorn's protocol ----------------------------------------------------------------


class Passes:
    """Counts the loop's passes: a callback that schedules itself again runs once a pass."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.count = 0
        self._loop = loop
        self._handle = loop.call_soon(self._tick)

    def _tick(self) -> None:
        self.count += 1
        self._handle = self._loop.call_soon(self._tick)

    def stop(self) -> None:
        self._handle.cancel()


async def test_a_request_is_answered_in_the_pass_that_read_it() -> None:
    passes = Passes(asyncio.get_running_loop())
    read_in: list[int] = []
    handled_in: list[int] = []

    class Recording(guarded_protocol(30.0, 30.0)):  # type: ignore[misc]
        def data_received(self, data: bytes) -> None:
            read_in.append(passes.count)
            super().data_received(data)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        handled_in.append(passes.count)
        body = (await receive())["body"]  # here already: it came with the head
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"got " + body})

    try:
        async with served(app, Recording) as port:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            for body in (b"one", b"two"):  # two requests on one keep-alive connection
                head = f"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n"
                writer.write(head.encode() + body)
                reply = await reader.readuntil(b"0\r\n\r\n")  # the chunked body's end
                assert reply.startswith(b"HTTP/1.1 200") and b"got " + body in reply
            writer.close()
    finally:
        passes.stop()
    assert len(handled_in) == 2
    assert handled_in == read_in[: len(handled_in)]
