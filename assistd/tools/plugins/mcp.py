"""MCP servers as toolsets, through the official `mcp` SDK (v2, on httpx2 like the rest).

A server is reached over streamable HTTP (a URL an API caller registers: every request
goes through the outbound guard, pinned to the checked address and kept on the URL's
origin) or over stdio (a command only the operator declares). Its tools are listed,
cached for `refresh_s` (or until an error), and each is offered as one function.

One connection per toolset is kept open and shared by concurrent calls: opening one costs
a protocol handshake (and, for stdio, starting a process, seconds for a Python server),
so opening per call would multiply a call's latency. A connection found broken is
dropped and the next call opens a new one (for stdio: a new process). The SDK's task
groups must be left by the task that entered them, so a task of its own holds each
connection while calls, from any task, use it.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
from mcp.client import Client, Transport
from mcp.client._transport import ReadStream, TransportStreams
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError
from mcp.shared.message import SessionMessage
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT, Implementation, Tool

from assistd import __version__
from assistd.tools.base import FunctionSpec, JsonDict, ToolContext, ToolResult
from assistd.tools.http import OutboundClient, OutboundError
from assistd.tools.plugins.mcp_results import error_output, to_tool_result
from assistd.tools.plugins.naming import function_name

log = logging.getLogger("assistd.tools.mcp")

MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # one MCP message (a tool's images come base64-encoded)
MAX_PAGES = 100  # of tools/list: a server whose cursor never ends cannot hang a run
MAX_DESCRIPTION = 1024
CLOSE_TIMEOUT_S = 10.0  # the SDK gives a stdio server about 4 s to exit, then kills it
CLIENT_INFO = Implementation(name="assistd", version=__version__)


_Connect = Callable[["_Held"], AbstractAsyncContextManager[Client]]


class McpUnavailable(Exception):
    """The server could not be reached or its tools listed; str() is a sentence for the
    model (the registry shows it when `functions` raises it)."""


@dataclass(frozen=True, slots=True)
class McpServer:
    """Where an MCP server is: `url` (streamable HTTP) or `command` (stdio)."""

    url: str | None = None
    command: str | None = None  # stdio: only from the operator's configuration
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict, repr=False)  # over a minimal one
    cwd: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)  # may hold a secret
    authorization: str | None = field(default=None, repr=False)  # sent as a bearer token
    allowed_tools: tuple[str, ...] | None = None  # None: all the server's tools

    def __post_init__(self) -> None:
        if (self.url is None) == (self.command is None):
            raise ValueError("an MCP server needs exactly one of a url and a command")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"the MCP server URL must be http(s), not '{self.url}'")

    def http_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.authorization:
            headers["Authorization"] = f"Bearer {self.authorization}"
        return headers


@dataclass(frozen=True, slots=True)
class _Listed:
    spec: FunctionSpec
    tool: str  # the name the server knows the tool by


class _Held:
    """One open MCP client, held open by a task of its own until stop()."""

    def __init__(self, name: str, connect: _Connect) -> None:
        self.ready: asyncio.Future[Client] = asyncio.get_running_loop().create_future()
        self._stop = asyncio.Event()
        self.broken = False  # its stream ended, or a call found it closed
        # A context of its own: the connection outlives the run whose call opened it.
        self._task = asyncio.create_task(
            self._hold(connect), name=f"mcp:{name}", context=contextvars.Context()
        )

    async def _hold(self, connect: _Connect) -> None:
        try:
            async with connect(self) as client:
                self.ready.set_result(client)
                await self._stop.wait()
        except Exception as exc:
            if not self.ready.done():
                self.ready.set_exception(exc)
            else:
                log.info("an MCP connection ended: %s", _reason(exc))
        finally:
            if not self.ready.done():  # cancelled while opening
                self.ready.set_exception(ConnectionError("the connection was closed"))
            self.broken = True

    async def client(self) -> Client:
        return await asyncio.shield(self.ready)  # a cancelled caller leaves it opening

    @property
    def alive(self) -> bool:
        return not self.broken and not self._task.done()

    async def stop(self) -> None:
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), CLOSE_TIMEOUT_S)
        except TimeoutError:
            self._task.cancel()
        if self.ready.done() and not self.ready.cancelled():
            self.ready.exception()  # retrieved: no "never retrieved" warning


class McpToolset:
    """The tools of one MCP server, as the functions of one plugin."""

    def __init__(
        self,
        plugin_id: str,
        server: McpServer,
        *,
        refresh_s: float = 600.0,
        output_bytes: int = 32768,
        call_timeout_s: float = 60.0,
        open_timeout_s: float = 30.0,
        message_bytes: int = MAX_MESSAGE_BYTES,
    ) -> None:
        self.plugin_id = plugin_id
        self.server = server
        self.refresh_s = refresh_s
        self.output_bytes = output_bytes
        self.call_timeout_s = call_timeout_s
        self.open_timeout_s = open_timeout_s  # to connect (start a process) and list tools
        self.message_bytes = message_bytes
        self._held: _Held | None = None
        self._open_lock = asyncio.Lock()
        self._list_lock = asyncio.Lock()
        self._listing: dict[str, _Listed] | None = None
        self._listed_at = 0.0
        self._stale = False
        self._closed = False

    @property
    def connected(self) -> bool:
        """Whether a connection to the server is open (and not known to be broken)."""
        return self._held is not None and self._held.alive

    async def functions(self, context: ToolContext) -> list[FunctionSpec]:
        return [listed.spec for listed in (await self._tools(context)).values()]

    async def call(self, function: str, args: JsonDict, context: ToolContext) -> ToolResult:
        if self._closed:
            return ToolResult(output=error_output("closed", "this MCP server was closed"))
        try:
            listed = (await self._tools(context)).get(function)
        except McpUnavailable as exc:
            return ToolResult(output=error_output("unavailable", str(exc)))
        if listed is None:
            return ToolResult(output=error_output(
                "unknown_tool", f"the MCP server of '{self.plugin_id}' has no tool '{function}'"
            ))  # fmt: skip
        try:
            client = await self._open(context)
            async with asyncio.timeout(self.call_timeout_s + 5):  # if the SDK's own hangs
                result = await client.call_tool(
                    listed.tool, args, read_timeout_seconds=self.call_timeout_s
                )
        except Exception as exc:
            return ToolResult(output=self._failed(listed.tool, exc))
        return await to_tool_result(result, listed.tool, context.files, self.output_bytes)

    async def close(self) -> None:
        self._closed = True
        await self._drop()

    async def _tools(self, context: ToolContext) -> dict[str, _Listed]:
        async with self._list_lock:
            age = time.monotonic() - self._listed_at
            if self._listing is not None and not self._stale and age < self.refresh_s:
                return self._listing
            try:
                client = await self._open(context)
                async with asyncio.timeout(self.open_timeout_s):
                    self._listing = self._offer(await self._list(client))
            except Exception as exc:
                await self._drop()
                reason = _reason(exc)
                log.warning("could not list the tools of MCP plugin %s: %s",
                            self.plugin_id, reason)  # fmt: skip
                if self._listing is None:  # else keep offering the last listing
                    if isinstance(exc, McpUnavailable):
                        raise
                    raise McpUnavailable(
                        f"the MCP server of '{self.plugin_id}' is unavailable: {reason}"
                    ) from None
            self._listed_at, self._stale = time.monotonic(), False
            return self._listing

    async def _list(self, client: Client) -> list[Tool]:
        tools: list[Tool] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await client.list_tools(cursor=cursor)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
        return tools

    def _offer(self, tools: list[Tool]) -> dict[str, _Listed]:
        allowed = self.server.allowed_tools
        offered: dict[str, _Listed] = {}
        for tool in tools:
            if allowed is not None and tool.name not in allowed:
                continue
            name = function_name(self.plugin_id, tool.name)
            if name in offered:
                log.warning("MCP plugin %s: tool %r is named like another; skipped",
                            self.plugin_id, tool.name)  # fmt: skip
                continue
            description = tool.description or tool.title or f"The MCP tool {tool.name}."
            parameters = {"type": "object", "properties": {}, **tool.input_schema}
            offered[name] = _Listed(
                FunctionSpec(name, description[:MAX_DESCRIPTION], parameters), tool.name
            )
        return offered

    async def _open(self, context: ToolContext) -> Client:
        """The open connection, or a new one; McpUnavailable if it cannot be had."""
        try:
            async with asyncio.timeout(self.open_timeout_s):
                return await self._client(context)
        except TimeoutError:
            await self._drop()
            raise McpUnavailable(f"the MCP server of '{self.plugin_id}' did not answer "
                                 f"within {self.open_timeout_s:g} s") from None  # fmt: skip
        except Exception as exc:
            raise McpUnavailable(f"the MCP server of '{self.plugin_id}' is unavailable: "
                                 f"{_reason(exc)}") from None  # fmt: skip

    async def _client(self, context: ToolContext) -> Client:
        async with self._open_lock:
            if self._closed:
                raise McpUnavailable("this MCP server was closed")
            if self._held is None or not self._held.alive:
                if self._held is not None:
                    await self._held.stop()
                connect = await self._connector(context)
                self._held = _Held(self.plugin_id, connect)
            held = self._held
        return await held.client()  # if opening failed, the next call tries again

    async def _connector(self, context: ToolContext) -> _Connect:
        server = self.server
        if server.url is None:
            assert server.command is not None
            params = StdioServerParameters(
                command=server.command, args=list(server.args), env=dict(server.env) or None,
                cwd=server.cwd,
            )  # fmt: skip
            return lambda held: _connected(stdio_client(params), held)
        http = context.require_http()
        await http.check(server.url)  # refused here: not a byte sent
        return lambda held: _connected_http(http, self, held)

    def _failed(self, tool: str, exc: Exception) -> str:
        """The output of a call that got no result, and what it says of the connection."""
        self._stale = True
        if isinstance(exc, MCPError):
            if exc.code == REQUEST_TIMEOUT:
                return _timeout(tool, self.call_timeout_s)
            if exc.code == CONNECTION_CLOSED:
                self._mark_broken()
            return error_output(exc.code, exc.message)
        self._mark_broken()
        if isinstance(exc, TimeoutError):
            return _timeout(tool, self.call_timeout_s)
        if isinstance(exc, McpUnavailable):
            return error_output("unavailable", str(exc))
        log.warning("MCP plugin %s: the call of %r failed: %s",
                    self.plugin_id, tool, _reason(exc))  # fmt: skip
        return error_output("unavailable", f"the MCP server of '{self.plugin_id}' "
                                           f"could not be reached: {_reason(exc)}")  # fmt: skip

    def _mark_broken(self) -> None:
        if self._held is not None:
            self._held.broken = True

    async def _drop(self) -> None:
        async with self._open_lock:
            held, self._held = self._held, None
        if held is not None:
            await held.stop()


@asynccontextmanager
async def _connected(transport: Transport, held: _Held) -> AsyncIterator[Client]:
    watched = _watched(transport, held)
    async with Client(watched, mode="auto", cache=None, client_info=CLIENT_INFO) as client:
        yield client


@asynccontextmanager
async def _watched(transport: Transport, held: _Held) -> AsyncIterator[TransportStreams]:
    async with transport as (read, write):
        yield _Watched(read, held), write


class _Watched:
    """A transport's read stream that tells its holder when the server has gone (a stdio
    process that died, a stream that ended), so the next call opens a new connection
    instead of failing on the dead one."""

    def __init__(self, stream: ReadStream[SessionMessage | Exception], held: _Held) -> None:
        self._stream, self._held = stream, held

    @property
    def last_context(self) -> Any:  # the sender's context, where the transport keeps one
        return getattr(self._stream, "last_context", None)

    async def receive(self) -> SessionMessage | Exception:
        try:
            return await self._stream.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            self._held.broken = True
            raise

    def __aiter__(self) -> _Watched:
        return self

    async def __anext__(self) -> SessionMessage | Exception:
        try:
            return await self.receive()
        except (anyio.EndOfStream, anyio.ClosedResourceError):
            raise StopAsyncIteration from None

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def __aenter__(self) -> _Watched:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


@asynccontextmanager
async def _connected_http(
    http: OutboundClient, toolset: McpToolset, held: _Held
) -> AsyncIterator[Client]:
    server, size = toolset.server, toolset.message_bytes
    assert server.url is not None
    guarded = http.guarded_http_client(
        server.url, headers=server.http_headers(), max_bytes=size,
        read_timeout_s=toolset.call_timeout_s + 10,  # a slow tool is the call's timeout's
    )  # fmt: skip
    transport = streamable_http_client(server.url, http_client=guarded, max_sse_event_size=size)
    async with guarded, _connected(transport, held) as client:
        yield client


def _timeout(tool: str, seconds: float) -> str:
    return error_output("timeout", f"the MCP tool '{tool}' did not answer within {seconds:g} s")


def _reason(exc: BaseException) -> str:
    """A short reason for an exception, the first leaf of a group; ours say it best."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    if isinstance(exc, OutboundError | McpUnavailable | MCPError):
        return str(exc)
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
