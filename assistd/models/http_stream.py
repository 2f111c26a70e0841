"""A small HTTP/1.1 client for a model endpoint's streamed replies: asyncio and httptools.

A streamed run is one model reply read a token at a time, and under a thousand streams
each token is read alone, so what reading one costs is most of what relaying it costs.
aiohttp took 27-29 us of CPU a token (its protocol, its payload StreamReader, the
iterator over it and the timers it re-arms); a protocol feeding httptools' parser, the
body's blocks handed straight to the one reader waiting, 17 (bench/README.md). What this
keeps of aiohttp's: kept-alive connections (at most `max_kept`, each for `keepalive_s`;
aiohttp kept every connection a burst opened), a stale kept connection retried once on a
fresh one, TLS for https, the connect timeout, and a reply's body timed by the bytes
that arrive. It posts and streams, nothing else: no redirects, proxies or compression.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import cast

import httptools
import yarl

from assistd.models.pacer import pacer_of

HIGH_WATER = 256 * 1024  # bytes of a body read ahead of its reader before reading pauses
DRAIN_S = 5.0  # how long a released reply may take to end before its connection goes


class UpstreamError(Exception):
    """The connection to the upstream failed, or its reply broke off or made no sense."""


class ReplyBroken(UpstreamError):
    pass


@dataclass(frozen=True, slots=True)
class Target:
    """Where requests go: the connection's address and the request's path and head."""

    host: str
    port: int
    tls: ssl.SSLContext | None
    path: str
    head: bytes  # the request head's lines after the request line, less Content-Length

    @classmethod
    def of(cls, url: str, headers: dict[str, str]) -> Target:
        parsed = yarl.URL(url)
        host = parsed.host or "localhost"
        port = parsed.port or (443 if parsed.scheme == "https" else 80)
        named = f"[{host}]" if ":" in host else host  # an IPv6 address
        if parsed.explicit_port is not None:
            named += f":{parsed.explicit_port}"
        lines = {"Host": named, "User-Agent": "assistd"}
        if parsed.user is not None:  # credentials in the URL: basic auth
            pair = f"{parsed.user}:{parsed.password or ''}".encode()
            lines["Authorization"] = "Basic " + base64.b64encode(pair).decode()
        lines.update(headers)
        head = "".join(f"{name}: {value}\r\n" for name, value in lines.items()).encode()
        tls = ssl.create_default_context() if parsed.scheme == "https" else None
        return cls(host, port, tls, parsed.raw_path_qs, head)


@dataclass(frozen=True, slots=True)
class Limits:
    connections: int  # open at once; a call past it waits for one to close or come back
    kept: int  # idle connections kept for the next call
    keepalive_s: float  # how long an idle one is kept


class Reply:
    """One response: its status and headers once the head is in, then its body."""

    def __init__(self, connection: _Connection) -> None:
        self._connection = connection
        self.status = 0
        self.headers: dict[str, str] = {}

    @property
    def total_bytes(self) -> int:
        """Body bytes received so far (a watch on a stalled reply looks at it)."""
        return self._connection.body_bytes

    @property
    def ended(self) -> bool:
        """The whole body is in."""
        return self._connection.complete

    def feed_to(self, sink: Callable[[bytes], bool]) -> None:
        """Hands the body to `sink` as it arrives, in the connection's step, from what
        came already on; `sink` says whether the reader waiting in `wait` should wake."""
        connection = self._connection
        while block := connection.take_buffered():
            sink(block)
        connection.sink = sink

    async def wait(self) -> None:
        """Until the sink asks for the reader, the body ends, or the reply fails (raised)."""
        connection = self._connection
        connection.check()
        if not connection.complete:
            await connection.more()
            connection.check()

    async def blocks(self) -> AsyncIterator[bytes]:
        """The body as it arrives, to its end; raises if the reply breaks off."""
        connection = self._connection
        while True:
            block = connection.take()
            if block:
                yield block
            elif connection.complete:
                return
            else:
                await connection.more()

    async def text(self, limit: int) -> str:
        """Up to `limit` characters of the body (an error reply's)."""
        parts: list[bytes] = []
        size = 0
        async for block in self.blocks():
            parts.append(block)
            size += len(block)
            if size >= limit:
                break
        return b"".join(parts).decode(errors="replace")[:limit]

    def fail(self, exc: BaseException) -> None:
        """Breaks the reply off (its reader gets `exc`) and drops the connection."""
        self._connection.fail(exc)

    def release(self) -> None:
        """Done with the reply: its connection is kept once the body has ended (within
        DRAIN_S), else closed."""
        self._connection.release()

    def close(self) -> None:
        self._connection.close()


class _Connection(asyncio.Protocol):
    """One connection, carrying one reply at a time (httptools calls the on_* methods)."""

    def __init__(self, client: HttpStreamClient) -> None:
        self._client = client
        self._loop = client.loop
        self._pacer = pacer_of(client.loop)
        self.transport: asyncio.Transport | None = None
        self.reply: Reply | None = None
        self._parser: httptools.HttpResponseParser | None = None
        self._head: asyncio.Future[None] | None = None
        self._waiter: asyncio.Future[None] | None = None
        self._blocks: deque[bytes] = deque()
        self._buffered = 0
        self._paused = False  # its reader is behind: reading stops (HIGH_WATER)
        self._held = False  # the loop's pacer is behind: reading stops (pacer)
        self._until_eof = False  # no length and not chunked: the body ends with the connection
        self._error: BaseException | None = None
        self._drain: asyncio.TimerHandle | None = None
        self.sink: Callable[[bytes], bool] | None = None
        self.body_bytes = 0
        self.complete = False
        self.closed = False
        self.keep_alive = True
        self.released = False
        self.idle_since = 0.0

    # asyncio.Protocol

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass

    def data_received(self, data: bytes) -> None:
        self._pacer.feed(self, data)  # relayed now, or in the loop's next slice (pacer)

    def feed(self, data: bytes) -> None:
        if self.closed:  # closed here while its bytes waited: read no more, as uvloop would
            return
        if self._parser is None:  # nothing asked: an idle connection the upstream wrote on
            self.close()
            return
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            self.fail(ReplyBroken(f"the reply is not HTTP/1.1 ({exc})"))

    def connection_lost(self, exc: Exception | None) -> None:
        self._pacer.flush(self)  # what came before the end first
        self.closed = True
        self._client.forget(self)
        if self._parser is not None and not self.complete:
            if self._until_eof and exc is None and (self._head is None or self._head.done()):
                self.on_message_complete()
            else:
                cause = ReplyBroken("the upstream closed the connection before its reply ended")
                cause.__cause__ = exc
                self._set_error(cause)

    # httptools' callbacks

    def on_header(self, name: bytes, value: bytes) -> None:
        assert self.reply is not None
        self.reply.headers[name.decode("latin-1").lower()] = value.decode("latin-1")

    def on_headers_complete(self) -> None:
        assert self.reply is not None and self._parser is not None
        self.reply.status = self._parser.get_status_code()
        self.keep_alive = self._parser.should_keep_alive()
        headers = self.reply.headers
        self._until_eof = (
            "content-length" not in headers
            and "chunked" not in headers.get("transfer-encoding", "").lower()
        )
        if self._head is not None and not self._head.done():
            self._head.set_result(None)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        if self.sink is not None:
            if self.sink(body):
                self._wake()
            return
        self._blocks.append(body)
        self._buffered += len(body)
        if self._buffered > HIGH_WATER and not self._paused:
            self._paused = True
            self._update_reading()
        self._wake()

    def on_message_complete(self) -> None:
        self.complete = True
        self._parser = None
        self._wake()
        if self.released:
            self._put_back()

    # the reply's side

    async def send(self, request: bytes) -> None:
        """Writes `request` and waits for the reply's head."""
        assert self.transport is not None
        self.reply = Reply(self)
        self._parser = httptools.HttpResponseParser(self)
        self._head = self._loop.create_future()
        self.transport.write(request)
        await self._head

    def take_buffered(self) -> bytes:
        """What came of the body and was not read yet (b"" if nothing)."""
        if not self._blocks:
            return b""
        return self.take()

    def check(self) -> None:
        """Raises the reply's failure, if it failed."""
        if self._error is not None:
            raise self._error

    def take(self) -> bytes:
        if self._blocks:
            block = b"".join(self._blocks) if len(self._blocks) > 1 else self._blocks[0]
            self._blocks.clear()
            self._buffered = 0
            if self._paused:
                self._paused = False
                self._update_reading()
            return block
        if self._error is not None:
            raise self._error
        return b""

    def hold(self, held: bool) -> None:
        """The pacer's backpressure: no reading while too much waits to be relayed."""
        self._held = held
        self._update_reading()

    def _update_reading(self) -> None:
        transport = self.transport
        if transport is None or self.closed:
            return
        if self._paused or self._held:
            transport.pause_reading()  # (no-ops where reading is paused or resumed already)
        else:
            transport.resume_reading()

    async def more(self) -> None:
        self._waiter = self._loop.create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def _set_error(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
        head = self._head
        if head is not None and not head.done():
            head.set_exception(exc)
        self._wake()

    def fail(self, exc: BaseException) -> None:
        self._set_error(exc)
        self.close()

    def release(self) -> None:
        self.released = True
        if self.complete:
            self._put_back()
        elif not self.closed:
            self._drain = self._loop.call_later(DRAIN_S, self.close)

    def _put_back(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        if not self.keep_alive or self.closed or self._error is not None:
            self.close()
            return
        self.reply, self._head, self.released, self.complete = None, None, False, False
        self.sink = None
        self._blocks.clear()  # what a reader left unread of the reply
        self.body_bytes = self._buffered = 0
        if self._paused:
            self._paused = False
            self._update_reading()
        self._client.keep(self)

    def close(self) -> None:
        if self._drain is not None:
            self._drain.cancel()
            self._drain = None
        self.closed = True
        if self.transport is not None:
            self.transport.close()


class HttpStreamClient:
    """POSTs to one upstream over kept-alive connections (one client a backend and loop)."""

    def __init__(self, target: Target, timeout_s: float, limits: Limits) -> None:
        self.target = target
        self.loop = asyncio.get_running_loop()
        self._timeout_s = timeout_s
        self._limits = limits
        self._idle: deque[_Connection] = deque()  # oldest first
        self._open: set[_Connection] = set()
        self._sweep: asyncio.TimerHandle | None = None
        self._waiting: deque[asyncio.Future[None]] = deque()  # for a connection, at the limit

    async def post(self, body: bytes) -> Reply:
        """The reply's head, on a kept connection or a new one, each step within the
        timeout. A kept connection the upstream had closed meanwhile fails before its
        head: the request goes once more on a new one, as aiohttp and httpx do."""
        request = self._request(body)
        connection = self._kept()
        if connection is not None:
            try:
                return await self._send(connection, request)
            except UpstreamError:
                pass
        while len(self._open) >= self._limits.connections and not self._idle:
            await self._wait_for_room()
        connection = self._kept() or await self._connect()
        return await self._send(connection, request)

    async def _send(self, connection: _Connection, request: bytes) -> Reply:
        try:
            async with asyncio.timeout(self._timeout_s):
                await connection.send(request)
        except BaseException:
            connection.close()
            raise
        assert connection.reply is not None
        return connection.reply

    async def _wait_for_room(self) -> None:
        waiter = self.loop.create_future()
        self._waiting.append(waiter)
        try:
            await waiter
        finally:
            with contextlib.suppress(ValueError):
                self._waiting.remove(waiter)

    def _room(self) -> None:
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    def _request(self, body: bytes) -> bytes:
        target = self.target
        line = b"POST %s HTTP/1.1\r\n" % target.path.encode()
        return line + target.head + b"Content-Length: %d\r\n\r\n" % len(body) + body

    def _kept(self) -> _Connection | None:
        now = self.loop.time()
        while self._idle:
            connection = self._idle.pop()  # the newest: the least likely to be closed
            if not connection.closed and now - connection.idle_since < self._limits.keepalive_s:
                return connection
            connection.close()
        return None

    async def _connect(self) -> _Connection:
        target = self.target
        connection = _Connection(self)
        self._open.add(connection)  # counted from now on: the cap holds while connecting
        try:
            async with asyncio.timeout(self._timeout_s):
                await self.loop.create_connection(
                    lambda: connection, target.host, target.port, ssl=target.tls,
                    server_hostname=target.host if target.tls else None,
                )  # fmt: skip
        except OSError as exc:
            self.forget(connection)
            raise UpstreamError(f"could not connect to {target.host}:{target.port}") from exc
        except BaseException:
            self.forget(connection)
            raise
        return connection

    def keep(self, connection: _Connection) -> None:
        if len(self._idle) >= self._limits.kept:
            connection.close()
            return
        connection.idle_since = self.loop.time()
        self._idle.append(connection)
        self._room()
        if self._sweep is None:
            self._sweep = self.loop.call_later(self._limits.keepalive_s, self._swept)

    def forget(self, connection: _Connection) -> None:
        self._open.discard(connection)
        with contextlib.suppress(ValueError):
            self._idle.remove(connection)
        self._room()

    def _swept(self) -> None:
        self._sweep = None
        expired = self.loop.time() - self._limits.keepalive_s
        while self._idle and self._idle[0].idle_since <= expired:
            self._idle.popleft().close()
        if self._idle:
            delay = self._idle[0].idle_since + self._limits.keepalive_s - self.loop.time()
            self._sweep = self.loop.call_later(max(delay, 0.0) + 0.01, self._swept)

    async def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for connection in list(self._open):
            connection.close()
        self._idle.clear()
        await asyncio.sleep(0)  # the transports' close callbacks run
