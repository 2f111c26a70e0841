"""create_app(settings): wires the surfaces over the runtime (runtime.py). Nothing
connects at import time; the lifespan opens and closes everything."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Scope

from assistd.api import links
from assistd.api.admin import openapi as admin_api
from assistd.api.audit import AuditLog
from assistd.api.body_send import BodySend
from assistd.api.common import url_without_nul
from assistd.api.dashscope import errors as dashscope_errors
from assistd.api.dashscope import openapi as dashscope_api
from assistd.api.draining import on_stop_signal
from assistd.api.internal_errors import InternalErrors
from assistd.api.limits import BodySizeLimit
from assistd.api.openai import errors as openai_errors
from assistd.api.openai import openapi as openai_api
from assistd.api.openapi import install_api_docs
from assistd.api.playground import install_playground
from assistd.api.request_log import RequestLog
from assistd.api.sse import StreamGate
from assistd.api.surface_routes import PrefixGroup
from assistd.api.telemetry import Observe
from assistd.api.telemetry import router as metrics_router
from assistd.core.plugin_rules import check_declared_ids
from assistd.errors import (
    AssistdError,
    InvalidRequest,
    MethodNotAllowed,
    NotFound,
    PayloadTooLarge,
    echo,
)
from assistd.process_memory import MemorySettler
from assistd.runtime import Runtime, build_runtime, settle_collector
from assistd.settings import Settings
from assistd.tools.plugins.source import check_declared

log = logging.getLogger("assistd")
DASHSCOPE_PREFIX = dashscope_api.PREFIX
OPENAI_PREFIX = openai_api.PREFIX
ADMIN_PREFIX = admin_api.PREFIX
SURFACES = (dashscope_api.SURFACE, openai_api.SURFACE, admin_api.SURFACE)
UPLOAD_PATHS = frozenset({f"{DASHSCOPE_PREFIX}/files", f"{OPENAI_PREFIX}/files"})
ErrorResponder = Callable[[Request, AssistdError], Response]


def _is_openai(scope: Scope) -> bool:
    path: str = scope["path"]
    return path == OPENAI_PREFIX or path.startswith(OPENAI_PREFIX + "/")


def error_response(request: Request, error: AssistdError) -> Response:
    """Each surface answers errors in its own envelope: OpenAI's under /v1, DashScope's
    flat one elsewhere (the DashScope and admin APIs, and paths of no surface)."""
    respond: ErrorResponder = (
        openai_errors.error_response
        if _is_openai(request.scope)
        else dashscope_errors.error_response
    )
    return respond(request, error)


def _http_error(exc: StarletteHTTPException, scope: Scope) -> AssistdError:
    if exc.status_code == 404:
        if _is_openai(scope):
            return NotFound(f"No such endpoint: {scope['method']} {scope['path']}.")
        return NotFound("No such endpoint. DashScope calls live under /api/v1.")
    if exc.status_code == 405:
        return MethodNotAllowed("This endpoint does not accept that HTTP method.")
    if exc.status_code == 413:
        return PayloadTooLarge(str(exc.detail))
    return InvalidRequest(str(exc.detail))


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(AssistdError)
    async def domain(request: Request, exc: AssistdError) -> Response:
        return error_response(request, exc)

    @app.exception_handler(StarletteHTTPException)
    async def http(request: Request, exc: StarletteHTTPException) -> Response:
        return error_response(request, _http_error(exc, request.scope))

    @app.exception_handler(RequestValidationError)
    async def validation(request: Request, exc: RequestValidationError) -> Response:
        first = exc.errors()[0] if exc.errors() else {"loc": ("request",), "msg": "invalid"}
        where = echo(".".join(str(p) for p in first["loc"]))
        return error_response(request, InvalidRequest(f"'{where}': {first['msg']}.", where))

    # Errors are answered by InternalErrors, which keeps the connection; this handler
    # sees only those raised outside it, after which the server drops the connection.
    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        response = _internal_error(request)
        response.headers["Connection"] = "close"
        return response

    app.add_middleware(InternalErrors, respond=lambda scope: _internal_error(Request(scope)))
    # A NUL in an id would reach PostgreSQL as a parameter it cannot take: refuse the URL
    # first (for the routes included after this).
    app.router.dependencies.append(Depends(url_without_nul))


def _internal_error(request: Request) -> Response:
    error = AssistdError("The server hit an internal error; it has been logged.")
    error.status = 500
    return error_response(request, error)


def _limit_for(settings: Settings) -> Callable[[Scope], int]:
    def limit_for(scope: Scope) -> int:
        if scope["path"].rstrip("/") in UPLOAD_PATHS:
            return settings.max_file_bytes + 1024 * 1024  # one file plus multipart framing
        return settings.max_request_bytes

    return limit_for


def _reject(scope: Scope, limit: int) -> ASGIApp:
    error = PayloadTooLarge(f"The request body is larger than the limit of {limit} bytes.")
    return error_response(Request(scope), error)


def _expose(app: FastAPI, runtime: Runtime) -> None:
    """What the routes read off app.state."""
    state = app.state
    state.runtime = runtime
    state.store, state.tenancy, state.service = runtime.store, runtime.tenancy, runtime.service
    state.plugins, state.plugin_source = runtime.plugins, runtime.plugin_source
    state.file_links, state.runs, state.tools = runtime.file_links, runtime.runs, runtime.tools


def create_app(settings: Settings, *, workers: bool = True) -> FastAPI:
    """`workers`: whether this process also executes runs (and sweeps expired ones);
    `assistd serve --no-worker` runs the API alone, next to `assistd worker` processes."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        runtime = build_runtime(settings, app.state.declared_documents)
        try:
            await runtime.store.migrate()
            announcement = (await runtime.tenancy.bootstrap(settings.api_key)).announcement()
            if announcement:
                print(announcement, flush=True)
            _expose(app, runtime)
            if workers:
                await runtime.start_workers()
            streams: StreamGate = app.state.streams
            undo_signal = on_stop_signal(lambda: streams.close(runtime.bus))
            app.state.ready = True
            settle_collector()
            settler = MemorySettler(runtime.store.release_memory)
            settler.start()
            try:
                yield
            finally:
                await settler.close()
                undo_signal()
                app.state.ready = False
                streams.close(runtime.bus)
        finally:
            await runtime.close()

    app = FastAPI(
        title="assistd", lifespan=lifespan, docs_url=None, redoc_url=None, openapi_url=None
    )
    app.state.settings = settings
    # The configuration's plugins are checked now, so a bad one stops the start.
    check_declared_ids(settings.plugins)
    app.state.declared_documents = check_declared(settings)
    app.state.ready = False
    app.state.streams = StreamGate()
    _install_error_handlers(app)
    for surface in SURFACES:
        before = len(app.router.routes)
        for router in surface.routers:
            app.include_router(router, prefix=surface.prefix)
        grouped = PrefixGroup(surface.prefix, app.router.routes[before:])
        app.router.routes[before:] = [grouped]
    app.include_router(links.router)  # signed file links: no surface, no API key
    app.include_router(metrics_router)  # /metrics (api/telemetry.py)
    install_api_docs(app, SURFACES)
    install_playground(app)  # /ui: static files, no key; the page calls /v1 with one

    @app.get("/healthz")
    async def healthz(request: Request) -> Response:
        ready = bool(request.app.state.ready)
        return Response(
            b'{"status":"ok"}' if ready else b'{"status":"starting"}',
            200 if ready else 503,
            media_type="application/json",
        )

    app.add_middleware(
        BodySizeLimit,
        limit_for=_limit_for(settings),
        reject=_reject,
        body_timeout_s=settings.request_body_timeout_s,
    )
    if settings.audit_log:  # inside RequestLog: its request id goes into the record
        app.add_middleware(
            AuditLog, prefixes=[s.prefix for s in SURFACES], bodies=settings.audit_bodies,
            body_max_bytes=settings.audit_body_max_bytes,
        )  # fmt: skip
    app.add_middleware(RequestLog)  # sees every request and its status
    app.add_middleware(Observe, state=app.state)  # its span holds the log line
    app.add_middleware(BodySend)  # outermost: a stream's middle frames skip the ones inside
    return app
