"""The server's side of observability: one ASGI middleware that counts, times and (with
tracing on) spans every request, and `GET /metrics` in Prometheus's text format.

`/metrics` needs an admin key, like the admin API, unless `metrics_public` opens it
(for a scraper on a private network). What it shows carries no ids: surfaces, route
templates, statuses, model and tool names.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from opentelemetry.trace import Span, SpanKind
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.datastructures import State
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from assistd.api.admin.routes import admin_principal
from assistd.errors import NotFound
from assistd.observability import Telemetry
from assistd.observability.metrics import Metrics

router = APIRouter()
SURFACES = (("/api/v1", "dashscope"), ("/v1", "openai"), ("/admin/v1", "admin"))
EVENT_STREAM = b"text/event-stream"


@router.get("/metrics", include_in_schema=False)
async def metrics(request: Request) -> Response:
    if not request.app.state.settings.metrics_public:
        await admin_principal(request)
    telemetry: Telemetry = request.app.state.runtime.telemetry
    if telemetry.metrics is None:
        raise NotFound("Metrics are off on this server (metrics_enabled = false).")
    return Response(generate_latest(telemetry.metrics.registry), media_type=CONTENT_TYPE_LATEST)


class Observe:
    """Requests by surface, route template, method and status; their duration; the
    event streams open; and a server span per request when tracing is on."""

    def __init__(self, app: ASGIApp, state: State) -> None:
        self.app = app
        self.state = state  # the app's: the runtime (and its telemetry) appears at start

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        runtime = getattr(self.state, "runtime", None)
        if scope["type"] != "http" or runtime is None:
            await self.app(scope, receive, send)
            return
        telemetry: Telemetry = runtime.telemetry
        method = scope["method"]
        parent = _traceparent(scope) if telemetry.tracer is not None else None
        attributes = {"http.request.method": method}
        with telemetry.span(method, attributes, SpanKind.SERVER, parent) as span:
            await self._observe(scope, receive, send, telemetry.metrics, span)

    async def _observe(
        self, scope: Scope, receive: Receive, send: Send, metrics: Metrics | None, span: Span | None
    ) -> None:
        started, status, streaming = time.monotonic(), 0, False

        async def recording(message: Message) -> None:
            nonlocal status, streaming
            if message["type"] == "http.response.start":
                status = int(message["status"])
                streaming = metrics is not None and _is_stream(message)
                if streaming:
                    metrics.streams.inc()  # type: ignore[union-attr]
            await send(message)

        try:
            await self.app(scope, receive, recording)
        finally:
            prefix, surface = _surface(scope["path"])
            route = _route(scope, prefix)
            if metrics is not None:
                if streaming:
                    metrics.streams.dec()
                code = str(status or 500)
                metrics.requests(surface, route, scope["method"], code).inc()
                metrics.request_seconds(surface, route).observe(time.monotonic() - started)
            if span is not None:
                _finish_span(span, scope["method"], route, surface, status or 500)


def _finish_span(span: Span, method: str, route: str, surface: str, status: int) -> None:
    span.update_name(f"{method} {route}")
    attributes: dict[str, Any] = {
        "http.route": route, "http.response.status_code": status, "assistd.surface": surface,
    }  # fmt: skip
    span.set_attributes(attributes)  # and the workspace, once known (logs.bind)


def _traceparent(scope: Scope) -> str | None:
    """A caller's W3C `traceparent` header: the request's span continues its trace."""
    for name, value in scope["headers"]:
        if name == b"traceparent":
            return str(value.decode("latin-1"))
    return None


def _is_stream(message: Message) -> bool:
    return any(
        name == b"content-type" and value.startswith(EVENT_STREAM)
        for name, value in message.get("headers", ())
    )


def _route(scope: Scope, prefix: str) -> str:
    """The matched route's template (`/v1/threads/{thread_id}`), never the path itself,
    so ids do not become label values. (A surface's routes hold their paths without
    the surface's prefix.)"""
    path = getattr(scope.get("route"), "path", None)
    if not isinstance(path, str):
        return "unmatched"
    return path if path.startswith(prefix + "/") else prefix + path


def _surface(path: str) -> tuple[str, str]:
    """The surface's prefix and name ("" and "other" outside the three)."""
    for prefix, surface in SURFACES:
        if path == prefix or path.startswith(prefix + "/"):
            return prefix, surface
    return "", "other"
