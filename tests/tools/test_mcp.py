"""MCP servers as toolsets: real MCP servers (the SDK's MCPServer over streamable HTTP in
a thread, and over stdio in a subprocess), listed and called through McpToolset with the
real guarded outbound client. Only the run's file store is a stand-in (a dict)."""

from __future__ import annotations

import asyncio
import io
import json
import os
import signal
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from assistd.settings import OutboundSettings
from assistd.tools.base import ToolContext
from assistd.tools.http import OutboundClient
from assistd.tools.plugins.mcp import McpServer, McpToolset, McpUnavailable
from assistd.tools.plugins.naming import function_name
from tests.support.fake_mcp import TOOL_NAMES, HttpMcp, http_mcp, stdio_command

ROOT = Path(__file__).resolve().parents[2]
PLUGIN = "tiles"


class MemoryFiles:
    """FileAccess of a test: saved files in a dict."""

    def __init__(self) -> None:
        self.saved: dict[str, tuple[str, bytes]] = {}

    async def read(self, file_id: str) -> tuple[str, bytes] | None:
        return self.saved.get(file_id)

    async def save(self, filename: str, content: bytes) -> str:
        file_id = f"file-{len(self.saved) + 1}"
        self.saved[file_id] = (filename, content)
        return file_id


@pytest.fixture(scope="module")
def mcp_http() -> Iterator[HttpMcp]:
    with http_mcp() as server:
        yield server


@pytest.fixture
async def allowed() -> AsyncIterator[OutboundClient]:
    client = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    yield client
    await client.close()


def context(http: OutboundClient, files: MemoryFiles | None = None) -> ToolContext:
    return ToolContext("ws", "thread", "run", files=files or MemoryFiles(), http=http)


def fn(tool: str) -> str:
    return function_name(PLUGIN, tool)


@pytest.fixture
async def toolset(mcp_http: HttpMcp) -> AsyncIterator[McpToolset]:
    tools = McpToolset(PLUGIN, McpServer(url=mcp_http.url), call_timeout_s=10)
    yield tools
    await tools.close()


async def test_every_page_of_tools_is_offered(toolset: McpToolset, allowed: OutboundClient) -> None:
    specs = {spec.name: spec for spec in await toolset.functions(context(allowed))}
    assert set(specs) == {fn(name) for name in TOOL_NAMES}
    add = specs[fn("add")]
    assert add.description == "Adds two numbers."
    assert add.parameters["type"] == "object"
    assert set(add.parameters["properties"]) == {"a", "b"}


async def test_a_call_returns_the_tools_text(toolset: McpToolset, allowed: OutboundClient) -> None:
    result = await toolset.call(fn("add"), {"a": 2, "b": 40}, context(allowed))
    assert result.output == "42"
    assert result.image_file_ids == () and result.file_ids == ()


async def test_an_image_becomes_a_file_shown_in_the_reply(
    toolset: McpToolset, allowed: OutboundClient
) -> None:
    files = MemoryFiles()
    result = await toolset.call(fn("draw"), {"color": "blue"}, context(allowed, files))
    (file_id,) = result.image_file_ids
    assert result.output == f"[image {file_id}]"
    filename, content = files.saved[file_id]
    assert filename.endswith(".png")
    with Image.open(io.BytesIO(content)) as image:
        assert image.format == "PNG" and image.getpixel((0, 0)) == (0, 0, 255)


async def test_a_tool_error_is_an_error_the_model_can_read(
    toolset: McpToolset, allowed: OutboundClient
) -> None:
    result = await toolset.call(fn("fail"), {"reason": "no ink"}, context(allowed))
    error = json.loads(result.output)["error"]
    assert error["code"] == "tool_error"
    assert "the tool failed: no ink" in error["message"]


async def test_a_json_rpc_error_keeps_its_code(
    toolset: McpToolset, allowed: OutboundClient
) -> None:
    result = await toolset.call(fn("refuse"), {}, context(allowed))
    assert json.loads(result.output) == {
        "error": {"code": -32602, "message": "refused: bad parameters"}
    }


