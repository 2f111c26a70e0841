"""One log line per request: method, path, status, duration and request id.

Never the body, the query string or a header (the API key rides in one). The request id
made here is the one the surfaces echo to the client (`request.state.request_id`), so a
client's report and the operator's log line meet. A client that goes away before it has
sent its whole body is no error of the server's: one debug line, no traceback, no 500.
"""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.logs import log_context

log = logging.getLogger("assistd.request")
MAX_PATH_CHARS = 200
QUIET_PATHS = frozenset({"/healthz"})  # probed every few seconds: logged at debug only


class RequestLog:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = str(uuid.uuid4())
        scope.setdefault("state", {})["request_id"] = request_id
        started = time.monotonic()
        status = 0

        async def recording(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        with log_context(request_id=request_id, workspace=None):
            try:
                await self.app(scope, receive, recording)
            except ClientDisconnect:
                log.debug("%s %s: the client went away before sending its whole body",
                          scope["method"], _path(scope))  # fmt: skip
                return
            except Exception:
                _log_line(scope, status or 500, started)  # the error handler logs the error
                raise
            _log_line(scope, status, started)


def _path(scope: Scope) -> str:
    """The path as the client sent it (percent-encoded, so no control characters), cut short."""
    raw: Any = scope.get("raw_path")
    if isinstance(raw, bytes):
        path = raw.decode("ascii", "backslashreplace")
    else:
        path = repr(str(scope["path"]))[1:-1]
    path = path.split("?", 1)[0]
    return path if len(path) <= MAX_PATH_CHARS else path[:MAX_PATH_CHARS] + "..."


def _log_line(scope: Scope, status: int, started: float) -> None:
    millis = (time.monotonic() - started) * 1000
    method, path = scope["method"], _path(scope)
    level = logging.DEBUG if scope["path"] in QUIET_PATHS else logging.INFO
    fields = {"method": method, "path": path, "status": status, "duration_ms": round(millis, 1)}
    log.log(level, "%s %s %s %.1f ms", method, path, status or "-", millis,
            extra={"fields": fields})  # fmt: skip
