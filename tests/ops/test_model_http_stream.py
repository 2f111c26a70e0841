"""The model calls' own HTTP/1.1 client (models/http_stream.py), against real upstreams on
sockets: what goes on the wire, kept connections the upstream closed, replies that end
with their connection or break off, and the cap on connections open at once."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable

import orjson
import pytest

from assistd.models.base import ModelError, ModelRequest, TextDelta
from assistd.models.http_stream import HttpStreamClient, Limits, Target
from assistd.models.openai_compat import OpenAICompatBackend
from tests.support.upstream import SocketUpstream, chunk

REQUEST = ModelRequest(model="m", messages=[{"role": "user", "content": "hello"}])


def _event(text: str) -> bytes:
    choice = {"index": 0, "delta": {"content": text}, "finish_reason": None}
    return b"data: " + orjson.dumps({"id": "c", "choices": [choice]}) + b"\n\n"


CHUNKED = (
    b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
    + chunk(_event("hi"))
    + chunk(b"data: [DONE]\n\n")
    + b"0\r\n\r\n"
)


class ScriptedUpstream(SocketUpstream):
    """Answers each request with `reply`; records each request's head and body. With
    `close_after`, closes a connection once it has answered that many requests."""

    def __init__(self, reply: bytes, close_after: int | None = None) -> None:
        super().__init__()
        self.reply = reply
        self.close_after = close_after
        self.heads: list[bytes] = []
        self.bodies: list[bytes] = []
        self.connections = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        answered = 0
        try:
            while self.close_after is None or answered < self.close_after:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.lower() == b"content-length":
                        length = int(value)
                self.heads.append(head)
                self.bodies.append(await reader.readexactly(length))
                writer.write(self.reply)
                await writer.drain()
                answered += 1
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()


async def _text(backend: OpenAICompatBackend) -> str:
    return "".join([c.text async for c in backend.stream(REQUEST) if isinstance(c, TextDelta)])


async def _request_head(base_of: Callable[[str], str] = str) -> tuple[str, str, bytes]:
    """The base URL (`base_of` the upstream's), and the head and body of the request one
    call to it sent."""
    upstream = ScriptedUpstream(CHUNKED)
    base = base_of(await upstream.start())
    backend = OpenAICompatBackend(base, "sk-test")
    try:
        assert await _text(backend) == "hi"
    finally:
        await backend.close()
        await upstream.close()
    return base, upstream.heads[0].decode(), upstream.bodies[0]


async def test_the_request_on_the_wire() -> None:
    base, head, sent = await _request_head()
    port = base.split(":")[2].split("/")[0]
    assert head.startswith("POST /v1/chat/completions HTTP/1.1\r\n")
    assert f"\r\nHost: 127.0.0.1:{port}\r\n" in head
    assert "\r\nAuthorization: Bearer sk-test\r\n" in head
    assert "\r\nContent-Type: application/json\r\n" in head
    body = orjson.loads(sent)
    assert body["model"] == "m" and body["stream"] is True


async def test_credentials_in_the_url_go_as_basic_auth_instead_of_the_key() -> None:
    _, head, _ = await _request_head(lambda url: url.replace("http://", "http://user:pa%3Ass@"))
    assert "Bearer" not in head
    assert f"\r\nAuthorization: Basic {base64.b64encode(b'user:pa:ss').decode()}\r\n" in head


async def test_a_kept_connection_the_upstream_closed_is_replaced_without_a_failure() -> None:
    upstream = ScriptedUpstream(CHUNKED, close_after=1)  # every connection answers once
    backend = OpenAICompatBackend(await upstream.start(), "key", max_retries=0)
    try:
        assert await _text(backend) == "hi"
        await asyncio.sleep(0.2)  # the upstream's close arrives
        assert await _text(backend) == "hi"
        assert await _text(backend) == "hi"  # this one is sent before the close is seen
    finally:
        await backend.close()
        await upstream.close()
    assert upstream.connections == 3


async def test_kept_connections_are_used_again() -> None:
    upstream = ScriptedUpstream(CHUNKED)
    backend = OpenAICompatBackend(await upstream.start(), "key")
    try:
        for _ in range(5):
            assert await _text(backend) == "hi"
    finally:
        await backend.close()
        await upstream.close()
    assert upstream.connections == 1
    assert len(upstream.heads) == 5


async def test_a_reply_that_ends_with_its_connection_is_read_whole() -> None:
    """HTTP/1.0 style: no length and not chunked, the body ends when the upstream closes."""
    reply = b"HTTP/1.0 200 OK\r\nContent-Type: text/event-stream\r\n\r\n" + _event("a")
    upstream = ScriptedUpstream(reply + _event("b") + b"data: [DONE]\n\n", close_after=1)
    backend = OpenAICompatBackend(await upstream.start(), "key")
    try:
        assert await _text(backend) == "ab"
    finally:
        await backend.close()
        await upstream.close()


@pytest.mark.parametrize(
    "reply",
    [
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunk(_event("a")),
        b"HTTP/1.1 200 OK\r\nContent-Length: 500\r\n\r\n" + _event("a"),
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nnot a chunk",
    ],
    ids=["chunked-cut", "length-cut", "garbage"],
)
async def test_a_reply_that_breaks_off_fails_the_call(reply: bytes) -> None:
    failed = await _failure(reply)
    assert failed.code == "model_error"
    assert "broke off its reply" in failed.message


async def test_a_head_that_is_not_http_fails_the_call() -> None:
    failed = await _failure(b"SSH-2.0-OpenSSH\r\n\r\n")
    assert failed.code == "model_unreachable"


async def _failure(reply: bytes) -> ModelError:
    """How one call to an upstream answering `reply` (then closing) fails."""
    upstream = ScriptedUpstream(reply, close_after=1)
    backend = OpenAICompatBackend(await upstream.start(), "key", max_retries=0)
    try:
        with pytest.raises(ModelError) as failed:
            await _text(backend)
    finally:
        await backend.close()
        await upstream.close()
    return failed.value


class HeldUpstream(SocketUpstream):
    """Holds every request until `go` is set, counting the connections open at once."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()
        self.open = 0
        self.most_open = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                await self.go.wait()
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def test_calls_past_the_connection_cap_wait_for_a_connection() -> None:
    upstream = HeldUpstream()
    base = await upstream.start()
    limits = Limits(connections=3, kept=3, keepalive_s=5)
    client = HttpStreamClient(Target.of(base, {}), 5.0, limits)

    async def call() -> str:
        reply = await client.post(b"{}")
        text = await reply.text(100)
        reply.release()
        return text

    try:
        calls = [asyncio.ensure_future(call()) for _ in range(7)]
        await asyncio.sleep(0.3)
        assert upstream.open == 3  # the other four wait for one of these
        upstream.go.set()
        assert await asyncio.gather(*calls) == ["ok"] * 7
        assert upstream.most_open == 3
    finally:
        await client.close()
        await upstream.close()


async def test_text_taken_as_it_arrives_is_not_in_the_stream_and_the_order_holds() -> None:
    """The taker declines the second word: it and everything behind it (the reply comes
    in one block) come through the stream, in order."""
    words = [f"w{i} " for i in range(6)]
    body = b"".join(chunk(_event(w)) for w in words)
    usage = {"id": "c", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 6}}
    reply = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n"
        + body
        + chunk(b"data: " + orjson.dumps(usage) + b"\n\n")
        + chunk(b"data: [DONE]\n\n")
        + b"0\r\n\r\n"
    )
    upstream = ScriptedUpstream(reply)
    backend = OpenAICompatBackend(await upstream.start(), "key")
    seen: list[tuple[str, str]] = []

    def take(text: str) -> bool:
        if text == "w1 ":
            return False
        seen.append(("taken", text))
        return True

    try:
        async for part in backend.stream(REQUEST, take):
            seen.append(
                ("stream", part.text if isinstance(part, TextDelta) else type(part).__name__)
            )
    finally:
        await backend.close()
        await upstream.close()
    assert "".join(text for _, text in seen if text.startswith("w")) == "".join(words)
    assert seen[0] == ("taken", "w0 ")
    assert seen[1] == ("stream", "w1 ")
    assert ("stream", "Usage") in seen
    # all six words arrive in one block: behind the declined one, the rest are queued too
    assert [how for how, text in seen if text.startswith("w")][1:] == ["stream"] * 5


class TwoPartUpstream(SocketUpstream):
    """Sends a reply's head and first chunk, then the rest once `go` is set."""

    def __init__(self) -> None:
        super().__init__()
        self.go = asyncio.Event()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(CHUNKED.split(b"\r\n\r\n", 1)[0] + b"\r\n\r\n" + chunk(b"one"))
            await writer.drain()
            await self.go.wait()
            writer.write(chunk(b"two") + b"0\r\n\r\n")
            await writer.drain()
        except ConnectionError:
            pass
        finally:
            writer.close()


async def test_a_connection_the_pacer_holds_reads_nothing_until_it_lets_go() -> None:
    upstream = TwoPartUpstream()
    client = HttpStreamClient(Target.of(await upstream.start(), {}), 5.0, Limits(4, 4, 5))
    try:
        reply = await client.post(b"{}")
        connection = reply._connection
        for _ in range(100):
            if connection.body_bytes:
                break
            await asyncio.sleep(0.01)
        assert connection.body_bytes == 3
        connection.hold(True)
        upstream.go.set()
        await asyncio.sleep(0.2)
        assert connection.body_bytes == 3  # sent, but not read
        connection.hold(False)
        assert await reply.text(100) == "onetwo"
    finally:
        await client.close()
        await upstream.close()
