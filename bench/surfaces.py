"""The two wire surfaces side by side: what a run costs on `/v1` (OpenAI) beside `/api/v1`
(DashScope), on one server, in the same run.

    python -m bench.surfaces [--quick] [--backend sqlite|postgres]

Both surfaces drive the same core, so the difference is their wire: parsing, rendering
and SSE framing. Each iteration makes one streamed run on each surface and one straight
model call, in an order that turns each time; then the same with runs polled back to
back. Figures are p50s and the ratio /v1 ÷ /api/v1 (goal ≤ 1.05), with each surface's
added time over the direct model call beside it. Writes bench/results/surfaces-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import machine, save_results
from bench.objects import git_commit
from bench.runload import (
    INSTRUCTIONS,
    PROMPT,
    RUN_ENDS,
    TERMINAL,
    Timed,
    assistd_client,
    direct_raw,
    fake_model_process,
    model_http,
    post_json,
    stats_ms,
)
from bench.runs import routed_server

SURFACES = {"dashscope": "/api/v1", "openai": "/v1"}


def _fields(frame: bytes) -> tuple[bytes, bytes]:
    """An SSE frame's event name and data, with or without a space after the colon (the
    DashScope framing has none, OpenAI's has one)."""
    name = data = b""
    for line in frame.split(b"\n"):
        if line.startswith(b"event:"):
            name = line[6:].strip()
        elif line.startswith(b"data:"):
            data = line[5:].strip()
    return name, data


def _on_frame(result: Timed, frame: bytes, now: float) -> bool:
    """Records one frame; True once the stream is over."""
    name, data = _fields(frame)
    if name == b"thread.message.delta":
        if result.first_delta is None:
            result.first_delta = now
        result.deltas.append(now)
    elif name in RUN_ENDS:
        result.end, result.final = now, name.decode()
    elif name == b"error":
        result.error = data.decode(errors="replace")[:300]
    return name == b"done" or data == b"[DONE]"


async def streamed(client: httpx.AsyncClient, prefix: str, thread: str, run: Any) -> Timed:
    result = Timed(start=time.perf_counter())
    body = orjson.dumps({**run, "stream": True})
    try:
        async with client.stream("POST", f"{prefix}/threads/{thread}/runs", content=body) as r:
            if r.status_code != 200:
                await r.aread()
                result.error = f"HTTP {r.status_code}: {r.text[:200]}"
                return result
            buffer = b""
            async for chunk in r.aiter_raw():
                now = time.perf_counter()
                buffer += chunk
                while (cut := buffer.find(b"\n\n")) >= 0:
                    frame, buffer = buffer[:cut], buffer[cut + 2 :]
                    if _on_frame(result, frame, now):
                        return _checked(result)
    except Exception as exc:  # counted as an error of this run
        result.error = f"{type(exc).__name__}: {exc}"
    return _checked(result)


async def polled(client: httpx.AsyncClient, prefix: str, thread: str, run: Any) -> Timed:
    """Created, not streamed, then retrieved back to back until it ends."""
    result = Timed(start=time.perf_counter())
    try:
        created = await post_json(client, f"{prefix}/threads/{thread}/runs", run)
        status = created["status"]
        while status not in TERMINAL:
            response = await client.get(f"{prefix}/threads/{thread}/runs/{created['id']}")
            status = orjson.loads(response.content)["status"]
        result.end, result.final = time.perf_counter(), f"thread.run.{status}"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return _checked(result)


def _checked(result: Timed) -> Timed:
    if result.error is None and result.final != "thread.run.completed":
        result.error = f"ended with {result.final or 'no final event'}"
    return result


async def _threads(client: httpx.AsyncClient, n: int) -> list[str]:
    body = {"messages": [{"role": "user", "content": PROMPT}]}
    return [(await post_json(client, "/v1/threads", body))["id"] for _ in range(n)]


async def compare(base_url: str, key: str, model_url: str, n: int, warmup: int) -> Any:
    async with assistd_client(base_url, key) as client, model_http(model_url) as http:
        body = {"model": "instant", "instructions": INSTRUCTIONS}
        assistant = (await post_json(client, "/v1/assistants", body))["id"]
        run = {"assistant_id": assistant}
        out: dict[str, Any] = {}
        for mode, call in (("streamed", streamed), ("polled", polled)):
            threads = await _threads(client, 2 * (n + warmup))
            found: dict[str, list[Timed]] = {"dashscope": [], "openai": [], "direct": []}
            for i in range(n + warmup):
                calls: list[tuple[str, Callable[[], Awaitable[Timed]]]] = [
                    ("dashscope", lambda: call(client, "/api/v1", threads[2 * i], run)),  # noqa: B023
                    ("openai", lambda: call(client, "/v1", threads[2 * i + 1], run)),  # noqa: B023
                    ("direct", lambda: direct_raw(http, "instant")),
                ]
                k = i % 3
                for name, make in calls[k:] + calls[:k]:
                    timed = await make()
                    if i >= warmup:
                        found[name].append(timed)
            out[mode] = _summary(found)
    return out


def _summary(found: dict[str, list[Timed]]) -> dict[str, Any]:
    errors = [t.error for runs in found.values() for t in runs if not t.ok]
    stats = {name: stats_ms([t.total_ms() for t in runs if t.ok]) for name, runs in found.items()}
    direct = stats["direct"].get("p50_ms", 0.0)
    summary: dict[str, Any] = {"errors": len(errors), "first_errors": errors[:3], **stats}
    for name in SURFACES:
        summary[f"{name}_added_p50_ms"] = round(stats[name].get("p50_ms", 0.0) - direct, 3)
    ds, oa = stats["dashscope"].get("p50_ms"), stats["openai"].get("p50_ms")
    summary["ratio_openai_to_dashscope_p50"] = round(oa / ds, 3) if ds and oa else None
    return summary


def table(results: dict[str, Any]) -> str:
    rows = ["mode      /api/v1 p50   /v1 p50   direct p50   /v1 ÷ /api/v1   errors"]
    for mode in ("streamed", "polled"):
        s = results["surfaces"][mode]
        rows.append(
            f"{mode:9} {s['dashscope']['p50_ms']:9.2f} ms {s['openai']['p50_ms']:7.2f} ms "
            f"{s['direct']['p50_ms']:8.2f} ms {s['ratio_openai_to_dashscope_p50']:12.3f}"
            f"   {s['errors']}"
        )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--backend", default="sqlite", choices=["sqlite", "postgres"])
    args = parser.parse_args(argv)
    n, warmup = (60, 10) if args.quick else (200, 20)
    started = dt.datetime.now(dt.UTC)
    began = time.perf_counter()
    results: dict[str, Any] = {
        "benchmark": "surfaces", "commit": git_commit(), "machine": machine(),
        "backend": args.backend, "runs_per_surface": n,
    }  # fmt: skip
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistd-bench-")))
        model_url, model_pid = stack.enter_context(fake_model_process())
        target = stack.enter_context(routed_server(args.backend, tmp, model_url, model_pid))
        found = compare(target.server.base_url, target.key, model_url, n, warmup)
        results["surfaces"] = asyncio.run(found)
    results["wall_seconds"] = round(time.perf_counter() - began, 1)
    save_results("surfaces", started, results, table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
