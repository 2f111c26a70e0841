"""Networked tools: the latency assistd adds to a tool call, against calling the same fake
provider directly, in the same run.

    python -m bench.tools [--quick] [--iterations 1000] [--cases search-searxng,github]

Each case is one tool call as a run's tool round makes it: `ToolRegistry.run` (argument
check against the schema, the provider adapter, the shared guarded client with its
timeouts and size cap, the results normalised into the step's JSON and the model's
numbered list). Its baseline is the same HTTP request to the same provider made straight
with a bare `httpx2.AsyncClient` (keep-alive, the body parsed as JSON), which is the least
a client could do. The two alternate one to one in one event loop so they share the
machine's noise. The fake providers (tests/support/fake_search.py) run in a subprocess of
their own, so their threads do not compete with the measured loop for the GIL.

Goal (issue 8): added latency <= 5 ms p50. Writes bench/results/tools-<timestamp>.json.

Plugins take the path a run takes: the registry asks the plugin source (declared in the
settings, read through a real SQLite store) for the toolset. The MCP case's baseline is
the `mcp` SDK's own client calling the same tool on a kept session.

To add a case: write a function returning a `Case` (settings for the registry, the tool
type and arguments, and the equivalent direct call) and list it in CASES.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import gc
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import (
    AbstractAsyncContextManager,
    AsyncExitStack,
    ExitStack,
    asynccontextmanager,
    contextmanager,
)
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2

from assistd.core.plugins import PluginService
from assistd.secrets import SecretBox
from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.tools.base import ToolContext
from assistd.tools.plugins.naming import function_name
from assistd.tools.plugins.source import WorkspacePlugins, check_declared
from assistd.tools.registry import OfferedTool, ToolRegistry
from bench.harness import ROOT, machine, percentile, save_results

GOAL_MS = 5.0
KEY = "bench-key-0123456789"
QUERY = "ragdoll cats"


Call = Callable[[], Awaitable[None]]
# Opens what the direct baseline needs (an HTTP client, an MCP session) and yields the call.
Direct = Callable[[], AbstractAsyncContextManager[Call]]


@dataclass
class Case:
    settings: Settings  # the registry's: the provider's or plugin's table
    kind: str  # the tool type on the assistant
    args: dict[str, Any]
    direct: Direct  # the same call, made straight
    function: str = ""  # the function the model calls; default: the type itself


def http_direct(method: str, url: str, **options: Any) -> Direct:
    """The least a client could do: one keep-alive request, its body parsed as JSON."""

    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        async with httpx2.AsyncClient(http2=True, trust_env=False) as client:

            async def call() -> None:
                response = await client.request(method, url, **options)
                json.loads(response.content)
                if response.status_code != 200:
                    raise RuntimeError(f"{url} answered {response.status_code}")

            yield call

    return opened


def searxng(fakes: dict[str, str]) -> Case:
    return Case(
        Settings(search={"provider": "searxng", "base_url": fakes["searxng"]}),
        "quark_search", {"query": QUERY},
        http_direct("GET", f"{fakes['searxng']}/search", params={"q": QUERY, "format": "json"}),
    )  # fmt: skip


def brave(fakes: dict[str, str]) -> Case:
    return Case(
        Settings(search={"provider": "brave", "base_url": fakes["brave"], "api_key": KEY}),
        "quark_search", {"query": QUERY},
        http_direct("GET", f"{fakes['brave']}/res/v1/web/search",
                    params={"q": QUERY, "count": 10}, headers={"X-Subscription-Token": KEY}),
    )  # fmt: skip


def tavily(fakes: dict[str, str]) -> Case:
    return Case(
        Settings(search={"provider": "tavily", "base_url": fakes["tavily"], "api_key": KEY}),
        "quark_search", {"query": QUERY},
        http_direct("POST", f"{fakes['tavily']}/search", json={"query": QUERY, "max_results": 10},
                    headers={"Authorization": f"Bearer {KEY}"}),
    )  # fmt: skip


def github(fakes: dict[str, str]) -> Case:
    base = f"{fakes['github']}/api/v3"
    headers = {"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28",
               "User-Agent": "bench", "Authorization": f"Bearer {KEY}"}  # fmt: skip
    return Case(
        Settings(github={"base_url": base, "api_key": KEY}),
        "github_search", {"query": "assistant", "type": "repositories"},
        http_direct("GET", f"{base}/search/repositories",
                    params={"q": "assistant", "per_page": 5}, headers=headers),
    )  # fmt: skip


def plugin(fakes: dict[str, str]) -> Case:
    """A declared OpenAPI plugin (the weather API of tests/support/fake_plugin.py)."""
    from tests.support.fake_plugin import weather_document

    document = Path(tempfile.mkdtemp(prefix="bench-plugin-")) / "weather.json"
    document.write_text(json.dumps(weather_document(fakes["plugin"])))
    settings = Settings(
        plugins={"weather": {"openapi": document}},
        outbound={"allow_networks": ["127.0.0.0/8"]},  # a plugin server is guarded
    )
    return Case(
        settings, "weather", {"city": "Paris", "units": "metric"},
        http_direct("GET", f"{fakes['plugin']}/v1/weather/Paris", params={"units": "metric"},
                    headers={"Accept": "application/json"}),
        function=function_name("weather", "getWeather"),
    )  # fmt: skip


def mcp(fakes: dict[str, str]) -> Case:
    """A declared MCP server over streamable HTTP; baseline: the SDK's client, kept open."""
    settings = Settings(
        plugins={"tools": {"kind": "mcp", "url": fakes["mcp"]}},
        outbound={"allow_networks": ["127.0.0.0/8"]},
    )

    @asynccontextmanager
    async def opened() -> AsyncIterator[Call]:
        from mcp.client import Client

        async with Client(fakes["mcp"]) as client:

            async def call() -> None:
                result = await client.call_tool("add", {"a": 2, "b": 3})
                if result.is_error:
                    raise RuntimeError(f"the MCP tool failed: {result}")

            yield call

    return Case(settings, "tools", {"a": 2, "b": 3}, opened, function_name("tools", "add"))


