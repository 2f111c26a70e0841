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
can then be written without a coroutine at all (`direct_write`): an in-process bus hands
a token to the stream that follows it in the publisher's step (api.sse), instead of
waking the stream's task, which resumes through every await of the request's chain
(some 25 frames) to write one frame and suspends through them again.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import RequestResponseCycle

SCOPE_KEY = "assistd.body_send"
SERVER_SEND_KEY = "assistd.server_send"

# Writes one chunk of a response body at once; False when it cannot now (the client is
# slow, gone, or the response over), and then nothing was written.
DirectWrite = Callable[[bytes], bool]


class BodySend:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SCOPE_KEY] = send
        await self.app(scope, receive, send)


def body_send(scope: Scope, send: Send) -> Send:
    """The `send` for a stream's middle messages (more_body true): the server's, where
    ServerSend runs, else the one BodySend was given, where it runs, else `send`."""
    found: Send = scope.get(SERVER_SEND_KEY) or scope.get(SCOPE_KEY, send)
    return found


class ServerSend:
    """Wraps the whole application, as the server calls it (see above)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SERVER_SEND_KEY] = send
        await self.app(scope, receive, send)


def direct_write(scope: Scope) -> DirectWrite | None:
    """A synchronous write of a chunked response's body chunks, where the server is
    uvicorn's httptools protocol (the same bytes its `send` writes for a chunk), else
    None. Only once the response has started."""
    cycle = getattr(scope.get(SERVER_SEND_KEY), "__self__", None)
    if type(cycle) is not RequestResponseCycle or not cycle.chunked_encoding:
        return None
    transport, flow = cycle.transport, cycle.flow

    def write(body: bytes) -> bool:
        if flow.write_paused or cycle.disconnected or cycle.response_complete:
            return False
        transport.write(b"%x\r\n%s\r\n" % (len(body), body))
        return True

    return write
