"""An ASGI app served by uvicorn in the test's own loop, for tests of how the server's
protocol carries requests (no assistd process)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import uvicorn


@asynccontextmanager
async def served(app: Any, http: Any = "httptools") -> AsyncIterator[int]:
    """`app` served over `http` (uvicorn's httptools protocol, as `assistd serve` runs
    it, unless a protocol class is given); the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=http, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    serving = asyncio.ensure_future(server.serve(sockets=[sock]))
    try:
        for _ in range(500):  # uvicorn says it has started by a flag only
            if server.started:
                break
            await asyncio.sleep(0.01)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await serving