CASES: dict[str, Callable[[dict[str, str]], Case]] = {
    "search-searxng": searxng,
    "search-brave": brave,
    "search-tavily": tavily,
    "github": github,
    "plugin-openapi": plugin,
    "mcp-http": mcp,
}


# ---- the fake providers, in a process of their own -----------------------------------


def serve_fakes() -> None:
    """Runs every fake provider; prints their URLs as one JSON line; stops at EOF."""
    from tests.support.fake_mcp import http_mcp
    from tests.support.fake_plugin import weather_server
    from tests.support.fake_search import FakeBrave, FakeGitHub, FakeSearXNG, FakeTavily, serve

    with ExitStack() as stack:
        fakes = {
            "plugin": stack.enter_context(weather_server()).url,
            "mcp": stack.enter_context(http_mcp()).url,
            "searxng": stack.enter_context(serve(FakeSearXNG())).url,
            "brave": stack.enter_context(serve(FakeBrave(KEY))).url,
            "tavily": stack.enter_context(serve(FakeTavily(KEY))).url,
            "github": stack.enter_context(serve(FakeGitHub(KEY))).url,
        }
        print(json.dumps(fakes), flush=True)
        sys.stdin.read()


@contextmanager
def fake_providers() -> Iterator[dict[str, str]]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.tools", "--serve-fakes"],
        cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield json.loads(proc.stdout.readline())
    finally:
        proc.stdin.close()
        proc.wait(timeout=10)


# ---- measuring -------------------------------------------------------------------------


@asynccontextmanager
async def registry_of(settings: Settings) -> AsyncIterator[ToolRegistry]:
    """The tool registry as the server builds it, plugins read through a real store."""
    with tempfile.TemporaryDirectory(prefix="bench-tools-") as data_dir:
        settings = settings.model_copy(update={"data_dir": Path(data_dir)})
        registry = ToolRegistry(settings)
        store = open_store(settings)
        await store.migrate()
        plugins = WorkspacePlugins(
            PluginService(store, settings, SecretBox(b"b" * 32)), settings,
            check_declared(settings),
        )  # fmt: skip
        registry.plugin_source = plugins
        try:
            yield registry
        finally:
            await plugins.close()
            await registry.close()
            await store.close()