async def test_each_kind_of_content_is_mapped(toolset: McpToolset, allowed: OutboundClient) -> None:
    files = MemoryFiles()
    result = await toolset.call(fn("mixed"), {}, context(allowed, files))
    blob_id, audio_id = result.file_ids
    assert result.output.splitlines() == [
        "here you are",
        "[resource report.pdf: https://example.com/report.pdf]",
        "a note",
        f"[file {blob_id}]",
        f"[audio {audio_id}]",
    ]
    assert files.saved[blob_id] == ("data.bin", b"\x00\x01\x02")
    assert files.saved[audio_id][0].endswith(".wav")
    assert result.image_file_ids == ()


async def test_structured_content_is_given_when_there_is_no_text(
    toolset: McpToolset, allowed: OutboundClient
) -> None:
    result = await toolset.call(fn("data"), {}, context(allowed))
    assert json.loads(result.output) == {"rows": [1, 2, 3]}


async def test_a_long_answer_is_cut(mcp_http: HttpMcp, allowed: OutboundClient) -> None:
    tools = McpToolset(PLUGIN, McpServer(url=mcp_http.url), output_bytes=1000)
    try:
        result = await tools.call(fn("big"), {"size": 50_000}, context(allowed))
    finally:
        await tools.close()
    assert len(result.output.encode()) <= 1000
    assert result.output.startswith("xxx") and "[cut: the answer has 50000 bytes" in result.output


async def test_a_message_over_the_cap_fails_alone(
    mcp_http: HttpMcp, allowed: OutboundClient
) -> None:
    tools = McpToolset(PLUGIN, McpServer(url=mcp_http.url), message_bytes=20_000)
    try:
        result = await tools.call(fn("big"), {"size": 50_000}, context(allowed))
        assert "larger than 20000 bytes" in json.loads(result.output)["error"]["message"]
        assert (await tools.call(fn("add"), {"a": 1, "b": 1}, context(allowed))).output == "2"
    finally:
        await tools.close()


async def test_calls_run_concurrently_and_a_cancelled_one_is_abandoned(
    toolset: McpToolset, allowed: OutboundClient
) -> None:
    slow = asyncio.create_task(toolset.call(fn("slow"), {"seconds": 30}, context(allowed)))
    results = await asyncio.gather(
        *(toolset.call(fn("slow"), {"seconds": 0.2}, context(allowed)) for _ in range(3))
    )
    assert [r.output for r in results] == ["slept 0.2"] * 3
    slow.cancel()
    with pytest.raises(asyncio.CancelledError):
        await slow
    assert (await toolset.call(fn("add"), {"a": 1, "b": 1}, context(allowed))).output == "2"


async def test_a_slow_call_times_out_and_the_next_one_works(
    mcp_http: HttpMcp, allowed: OutboundClient
) -> None:
    tools = McpToolset(PLUGIN, McpServer(url=mcp_http.url), call_timeout_s=1.5)
    try:
        slow = await tools.call(fn("slow"), {"seconds": 30}, context(allowed))
        assert json.loads(slow.output)["error"]["code"] == "timeout"
        assert (await tools.call(fn("add"), {"a": 1, "b": 1}, context(allowed))).output == "2"
    finally:
        await tools.close()


async def test_only_allowed_tools_are_offered_or_called(
    mcp_http: HttpMcp, allowed: OutboundClient
) -> None:
    server = McpServer(url=mcp_http.url, allowed_tools=("add", "draw"))
    tools = McpToolset(PLUGIN, server)
    try:
        names = {spec.name for spec in await tools.functions(context(allowed))}
        assert names == {fn("add"), fn("draw")}
        refused = await tools.call(fn("shout"), {"word": "hi"}, context(allowed))
        assert json.loads(refused.output)["error"]["code"] == "unknown_tool"
    finally:
        await tools.close()


