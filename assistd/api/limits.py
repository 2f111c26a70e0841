"""A pure ASGI guard on request body size: 413 before the body is read into memory."""

from __future__ import annotations

from collections.abc import Callable

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.errors import PayloadTooLarge


class BodySizeLimit:
    def __init__(
        self,
        app: ASGIApp,
        limit_for: Callable[[Scope], int],
        reject: Callable[[Scope, int], ASGIApp],
    ) -> None:
        self.app = app
        self.limit_for = limit_for
        self.reject = reject

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "DELETE", "OPTIONS"):
            await self.app(scope, receive, send)
            return
        limit = self.limit_for(scope)
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self.reject(scope, limit)(scope, receive, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > limit:
                raise PayloadTooLarge(
                    f"The request body is larger than the limit of {limit} bytes."
                )
            return message

        await self.app(scope, counted, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope["headers"]:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None
