"""The audit log's request side: every mutating call (POST, PUT, PATCH, DELETE) of the
DashScope, OpenAI and admin APIs opens an audit entry (a search, which POSTs its query
but changes nothing, is a read: READS_BY_POST), which the store writes in the
transaction of the change it records (store/audit.py), and this middleware completes
with the call's outcome once it has answered.

The authentication dependencies name the key and the workspace (`note`); the route's
template and path ids come from the matched route; an error's code from the error body
(read only for answers of 400 and up). Request bodies are kept only with
`audit_bodies`, redacted and cut at `audit_body_max_bytes`.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Sequence
from typing import Any

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.core.objects import Principal
from assistd.logs import redact
from assistd.store import audit
from assistd.store.audit import AuditEntry
from assistd.store.sql import SqlStore

log = logging.getLogger("assistd.audit")
MUTATING = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_PATH_CHARS = 300
ERROR_BODY_BYTES = 8192  # of an error answer, read for its code
BODY_READ_BYTES = 64 * 1024  # of a request body, read for the log (then redacted and cut)
CLIENT_GONE = 499  # the client went away before the call was answered
# Routes that POST only because their query is a body: reads, not recorded (as GETs are
# not). Recording one cost a write transaction, a commit, per search (bench/README.md).
READS_BY_POST = frozenset({"/v1/vector_stores/{vector_store_id}/search"})
_READ_PATHS = re.compile(
    "|".join(re.sub(r"\\{\w+\\}", "[^/]+", re.escape(t)) for t in sorted(READS_BY_POST))
)


def note(request: Request, who: Principal) -> None:
    """Who makes the current call (the surfaces' authentication dependencies call it)."""
    entry = audit.current.get()
    if entry is not None:
        entry.key_id, entry.workspace = who.key_id, who.workspace_id
        _describe(entry, request.scope)


def _describe(entry: AuditEntry, scope: Scope) -> None:
    route = scope.get("route")
    template = getattr(route, "path_format", None) or getattr(route, "path", None)
    if isinstance(template, str):
        prefix = entry.prefix
        entry.route = template if template.startswith(prefix + "/") else prefix + template
    params: dict[str, Any] = scope.get("path_params") or {}
    entry.path_ids = [str(v) for v in params.values()]


def _path(scope: Scope) -> str:
    """As the client sent it (percent-encoded: no NUL, which PostgreSQL's text refuses)."""
    raw = scope.get("raw_path")
    path = raw.decode("ascii", "backslashreplace") if isinstance(raw, bytes) else scope["path"]
    return str(path).split("?", 1)[0].replace("\x00", "%00")[:MAX_PATH_CHARS]


def _unread_error(outcome: dict[str, Any]) -> bool:
    return bool(outcome["status"] >= 400 and outcome["error"] is None)


def _error_code(chunk: bytes) -> str | None:
    try:
        body = orjson.loads(chunk)
    except orjson.JSONDecodeError:
        return None
    if not isinstance(body, dict):
        return None
    error = body.get("error")
    found = error.get("code") or error.get("type") if isinstance(error, dict) else body.get("code")
    return str(found)[:128] if found else None


def kept_body(raw: bytes, content_type: str, cap: int) -> str:
    """What the log keeps of a request body: JSON or form text, redacted, at most `cap`
    bytes; of anything else (an uploaded file), only its type and size."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind not in ("application/json", "application/x-www-form-urlencoded", ""):
        return f"[{kind} body of {len(raw)} bytes, not kept]"
    text = redact(raw.decode("utf-8", "replace")).replace("\x00", "\\x00")  # PostgreSQL text
    data = text.encode()
    if len(data) <= cap:
        return text
    return data[:cap].decode("utf-8", "ignore") + f"...[{len(data) - cap} more bytes]"


class AuditLog:
    def __init__(
        self, app: ASGIApp, *, prefixes: Sequence[str], bodies: bool, body_max_bytes: int
    ) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.bodies = bodies
        self.body_max_bytes = body_max_bytes

    def _prefix(self, scope: Scope) -> str | None:
        """The API the call goes to, if it is an audited call."""
        if scope["type"] != "http" or scope["method"] not in MUTATING:
            return None
        path = str(scope["path"])
        if _READ_PATHS.fullmatch(path):
            return None
        for prefix in self.prefixes:
            if path == prefix or path.startswith(prefix + "/"):
                return prefix
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        prefix = self._prefix(scope)
        if prefix is None:
            await self.app(scope, receive, send)
            return
        state = scope.get("state") or {}
        entry = AuditEntry(
            at=time.time_ns() // 1_000_000, method=scope["method"], prefix=prefix,
            path=_path(scope), request_id=state.get("request_id"),
        )  # fmt: skip
        outcome: dict[str, Any] = {"status": 0, "error": None}

        async def recording(message: Message) -> None:
            if message["type"] == "http.response.start":
                outcome["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                if _unread_error(outcome):
                    outcome["error"] = _error_code(message.get("body", b"")[:ERROR_BODY_BYTES])
                if not message.get("more_body", False):  # recorded before it is answered
                    await self._finish(scope, entry, outcome["status"], outcome["error"])
            await send(message)

        token = audit.current.set(entry)
        try:
            await self.app(scope, self._reading(scope, receive, entry), recording)
        finally:
            audit.current.reset(token)
            if not entry.closed:  # it never answered: an error, or the client went away
                await self._finish(scope, entry, outcome["status"] or CLIENT_GONE, outcome["error"])

    def _reading(self, scope: Scope, receive: Receive, entry: AuditEntry) -> Receive:
        if not self.bodies:
            return receive
        chunks: list[bytes] = []
        size = 0

        async def reading() -> Message:
            nonlocal size
            message = await receive()
            if message["type"] == "http.request":
                chunk = message.get("body", b"")
                size += len(chunk)
                if sum(map(len, chunks)) < BODY_READ_BYTES:
                    chunks.append(chunk)
                if not message.get("more_body", False):
                    entry.body = self._kept(scope, b"".join(chunks), size)
            return message

        return reading

    def _kept(self, scope: Scope, raw: bytes, size: int) -> str:
        headers = dict(scope.get("headers") or [])
        content_type = headers.get(b"content-type", b"").decode("latin-1")
        if size > len(raw):
            return f"[{content_type or 'body'} of {size} bytes, too large to keep]"
        return kept_body(raw, content_type, self.body_max_bytes)

    async def _finish(
        self, scope: Scope, entry: AuditEntry, status: int, error: str | None
    ) -> None:
        if entry.route is None:
            _describe(entry, scope)
        store: SqlStore = scope["app"].state.store
        try:
            await audit.finish(store.writing, entry, status, error, store.insert_audit_row)
        except Exception:
            log.exception("could not record %s %s in the audit log", entry.method, entry.path)
