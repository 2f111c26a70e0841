"""A pure ASGI guard on request bodies: 413 before a body too large is read into memory,
and 408 for a body that does not arrive whole within `body_timeout_s` of the request's
head, plus a second for every MIN_BODY_RATE bytes that did arrive (so a large upload on a
modest link finishes, while a trickle of bytes gains next to nothing). Either answer
closes the connection, so the rest of the body is not read."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.errors import PayloadTooLarge, RequestTimeout

MIN_BODY_RATE = 64 * 1024  # bytes a second that earn a body more time


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[Scope], int],
        reject: Callable[[Scope, int], ASGIApp],
        body_timeout_s: float = 30.0,
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.reject = reject
        self.body_timeout_s = body_timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        body = _Body(receive, send, limit, self.body_timeout_s)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            body.close_after = True
            await self.reject(scope, limit)(scope, receive, body.send)
            return
        await self.app(scope, body.receive, body.send)


class _Body:
    """One request's body as the app reads it: counted, and on a deadline."""

    def __init__(self, receive: Receive, send: Send, limit: int, timeout_s: float) -> None:
        self._receive = receive
        self._send = send
        self.limit = limit
        self.timeout_s = timeout_s
        self.started = asyncio.get_running_loop().time()
        self.deadline = self.started + timeout_s
        self.seen = 0
        self.complete = False
        self.close_after = False  # answer with `Connection: close`

    async def receive(self) -> Message:
        if self.complete:  # e.g. a streaming response listening for the disconnect
            return await self._receive()
        try:
            async with asyncio.timeout_at(self.deadline):
                message = await self._receive()
        except TimeoutError:
            self.close_after = True
            raise RequestTimeout(
                f"The request body did not arrive within {self.timeout_s:g} seconds "
                f"(plus one for every {MIN_BODY_RATE // 1024} KiB received)."
            ) from None
        self.complete = message["type"] != "http.request" or not message.get("more_body", False)
        self.seen += len(message.get("body", b""))
        self.deadline = self.started + self.timeout_s + self.seen / MIN_BODY_RATE
        if self.seen > self.limit:
            self.close_after = True
            raise PayloadTooLarge(
                f"The request body is larger than the limit of {self.limit} bytes."
            )
        return message

    async def send(self, message: Message) -> None:
        if self.close_after and message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"connection", b"close")]
            message = {**message, "headers": headers}
        await self._send(message)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
