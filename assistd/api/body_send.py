"""A stream's middle, sent past the middlewares.

Every middleware here wraps `send` to see a response's start (its status) and its last
message (the audit record is written then); the token frames of a stream in between pass
through them unread, eight calls a frame, about 5 % of the server's CPU under 1,000
streams. The outermost of them, BodySend, leaves the `send` it was given in the scope,
and a stream (api.sse.SseResponse) sends its middle frames with it: its start and its
last message still go the whole way. A middleware that must see or change every body
message (compression, say) would have to go outside BodySend.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

SCOPE_KEY = "assistd.body_send"


class BodySend:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope[SCOPE_KEY] = send
        await self.app(scope, receive, send)


def body_send(scope: Scope, send: Send) -> Send:
    """The `send` for a stream's middle messages (more_body true): the one BodySend was
    given, where it runs, else `send`."""
    found: Send = scope.get(SCOPE_KEY, send)
    return found