async def offered_tool(registry: ToolRegistry, case: Case, context: ToolContext) -> OfferedTool:
    """The tool as a run offers it to the model (plugins: one of the toolset's functions)."""
    offer = await registry.offer([{"type": case.kind}], context)
    name = case.function or case.kind
    if name not in offer.tools:
        raise RuntimeError(f"{case.kind} is not offered ({offer.unavailable}): {list(offer.tools)}")
    return offer.tools[name]


async def measure(case: Case, n: int, warmup: int) -> dict[str, list[int]]:
    context = ToolContext("bench", "thread", "run")
    arguments = json.dumps(case.args)
    async with AsyncExitStack() as stack:
        registry = await stack.enter_async_context(registry_of(case.settings))
        direct_call = await stack.enter_async_context(case.direct())
        offered = await offered_tool(registry, case, context)

        async def through_assistd() -> int:
            start = time.perf_counter_ns()
            result = await registry.run(offered, arguments, context)
            elapsed = time.perf_counter_ns() - start
            if result.output.startswith(("Error", "The tool", "Invalid", '{"error"')):
                raise RuntimeError(f"{case.kind} failed: {result.output}")
            return elapsed

        async def direct() -> int:
            start = time.perf_counter_ns()
            await direct_call()
            return time.perf_counter_ns() - start

        for _ in range(warmup):
            await through_assistd()
            await direct()
        gc.collect()
        gc.disable()
        try:
            samples: dict[str, list[int]] = {"assistd": [], "direct": []}
            for _ in range(n):
                samples["assistd"].append(await through_assistd())
                samples["direct"].append(await direct())
        finally:
            gc.enable()
        return samples


def summarise(samples: dict[str, list[int]]) -> dict[str, Any]:
    def ms(ns: float) -> float:
        return round(ns / 1e6, 4)

    out: dict[str, Any] = {}
    for name, values in samples.items():
        ordered = sorted(values)
        out[name] = {
            "n": len(ordered),
            "p50_ms": ms(percentile(ordered, 0.5)),
            "p90_ms": ms(percentile(ordered, 0.9)),
            "p99_ms": ms(percentile(ordered, 0.99)),
            "min_ms": ms(ordered[0]),
        }
    added = out["assistd"]["p50_ms"] - out["direct"]["p50_ms"]
    out["added_p50_ms"] = round(added, 4)
    out["ratio_p50"] = round(out["assistd"]["p50_ms"] / out["direct"]["p50_ms"], 3)
    out["goal"] = f"added p50 <= {GOAL_MS} ms: {'MET' if added <= GOAL_MS else 'MISSED'}"
    return out


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'case':<16} {'assistd p50':>12} {'direct p50':>11} {'added':>9} {'ratio':>6}  goal",
    ]
    for name, case in results["cases"].items():
        lines.append(
            f"{name:<16} {case['assistd']['p50_ms']:>10.3f}ms {case['direct']['p50_ms']:>9.3f}ms"
            f" {case['added_p50_ms']:>7.3f}ms {case['ratio_p50']:>6.2f}  {case['goal']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="200 calls per case")
    parser.add_argument("--iterations", type=int, default=None, help="timed calls per case")
    parser.add_argument("--cases", default=",".join(CASES), help="comma-separated")
    parser.add_argument("--serve-fakes", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_fakes:
        serve_fakes()
        return 0
    n = args.iterations or (200 if args.quick else 1000)
    warmup = 20 if args.quick else 100
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "benchmark": "tools",
        "started_at": started.isoformat(timespec="seconds"),
        "plan": {"iterations": n, "warmup": warmup},
        "how": "ToolRegistry.run in-process vs the same request by a bare httpx2.AsyncClient, "
        "alternating one to one; fake providers in a subprocess",
        "machine": machine(),
        "cases": {},
    }
    with fake_providers() as fakes:
        for name in [c.strip() for c in args.cases.split(",") if c.strip()]:
            print(f"{name}: {n} calls each way", flush=True)
            samples = asyncio.run(measure(CASES[name](fakes), n, warmup))
            results["cases"][name] = summarise(samples)
    results["machine"]["load_avg_after"] = machine()["load_avg"]
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    save_results("tools", started, results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
