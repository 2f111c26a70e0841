"""What `assistd serve` does around uvicorn, in this order: listen on the port (a taken
port fails before any state is touched), take the store's serving lock (embedded shape
only: the distributed shape runs many processes on one store), print the banner, probe
the model endpoints in the background, and serve."""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx2 as httpx
import uvicorn

from assistd import __version__
from assistd.errors import StartupError
from assistd.models.registry import ModelRegistry
from assistd.server_lock import postgres_session, server_lock
from assistd.settings import ModelRoute, Settings
from assistd.urls import redact_url

log = logging.getLogger("assistd.startup")
BACKLOG = 2048  # uvicorn's default
PROBE_TIMEOUT_S = 3.0


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port, or StartupError saying why not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio turns Nagle off only on accepted sockets whose protocol
    # says TCP, and with Nagle on a response's body waits ~40 ms for the client's delayed
    # ACK of its head (uvicorn writes them separately, and every SSE event alone).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(BACKLOG)
    except OverflowError:
        sock.close()
        raise StartupError(f"cannot listen on port {port}: ports go from 0 to 65535") from None
    except OSError as exc:
        sock.close()
        reason = exc.strerror or str(exc)
        if exc.errno == errno.EADDRINUSE:
            reason = "address already in use (is another server listening there?)"
        raise StartupError(f"cannot listen on {host}:{port}: {reason}") from None
    return sock


def serve(settings: Settings, server: uvicorn.Server, listener: socket.socket) -> None:
    """Runs the server on `listener` until it stops, holding the store's serving lock."""
    with asyncio.Runner(loop_factory=server.config.get_loop_factory()) as runner:
        runner.run(_serve(settings, server, listener))


@asynccontextmanager
async def _lock_or_check(settings: Settings) -> AsyncIterator[None]:
    """The embedded shape holds the store's serving lock; the distributed one only checks
    that PostgreSQL answers (saying so plainly when it does not)."""
    if not settings.redis_url:
        async with server_lock(settings):
            yield
        return
    async with postgres_session(settings.resolved_database_url, "serve"):
        pass
    yield


async def _serve(settings: Settings, server: uvicorn.Server, listener: socket.socket) -> None:
    async with _lock_or_check(settings):
        registry = ModelRegistry(settings)
        routes = registry.routes
        print(banner(settings, listener, routes), flush=True)
        if missing := registry.local_model_missing():
            log.warning("the local model cannot run: %s; runs on it fail", "; ".join(missing))
        probe = asyncio.create_task(probe_endpoints(routes))
        try:
            await server.serve(sockets=[listener])
        finally:
            probe.cancel()


# ---- the banner ----------------------------------------------------------------------


def _base_url(host: str, listener: socket.socket) -> str:
    port = listener.getsockname()[1]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _storage(settings: Settings) -> str:
    url = settings.resolved_database_url
    if settings.uses_sqlite:
        return f"SQLite database {url.split(':///', 1)[1]}"
    return f"PostgreSQL at {redact_url(url)}"


def _local_model(settings: Settings) -> str:
    path = settings.local_model_path
    return f"the local model {path.resolve()}" if path else "the local model (SmolLM2-135M)"


def _route_line(settings: Settings, name: str, route: ModelRoute) -> str:
    if route.backend == "local":
        return f"model {name}: {_local_model(settings)}"
    upstream = f", as {route.upstream_model}" if route.upstream_model else ""
    endpoint = redact_url(route.endpoint, keep_user=False)
    return f"model {name}: OpenAI-compatible endpoint {endpoint}{upstream}"


def banner(settings: Settings, listener: socket.socket, routes: Mapping[str, ModelRoute]) -> str:
    """The version, where the data lives, where to connect, and where each model name goes
    (credentials in URLs masked, API keys never shown)."""
    base_url = _base_url(settings.host, listener)
    lines = [
        f"assistd {__version__}",
        f"  storage: {_storage(settings)}",
        f"  listening on {base_url} (DashScope API at {base_url}/api/v1)",
    ]
    if settings.redis_url:
        redis = redact_url(settings.redis_url)
        lines.append(f"  runs: distributed, queue and events on Redis at {redis}")
    lines += [f"  {_route_line(settings, name, route)}" for name, route in routes.items()]
    if "*" not in routes:
        names = "other model names" if routes else "every model name"
        lines.append(f"  {names}: {_local_model(settings)}")
    return "\n".join(lines)


# ---- the model endpoint probe ----------------------------------------------------------


def _why(exc: BaseException) -> str:
    """The innermost OS error's words ("Connection refused"), else the exception's."""
    inner: BaseException | None = exc
    while inner is not None:
        if isinstance(inner, ConnectionRefusedError):
            return "connection refused"
        if isinstance(inner, OSError) and inner.strerror:
            return inner.strerror.lower()
        inner = inner.__cause__ or inner.__context__
    return str(exc) or type(exc).__name__


async def _probe(client: httpx.AsyncClient, endpoint: str, names: list[str]) -> None:
    try:
        await client.get(endpoint.rstrip("/") + "/models")
    except httpx.TimeoutException:
        reason = f"no answer within {PROBE_TIMEOUT_S:g} s"
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        reason = _why(exc)
    else:
        return  # any HTTP answer, even 401 or 404, means something listens there
    log.warning(
        "the model endpoint %s (model %s) is not reachable: %s; runs on it fail until it is",
        redact_url(endpoint, keep_user=False),
        ", ".join(names),
        reason,
    )


async def probe_endpoints(routes: Mapping[str, ModelRoute]) -> None:
    """Warns about each configured OpenAI-compatible endpoint that does not answer. Runs
    next to start-up, which never waits for it."""
    endpoints: dict[str, list[str]] = {}
    for name, route in routes.items():
        if route.backend == "openai_compat":
            endpoints.setdefault(route.endpoint, []).append(name)
    async with httpx.AsyncClient(timeout=PROBE_TIMEOUT_S) as client:
        await asyncio.gather(*(_probe(client, url, names) for url, names in endpoints.items()))
