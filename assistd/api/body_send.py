"""A stream's middle, sent past the middlewares, and its frames written in one step.

Every middleware here wraps `send` to see a response's start (its status) and its last
message (the audit record is written then); the token frames of a stream in between pass
through them unread, eight calls a frame, about 5 % of the server's CPU under 1,000
streams. The outermost of them, BodySend, leaves the `send` it was given in the scope,
and a stream (api.sse.SseResponse) sends its middle frames with it: its start and its
last message still go the whole way. A middleware that must see or change every body
message (compression, say) would have to go outside BodySend.

Outside them all, and outside the framework's own wrappers, ServerSend keeps the server's
`send` in the scope. Where the server is uvicorn's httptools protocol, a stream's frames
can then be written without a coroutine at all (`DirectWriter`): an in-process bus hands
a token to the stream that follows it in the publisher's step (api.sse), instead of
waking the stream's task, which resumes through every await of the request's chain
(some 25 frames) to write one frame and suspends through them again.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

SCOPE_KEY = "assistd.body_send"
SERVER_SEND_KEY = "assistd.server_send"


class _SendInScope:
    """Leaves the `send` it is given in the scope, under `key`, while the app runs. It is
    taken out after: left there, the scope held the request's objects in a reference
    cycle (scope -> send -> the server's request cycle -> scope), about 30 objects a
    request that only the collector freed, its young collections taking 4-6 ms each
    under a 1,000-stream load and one sometimes 70."""

    key = ""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        scope[self.key] = send
        try:
            await self.app(scope, receive, send)
        finally:
            del scope[self.key]


class BodySend(_SendInScope):
    """The outermost of the middlewares (see above)."""

    key = SCOPE_KEY


class ServerSend(_SendInScope):
    """Wraps the whole application, as the server calls it (see above)."""

    key = SERVER_SEND_KEY


def body_send(scope: Scope, send: Send) -> Send:
    """The `send` for a stream's middle messages (more_body true): the server's, where
    ServerSend runs, else the one BodySend was given, where it runs, else `send`."""
    found: Send = scope.get(SERVER_SEND_KEY) or scope.get(SCOPE_KEY, send)
    return found


class _Cork:
    """Direct writes held until the end of the event loop's pass, each transport's in
    one write: a fast model's reply comes many tokens a read, and a system call a token
    cost a third of the relay rate. One callback a pass flushes them all, before any
    task woken in the pass runs (the loop's queue is first in, first out), so a stream's
    own later writes stay behind them."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._held: dict[asyncio.WriteTransport, list[bytes]] = {}

    def write(self, transport: asyncio.WriteTransport, data: bytes) -> None:
        held = self._held.get(transport)
        if held is not None:
            held.append(data)
            return
        if not self._held:
            self._loop.call_soon(self._flush)
        self._held[transport] = [data]

    def flush(self, transport: asyncio.WriteTransport) -> None:
        """Writes what `transport` holds now (before anything else is written to it)."""
        parts = self._held.pop(transport, None)
        if parts and not transport.is_closing():
            transport.write(parts[0] if len(parts) == 1 else b"".join(parts))

    def _flush(self) -> None:
        held, self._held = self._held, {}
        for transport, parts in held.items():
            if not transport.is_closing():
                transport.write(parts[0] if len(parts) == 1 else b"".join(parts))


_corks: dict[asyncio.AbstractEventLoop, _Cork] = {}


def _cork() -> _Cork:
    loop = asyncio.get_running_loop()
    cork = _corks.get(loop)
    if cork is None:
        _corks.clear()  # a loop before this one (tests) is done with
        cork = _corks[loop] = _Cork(loop)
    return cork


class DirectWriter:
    """Writes a chunked response's body chunks without a coroutine (the same bytes the
    server's `send` writes for a chunk); they go out by the end of the loop's pass (see
    _Cork), and `flush` sends them before anything goes through the server's `send`."""

    __slots__ = ("_cork", "_cycle", "_flow", "_transport")

    def __init__(self, cycle: RequestResponseCycle, cork: _Cork) -> None:
        self._cycle, self._flow, self._transport, self._cork = (
            cycle,
            cycle.flow,
            cycle.transport,
            cork,
        )

    def write(self, body: bytes) -> bool:
        """Writes `body` as one chunk; False (nothing written) where the client is slow
        or gone, or the response is over."""
        cycle = self._cycle
        if self._flow.write_paused or cycle.disconnected or cycle.response_complete:
            return False
        self._cork.write(self._transport, b"%x\r\n%s\r\n" % (len(body), body))
        return True

    def flush(self) -> None:
        self._cork.flush(self._transport)


def direct_writer(scope: Scope) -> DirectWriter | None:
    """A DirectWriter for the response, where the server is uvicorn's httptools protocol
    and the response is chunked, else None. Only once the response has started."""
    cycle = getattr(scope.get(SERVER_SEND_KEY), "__self__", None)
    if type(cycle) is not RequestResponseCycle or not cycle.chunked_encoding:
        return None
    return DirectWriter(cycle, _cork())
