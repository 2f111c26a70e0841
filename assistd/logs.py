"""The server's logging: one set-up, plain text or JSON lines, credentials redacted.

Every line has a UTC timestamp. The request id, workspace and run id travel in context
variables, so every line a request or a run causes carries them where they are known;
with tracing on, so do the trace and span ids of the span the line was logged in.
Redaction happens in the formatter, so no line of any logger (ours, uvicorn's, a
library's) prints a URL's userinfo, a bearer token or an `sk-...` key.
"""

from __future__ import annotations

import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, Literal, TextIO

from opentelemetry.trace import get_current_span

LogLevel = Literal["debug", "info", "warning", "error"]
LogFormat = Literal["text", "json"]
LEVELS: tuple[LogLevel, ...] = ("debug", "info", "warning", "error")

_CONTEXT: dict[str, ContextVar[str | None]] = {
    name: ContextVar(f"assistd_{name}", default=None)
    for name in ("request_id", "workspace", "run_id")
}
# Libraries whose debug (or info) lines would print request bodies, SQL parameters or one
# line per outbound request or migration step: they speak from warning up, whatever the level.
_CHATTY = (
    "aiosqlite", "httpx", "httpx2", "httpcore", "httpcore2", "openai", "multipart",
    "python_multipart", "asyncio", "alembic", "sqlalchemy", "mcp",
)  # fmt: skip

_REDACTIONS: list[tuple[re.Pattern[str], str]] = [
    # userinfo in a URL: scheme://user:pass@host
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/\s@'\"<>]+@"), r"\1***@"),
    # Authorization header values, and bearer tokens wherever they are quoted
    (re.compile(r"(?i)(authorization[\"']?\s*[:=]\s*[\"']?(?:\w+\s+)?)[^\s\"',}]+"), r"\1***"),
    (re.compile(r"(?i)\b(bearer\s+)[A-Za-z0-9._~+/=-]{8,}"), r"\1***"),
    # OpenAI-style secret keys
    (re.compile(r"\bsk-[A-Za-z0-9_-]{4,}"), "sk-***"),
    # api_key=..., "password": "...", in query strings and bodies
    (
        re.compile(
            r"(?i)((?:api[_ -]?key|access[_-]?token|token|secret|password|passwd)"
            r"[\"']?\s*[:=]\s*[\"']?)[^\s\"'&,}]+"
        ),
        r"\1***",
    ),
]


# Words one of which every pattern above needs: a line with none of them (most request
# lines) skips the five regular expressions, which cost tens of microseconds a line.
_CLUES = ("@", "authorization", "bearer", "sk-", "key", "token", "secret", "passw")


def redact(text: str, *secrets: str | None) -> str:
    """`text` with credentials replaced by `***`: the given secrets, wherever they appear,
    and anything shaped like one (URL userinfo, bearer tokens, sk- keys, api_key=...)."""
    for secret in secrets:
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    folded = text.casefold()  # as IGNORECASE folds (the long s, U+017F, is an s)
    if not any(clue in folded for clue in _CLUES):
        return text
    for pattern, replacement in _REDACTIONS:
        text = pattern.sub(replacement, text)
    return text


@contextmanager
def log_context(**values: str | None) -> Iterator[None]:
    """Lines logged inside carry these ids (request_id, workspace, run_id)."""
    tokens: list[tuple[ContextVar[str | None], Token[str | None]]] = [
        (_CONTEXT[name], _CONTEXT[name].set(value)) for name, value in values.items()
    ]
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def bind(**values: str | None) -> None:
    """Adds ids to the current context (e.g. the workspace, once a request is authenticated);
    the enclosing `log_context` undoes it. The workspace also goes on the current span
    (the request's, when tracing is on)."""
    for name, value in values.items():
        _CONTEXT[name].set(value)
    if workspace := values.get("workspace"):
        get_current_span().set_attribute("assistd.workspace_id", workspace)


def current(name: str) -> str | None:
    return _CONTEXT[name].get()


def _timestamp(record: logging.LogRecord) -> str:
    whole = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
    return f"{whole}.{int(record.msecs):03d}Z"


def _context_of(record: logging.LogRecord) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, var in _CONTEXT.items():
        value = getattr(record, name, None) or var.get()
        if value:
            found[name] = str(value)
    span = get_current_span().get_span_context()
    if span.is_valid:  # only with tracing on (otherwise no span is ever current)
        found["trace_id"], found["span_id"] = f"{span.trace_id:032x}", f"{span.span_id:016x}"
    return found


class TextFormatter(logging.Formatter):
    """`2025-01-31T12:00:00.123Z INFO  assistd.request: GET /x 200 3.1ms request_id=...`"""

    def format(self, record: logging.LogRecord) -> str:
        ids = " ".join(f"{k}={v}" for k, v in _context_of(record).items())
        line = f"{_timestamp(record)} {record.levelname:<7} {record.name}: {record.getMessage()}"
        if ids:
            line += f"  {ids}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return redact(line)


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time, level, logger, message, the ids where known, and the
    line's own fields (`extra={"fields": {...}}`: a request's status, a run's tokens)."""

    def format(self, record: logging.LogRecord) -> str:
        fields: dict[str, Any] | None = getattr(record, "fields", None)
        entry: dict[str, Any] = {
            **{k: redact(v) if isinstance(v, str) else v for k, v in (fields or {}).items()},
            "time": _timestamp(record),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
            **_context_of(record),
        }
        if record.exc_info:
            entry["exception"] = redact(self.formatException(record.exc_info))
        return json.dumps(entry, ensure_ascii=False)


def setup_logging(level: str = "info", fmt: str = "text", stream: TextIO | None = None) -> None:
    """Routes every logger (uvicorn's included) through one handler in one format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    number = logging.getLevelName(level.upper())
    root.setLevel(number)
    for name in _CHATTY:
        logging.getLogger(name).setLevel(max(number, logging.WARNING))
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        uvicorn_logger = logging.getLogger(name)
        uvicorn_logger.handlers[:] = []
        uvicorn_logger.propagate = True
    logging.captureWarnings(True)
