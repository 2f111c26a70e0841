"""What an MCP connection costs: a tool call through McpToolset on its kept connection,
beside the SDK's own client kept open (the baseline: what McpToolset adds), and beside
opening a connection for each call (what keeping it saves). Over streamable HTTP (the
fake server of tests/support/fake_mcp.py, in a thread) and over stdio (its subprocess).

    python -m bench.mcp_sessions [--iterations N] [--stdio-iterations M]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from mcp.client import Client
from mcp.client.stdio import StdioServerParameters

from assistd.settings import OutboundSettings
from assistd.tools.base import ToolContext
from assistd.tools.http import OutboundClient
from assistd.tools.plugins.mcp import McpServer, McpToolset
from assistd.tools.plugins.naming import function_name
from bench.harness import Samples, machine, save_results, summary
from tests.support.fake_mcp import http_mcp, stdio_command

ROOT = Path(__file__).resolve().parents[1]
ARGS = {"a": 1, "b": 2}


async def timed(call: Callable[[], Awaitable[object]], n: int, warmup: int) -> Samples:
    for _ in range(warmup):
        await call()
    latencies = []
    for _ in range(n):
        start = time.perf_counter_ns()
        await call()
        latencies.append(time.perf_counter_ns() - start)
    return Samples(latencies, 0.0, None)


async def figures(server: McpServer, sdk_target: object, n: int, http: OutboundClient) -> dict:
    context = ToolContext("bench", "thread", "run", http=http)
    kept = McpToolset("bench", server)
    name = function_name("bench", "add")
    out = {}
    try:
        out["toolset_kept"] = await timed(lambda: kept.call(name, ARGS, context), n, 3)
    finally:
        await kept.close()

    async def per_call() -> object:
        fresh = McpToolset("bench", server)
        try:
            return await fresh.call(name, ARGS, context)
        finally:
            await fresh.close()

    out["toolset_per_call"] = await timed(per_call, max(3, n // 10), 1)
    async with Client(sdk_target, cache=None) as sdk:  # type: ignore[arg-type]
        out["sdk_kept"] = await timed(lambda: sdk.call_tool("add", ARGS), n, 3)
    return out


async def main(n: int, stdio_n: int) -> dict:
    http = OutboundClient(OutboundSettings(allow_networks=["127.0.0.0/8"]))
    results = {}
    try:
        with http_mcp() as fake:
            results["http"] = await figures(McpServer(url=fake.url), fake.url, n, http)
        command, args = stdio_command()
        stdio = McpServer(command=command, args=tuple(args), cwd=str(ROOT))
        params = StdioServerParameters(command=command, args=args, cwd=str(ROOT))
        results["stdio"] = await figures(stdio, params, stdio_n, http)
    finally:
        await http.close()
    return {kind: {k: summary(v) for k, v in figs.items()} for kind, figs in results.items()}


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=200)
    parser.add_argument("--stdio-iterations", type=int, default=50)
    options = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC)
    wall = time.monotonic()
    table = asyncio.run(main(options.iterations, options.stdio_iterations))
    lines = [f"{'transport':<8} {'figure':<18} {'n':>5} {'p50 ms':>9} {'p90 ms':>9}"]
    for kind, figs in table.items():
        for figure, s in figs.items():
            lines.append(f"{kind:<8} {figure:<18} {s['n']:>5} {s['p50_ms']:>9} {s['p90_ms']:>9}")
    results = {"machine": machine(), "figures": table,
               "wall_seconds": round(time.monotonic() - wall, 1)}  # fmt: skip
    save_results("mcp_sessions", started, results, "\n".join(lines))