async def test_headers_and_authorization_reach_the_server(
    mcp_http: HttpMcp, allowed: OutboundClient
) -> None:
    server = McpServer(url=mcp_http.url, headers={"X-Api-Key": "k-123"}, authorization="tok-9")
    tools = McpToolset(PLUGIN, server)
    before = len(mcp_http.seen.headers)
    try:
        assert (await tools.call(fn("shout"), {"word": "hi"}, context(allowed))).output == "HI"
    finally:
        await tools.close()
    sent = mcp_http.seen.headers[before:]
    assert sent and all(h.get("x-api-key") == "k-123" for h in sent)
    assert all(h.get("authorization") == "Bearer tok-9" for h in sent)
    assert "k-123" not in repr(server) and "tok-9" not in repr(server)


async def test_calls_share_one_connection(mcp_http: HttpMcp, allowed: OutboundClient) -> None:
    tools = McpToolset(PLUGIN, McpServer(url=mcp_http.url))
    try:
        await tools.call(fn("add"), {"a": 1, "b": 2}, context(allowed))
        opened = len(mcp_http.connections)
        for n in range(10):
            result = await tools.call(fn("add"), {"a": n, "b": 0}, context(allowed))
            assert result.output == str(n)
        assert len(mcp_http.connections) == opened  # pooled, and no new handshake
    finally:
        await tools.close()


async def test_a_loopback_url_is_refused_without_the_allow_setting(mcp_http: HttpMcp) -> None:
    guarded = OutboundClient(OutboundSettings())
    tools = McpToolset(PLUGIN, McpServer(url=mcp_http.url))
    before = len(mcp_http.connections)
    try:
        with pytest.raises(McpUnavailable, match=r"refused to connect to 127\.0\.0\.1"):
            await tools.functions(context(guarded))
        result = await tools.call(fn("add"), {"a": 1, "b": 2}, context(guarded))
    finally:
        await tools.close()
        await guarded.close()
    error = json.loads(result.output)["error"]
    assert error["code"] == "unavailable"
    assert "loopback" in error["message"]
    assert len(mcp_http.connections) == before  # not a byte reached the server


async def test_a_server_that_is_down_is_unavailable(allowed: OutboundClient) -> None:
    with http_mcp() as gone:
        url = gone.url
    tools = McpToolset(PLUGIN, McpServer(url=url))
    try:
        result = await tools.call(fn("add"), {"a": 1, "b": 2}, context(allowed))
    finally:
        await tools.close()
    error = json.loads(result.output)["error"]
    assert error["code"] == "unavailable" and "unavailable" in error["message"]


def stdio_server(**extra: Any) -> McpServer:
    command, args = stdio_command()
    return McpServer(command=command, args=tuple(args), cwd=str(ROOT), **extra)


async def test_a_stdio_server_is_listed_and_called(allowed: OutboundClient) -> None:
    tools = McpToolset(PLUGIN, stdio_server(allowed_tools=("add", "draw", "pid")))
    files = MemoryFiles()
    try:
        names = {spec.name for spec in await tools.functions(context(allowed))}
        assert names == {fn("add"), fn("draw"), fn("pid")}
        assert (await tools.call(fn("add"), {"a": 1, "b": 2}, context(allowed))).output == "3"
        drawn = await tools.call(fn("draw"), {}, context(allowed, files))
        assert len(drawn.image_file_ids) == 1
        pid = int((await tools.call(fn("pid"), {}, context(allowed))).output)
    finally:
        await tools.close()
    assert not _alive(pid)  # close() ends the server's process


async def test_a_crashed_stdio_server_is_started_again(allowed: OutboundClient) -> None:
    tools = McpToolset(PLUGIN, stdio_server(), call_timeout_s=20)
    try:
        first = int((await tools.call(fn("pid"), {}, context(allowed))).output)
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while tools.connected:  # until the end of its output is seen
            assert time.monotonic() < deadline, "the dead server went unnoticed"
            await asyncio.sleep(0.05)
        second = (await tools.call(fn("pid"), {}, context(allowed))).output
        assert second.isdigit() and int(second) != first, second
    finally:
        await tools.close()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True
