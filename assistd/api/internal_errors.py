"""A pure ASGI guard that answers an unexpected exception with the surface's 500.

Starlette's last-resort handler (ServerErrorMiddleware) sends its 500 and then re-raises,
so that the server can log the error; uvicorn then drops the connection without a
`Connection: close`, and a client's next request on that pooled connection fails with a
reset. Answering here, without re-raising, keeps the connection usable.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("assistd")


class InternalErrors:
    def __init__(self, app: ASGIApp, respond: Callable[[Scope], ASGIApp]) -> None:
        self.app = app
        self.respond = respond

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except ClientDisconnect:
            raise  # the client went away: nothing to answer, and no error of ours
        except Exception:
            log.exception("unhandled error on %s %s", scope["method"], scope["path"])
            # Half a response (a stream) cannot become a 500: returning leaves it
            # incomplete, and the server closes the connection, which is all a client
            # can be told by then.
            if not started:
                await self.respond(scope)(scope, receive, send)
