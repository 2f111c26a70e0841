"""A model reply's body is timed by the bytes that arrive, not by a timer a chunk
(openai_compat._ReadWatch): a reply that keeps coming, however long in all, is read to
its end; one that stalls for the read timeout fails the model call, as the SDK's read
timeout failed it, and the connection goes with it.

A real upstream on a socket, writing its reply's chunks on a script of pauses."""

from __future__ import annotations

import asyncio
import time

import orjson
import pytest

from assistd.models.base import ModelError, ModelRequest, TextDelta
from assistd.models.openai_compat import OpenAICompatBackend
from tests.support.upstream import SocketUpstream, chunk, read_request

TIMEOUT_S = 0.6

_HEAD = b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"


def _word(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    return chunk(b"data: " + orjson.dumps({"id": "c", "choices": [choice]}) + b"\n\n")


class PacedUpstream(SocketUpstream):
    """Answers every request with a word after each pause of `pauses`, then the end; a
    pause of None is silence until the client drops the connection."""

    def __init__(self, pauses: list[float | None]) -> None:
        super().__init__()
        self.pauses = pauses
        self.closed = asyncio.Event()  # the client dropped the connection

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await read_request(reader)
            writer.write(_HEAD)
            for n, pause in enumerate(self.pauses):
                if pause is None:
                    await reader.read()  # returns once the client has closed
                    return
                await asyncio.sleep(pause)
                writer.write(_word(f"w{n} "))
                await writer.drain()
            writer.write(chunk(b"data: [DONE]\n\n") + b"0\r\n\r\n")
            await writer.drain()
            await reader.read()  # until the client closes
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.closed.set()
            writer.close()


async def _read(upstream: PacedUpstream) -> str:
    backend = OpenAICompatBackend(await upstream.start(), "key", TIMEOUT_S, max_retries=0)
    request = ModelRequest(model="m", messages=[{"role": "user", "content": "hello"}])
    try:
        parts = [c.text async for c in backend.stream(request) if isinstance(c, TextDelta)]
        return "".join(parts)
    finally:
        await backend.close()
        await upstream.close()


async def test_a_reply_that_keeps_coming_is_read_whatever_its_length() -> None:
    """Five words half a timeout apart: two and a half timeouts in all."""
    upstream = PacedUpstream([TIMEOUT_S / 2] * 5)
    assert await _read(upstream) == "w0 w1 w2 w3 w4 "


async def test_a_reply_that_stalls_for_the_timeout_fails_the_call() -> None:
    upstream = PacedUpstream([0.1, 0.1, None])  # two words, then silence
    started = time.monotonic()
    with pytest.raises(ModelError) as failed:
        async with asyncio.timeout(10):  # a watch that never fires fails here instead
            await _read(upstream)
    waited = time.monotonic() - started
    assert failed.value.code == "model_error"
    assert "broke off its reply" in failed.value.message
    assert TIMEOUT_S <= waited < TIMEOUT_S * 3
    async with asyncio.timeout(5):
        await upstream.closed.wait()  # the stalled connection is not kept
