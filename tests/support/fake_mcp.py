"""Real MCP servers for tests, built with the official SDK's `MCPServer`: one served over
streamable HTTP by uvicorn in a thread, and the same tools over stdio (run
`python -m tests.support.fake_mcp_stdio`). Its tools cover what a client must map: text,
an image, audio, resource links, embedded resources, structured content, a tool error, a
JSON-RPC error and a slow call. Tools are listed two per page, so a client must follow
the cursor to see them all."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.server.mcpserver.utilities.types import Image
from mcp.shared.exceptions import MCPError
from mcp_types import (
    AudioContent,
    BlobResourceContents,
    CallToolResult,
    EmbeddedResource,
    ListToolsResult,
    PaginatedRequestParams,
    ResourceLink,
    TextContent,
    TextResourceContents,
)
from PIL import Image as PILImage
from uvicorn.protocols.http.h11_impl import H11Protocol

PAGE = 2  # tools per tools/list page
TOOL_NAMES = (
    "add", "draw", "fail", "refuse", "slow", "mixed", "weather", "data", "shout", "big", "pid",
)  # fmt: skip


def png(color: str = "red", size: int = 8) -> bytes:
    """A small valid PNG."""
    out = io.BytesIO()
    PILImage.new("RGB", (size, size), color).save(out, format="PNG")
    return out.getvalue()


class _PagedServer(MCPServer):
    """An MCPServer whose tools/list answers a page at a time, with a cursor."""

    async def _handle_list_tools(self, ctx: Any, params: PaginatedRequestParams | None) -> Any:
        tools = await self.list_tools()
        start = int(params.cursor) if params is not None and params.cursor else 0
        after = start + PAGE
        return ListToolsResult(
            tools=tools[start:after], next_cursor=str(after) if after < len(tools) else None
        )


@dataclass
class Seen:
    """What the HTTP server saw: every request's headers, in order."""

    headers: list[dict[str, str]] = field(default_factory=list)


def build_server() -> MCPServer:
    server = _PagedServer("fake-mcp", log_level="WARNING")

    @server.tool(description="Adds two numbers.")
    def add(a: float, b: float) -> str:
        return f"{a + b:g}"

    @server.tool(description="Draws a small square of a colour.")
    def draw(color: str = "red") -> Image:
        return Image(data=png(color), format="png")

    @server.tool(description="Always fails.")
    def fail(reason: str = "broken") -> str:
        raise ToolError(f"the tool failed: {reason}")

    @server.tool(description="Answers with a JSON-RPC error.")
    def refuse() -> str:
        raise MCPError(-32602, "refused: bad parameters")

    @server.tool(description="Waits, then answers.")
    async def slow(seconds: float = 1.0) -> str:
        await asyncio.sleep(seconds)
        return f"slept {seconds:g}"

    @server.tool(description="Answers with one of each kind of content.")
    def mixed() -> list[Any]:
        return [
            TextContent(text="here you are"),
            ResourceLink(uri="https://example.com/report.pdf", name="report.pdf"),
            EmbeddedResource(resource=TextResourceContents(uri="mem://notes", text="a note")),
            EmbeddedResource(
                resource=BlobResourceContents(
                    uri="mem://data.bin", mime_type="application/octet-stream", blob="AAEC"
                )
            ),
            AudioContent(data="UklGRg==", mime_type="audio/wav"),
        ]

    @server.tool(description="The weather of a city, as data.", structured_output=True)
    def weather(city: str) -> dict[str, Any]:
        return {"city": city, "celsius": 21}

    @server.tool(description="Data with no text.")
    def data() -> CallToolResult:
        return CallToolResult(content=[], structured_content={"rows": [1, 2, 3]})

    @server.tool(description="Says a word loudly.")
    def shout(word: str) -> str:
        return word.upper()

    @server.tool(description="A long answer.")
    def big(size: int = 100_000) -> str:
        return "x" * size

    @server.tool(description="The server's process id.")
    def pid() -> str:
        return str(os.getpid())

    return server


@dataclass
class HttpMcp:
    """A running streamable-HTTP MCP server."""

    host: str
    port: int
    seen: Seen
    connections: list[int]  # one entry per TCP connection accepted

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/mcp"


class _Recorder:
    """ASGI middleware: remembers each request's headers."""

    def __init__(self, app: Any, seen: Seen) -> None:
        self.app, self.seen = app, seen

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
            self.seen.headers.append(headers)
        await self.app(scope, receive, send)


class _Counting(H11Protocol):
    """uvicorn's HTTP/1.1 protocol, counting each connection it is made for."""

    accepted: list[int]

    def connection_made(self, transport: Any) -> None:
        self.accepted.append(1)
        super().connection_made(transport)


@contextmanager
def http_mcp(host: str = "127.0.0.1") -> Iterator[HttpMcp]:
    """An MCP server over streamable HTTP on `host`, in a thread, until the block ends."""
    seen = Seen()
    connections: list[int] = []
    app = _Recorder(build_server().streamable_http_app(host=host), seen)
    # IPPROTO_TCP, not the default 0: asyncio sets TCP_NODELAY only on connections accepted
    # from a socket that says it is TCP (as uvicorn's own, opened by host and port, does).
    # Without it Nagle holds each response's body, written after its head, until the
    # client ACKs the head, which Linux delays ~40 ms: a stall no real server has.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind((host, 0))
    port = int(sock.getsockname()[1])
    protocol = type("Counting", (_Counting,), {"accepted": connections})
    config = uvicorn.Config(
        app, log_level="warning", lifespan="on", ws="none", http=protocol, loop="asyncio"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the fake MCP server did not start")
        time.sleep(0.02)
    try:
        yield HttpMcp(host, port, seen, connections)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


STDIO_MODULE = "tests.support.fake_mcp_stdio"


def stdio_command() -> tuple[str, list[str]]:
    """The command and arguments that run the fake server over stdio."""
    return sys.executable, ["-m", STDIO_MODULE]
