"""Connections to a model endpoint kept for the next call: at most the SDK's hundred an
endpoint, whatever a burst opened, and those kept are used again (openai_compat)."""

from __future__ import annotations

import asyncio
import contextlib

import orjson

from assistd.models.base import ModelRequest, TextDelta
from assistd.models.openai_compat import MAX_KEPT, OpenAICompatBackend
from tests.support.upstream import SocketUpstream, chunk, read_request

BURST = MAX_KEPT + 50


class KeptAliveUpstream(SocketUpstream):
    """An OpenAI-compatible endpoint over HTTP/1.1 keep-alive, counting connections. It
    answers no request until `hold_for` requests are in (so they take that many
    connections at once), then answers each with one streamed word."""

    def __init__(self, hold_for: int) -> None:
        super().__init__()
        self.hold_for = hold_for
        self.asked = 0
        self.opened = 0  # connections accepted, ever
        self.open = 0  # connections open now
        self._all_in = asyncio.Event()
        self._closes = asyncio.Condition()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.opened += 1
        self.open += 1
        try:
            while await self._one_request(reader, writer):
                pass
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            async with self._closes:
                self.open -= 1
                self._closes.notify_all()

    async def open_once_settled(self, want: int, timeout_s: float = 10.0) -> int:
        """The connections open, once they are `want` (closes arrive a moment after the
        calls end) or `timeout_s` has passed."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s), self._closes:
                await self._closes.wait_for(lambda: self.open == want)
        return self.open

    async def _one_request(self, reader: asyncio.StreamReader, out: asyncio.StreamWriter) -> bool:
        await read_request(reader)
        self.asked += 1
        if self.asked >= self.hold_for:
            self._all_in.set()
        await self._all_in.wait()
        out.write(_STREAMED_REPLY)
        await out.drain()
        return True


def _event(delta: dict[str, object]) -> bytes:
    choice = {"index": 0, "delta": delta, "finish_reason": None}
    return b"data: " + orjson.dumps({"id": "c", "choices": [choice]}) + b"\n\n"


_STREAMED_REPLY = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
    b"Transfer-Encoding: chunked\r\n\r\n"
    + chunk(_event({"content": "hi"}))
    + chunk(b"data: [DONE]\n\n")
    + b"0\r\n\r\n"
)


async def _text(backend: OpenAICompatBackend) -> str:
    request = ModelRequest(model="m", messages=[{"role": "user", "content": "hello"}])
    parts = [chunk.text async for chunk in backend.stream(request) if isinstance(chunk, TextDelta)]
    return "".join(parts)


async def test_a_burst_leaves_at_most_the_sdks_hundred_connections_open() -> None:
    upstream = KeptAliveUpstream(hold_for=BURST)
    backend = OpenAICompatBackend(await upstream.start(), "key")
    try:
        replies = await asyncio.gather(*(_text(backend) for _ in range(BURST)))
        assert replies == ["hi"] * BURST
        assert upstream.opened == BURST  # all at once: one connection each
        assert await upstream.open_once_settled(MAX_KEPT) == MAX_KEPT

        # Those kept are used again: a second, smaller burst opens nothing new.
        upstream.hold_for = upstream.asked + MAX_KEPT
        replies = await asyncio.gather(*(_text(backend) for _ in range(MAX_KEPT)))
        assert replies == ["hi"] * MAX_KEPT
        assert upstream.opened == BURST
        assert await upstream.open_once_settled(MAX_KEPT) == MAX_KEPT
    finally:
        await backend.close()
        await upstream.close()
