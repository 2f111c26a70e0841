"""The same runs on the two surfaces, side by side in one run: what the OpenAI surface
(/v1) costs beside the DashScope one (/api/v1) over the same core.

    python -m bench.surfaces [--quick] [--backends sqlite,postgres]

For each backend, one server routed to the fake model (its own process, answering at
once): streamed runs created and read to the end, then runs created and polled every
POLL_S, alternating the surface run by run (the order turning each time) so both see
the same machine. (Polling with no pause measures the poll rate instead: /v1's GET is
the cheaper, so it polls more often and slows the run it waits for.) Server CPU is read
per block of streamed runs of one surface, and per block of GETs of one run.
The figure of merit is the ratio /v1 : /api/v1 of each (issue 10 asks for <= 1.05).

Writes bench/results/surfaces-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.harness import cpu_seconds, machine, save_results
from bench.objects import git_commit
from bench.runload import (
    INSTRUCTIONS,
    Timed,
    assistd_client,
    fake_model_process,
    make_threads,
    post_json,
    stats_ms,
)
from bench.runs import Target, routed_server

SURFACES = {"dashscope": "/api/v1", "openai": "/v1"}
FINAL = (b"thread.run.completed", b"thread.run.failed", b"thread.run.cancelled")
TERMINAL = {"completed", "failed", "cancelled", "expired", "incomplete", "requires_action"}
POLL_S = 0.005
GETS = 500


def _field(frame: bytes, name: bytes) -> bytes:
    for line in frame.split(b"\n"):
        if line.startswith(name + b":"):
            return line[len(name) + 1 :].strip()
    return b""


async def stream_run(client: httpx.AsyncClient, prefix: str, thread_id: str, run: Any) -> Timed:
    """A streamed run, read to `done`; either surface's framing."""
    result = Timed(start=time.perf_counter())
    body = orjson.dumps({**run, "stream": True})
    async with client.stream("POST", f"{prefix}/threads/{thread_id}/runs", content=body) as r:
        buffer = b""
        async for chunk in r.aiter_raw():
            now = time.perf_counter()
            buffer += chunk
            while (cut := buffer.find(b"\n\n")) >= 0:
                frame, buffer = buffer[:cut], buffer[cut + 2 :]
                event = _field(frame, b"event")
                if event == b"thread.message.delta" and result.first_delta is None:
                    result.first_delta = now
                elif event in FINAL:
                    result.end, result.final = now, event.decode()
                elif event == b"done":
                    break
    if result.final != "thread.run.completed":
        result.error = f"ended with {result.final or 'no final event'}"
    return result


async def polled_run(client: httpx.AsyncClient, prefix: str, thread_id: str, run: Any) -> Timed:
    result = Timed(start=time.perf_counter())
    created = await post_json(client, f"{prefix}/threads/{thread_id}/runs", run)
    status, path = created["status"], f"{prefix}/threads/{thread_id}/runs/{created['id']}"
    while status not in TERMINAL:
        await asyncio.sleep(POLL_S)
        status = orjson.loads((await client.get(path)).content)["status"]
    result.end, result.final = time.perf_counter(), status
    if status != "completed":
        result.error = f"ended {status}"
    return result


async def _alternating(t: Target, n: int, polled: bool) -> dict[str, list[Timed]]:
    """n runs a surface, alternating run by run, the order turning each time."""
    async with assistd_client(t.server.base_url, t.key) as client:
        threads = await make_threads(client, 2 * n)
        run = {"assistant_id": t.assistant_id}
        done: dict[str, list[Timed]] = {name: [] for name in SURFACES}
        work = polled_run if polled else stream_run
        for i in range(n):
            order = list(SURFACES) if i % 2 == 0 else list(SURFACES)[::-1]
            for k, name in enumerate(order):
                thread = threads[2 * i + k]
                done[name].append(await work(client, SURFACES[name], thread, run))
    return done


async def _cpu_per_run(t: Target, n: int, blocks: int) -> dict[str, float]:
    """Server CPU ms per streamed run, over alternating blocks of n runs a surface."""
    spent = {name: 0.0 for name in SURFACES}
    async with assistd_client(t.server.base_url, t.key) as client:
        threads = await make_threads(client, 2 * n * blocks)
        run = {"assistant_id": t.assistant_id}
        for b in range(blocks):
            for k, name in enumerate(SURFACES if b % 2 == 0 else list(SURFACES)[::-1]):
                before = cpu_seconds([t.proc])
                base = (2 * b + k) * n
                for thread in threads[base : base + n]:
                    await stream_run(client, SURFACES[name], thread, run)
                spent[name] += cpu_seconds([t.proc]) - before
    return {name: round(cpu * 1000 / (n * blocks), 3) for name, cpu in spent.items()}


async def _cpu_per_get(t: Target, blocks: int) -> dict[str, float]:
    """Server CPU µs per GET of a finished run, over alternating blocks of GETS."""
    spent = {name: 0.0 for name in SURFACES}
    async with assistd_client(t.server.base_url, t.key) as client:
        (thread,) = await make_threads(client, 1)
        done = await polled_run(client, "/api/v1", thread, {"assistant_id": t.assistant_id})
        assert done.ok, done.error
        run_id = (await client.get(f"/api/v1/threads/{thread}/runs")).json()["data"][0]["id"]
        for b in range(blocks):
            for name in SURFACES if b % 2 == 0 else list(SURFACES)[::-1]:
                path = f"{SURFACES[name]}/threads/{thread}/runs/{run_id}"
                before = cpu_seconds([t.proc])
                for _ in range(GETS):
                    await client.get(path)
                spent[name] += cpu_seconds([t.proc]) - before
    return {name: round(cpu * 1e6 / (GETS * blocks), 1) for name, cpu in spent.items()}


def _compare(done: dict[str, list[Timed]], warmup: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, runs in done.items():
        kept = runs[warmup:]
        out[name] = stats_ms([r.total_ms() for r in kept if r.ok])
        out[name]["errors"] = sum(not r.ok for r in runs)
    out["ratio_p50"] = round(out["openai"]["p50_ms"] / out["dashscope"]["p50_ms"], 3)
    out["ratio_p99"] = round(out["openai"]["p99_ms"] / out["dashscope"]["p99_ms"], 3)
    return out


async def bench_backend(t: Target, n: int, warmup: int) -> dict[str, Any]:
    async with assistd_client(t.server.base_url, t.key) as client:
        body = {"model": "instant", "instructions": INSTRUCTIONS}
        t.assistant_id = (await post_json(client, "/api/v1/assistants", body))["id"]
    streamed = _compare(await _alternating(t, n + warmup, polled=False), warmup)
    polled = _compare(await _alternating(t, n + warmup, polled=True), warmup)
    cpu = await _cpu_per_run(t, max(n // 4, 10), 4)
    cpu["ratio"] = round(cpu["openai"] / cpu["dashscope"], 3)
    gets = await _cpu_per_get(t, 4)
    gets["ratio"] = round(gets["openai"] / gets["dashscope"], 3)
    return {
        "streamed": streamed, "polled": polled, "server_cpu_ms_per_streamed_run": cpu,
        "server_cpu_us_per_get": gets,
    }  # fmt: skip


def table(results: dict[str, Any]) -> str:
    lines = [f"{'backend':9} {'what':22} {'/api/v1 p50':>12} {'/v1 p50':>9} {'ratio':>6}"]
    for backend, found in results["backends"].items():
        for what in ("streamed", "polled"):
            row = found[what]
            lines.append(
                f"{backend:9} {what + ' run (ms)':22} {row['dashscope']['p50_ms']:12.2f} "
                f"{row['openai']['p50_ms']:9.2f} {row['ratio_p50']:6.3f}"
            )
        for label, key in (("server CPU/run (ms)", "server_cpu_ms_per_streamed_run"),
                           ("server CPU/GET (us)", "server_cpu_us_per_get")):  # fmt: skip
            cpu = found[key]
            lines.append(
                f"{backend:9} {label:22} {cpu['dashscope']:12.2f} "
                f"{cpu['openai']:9.2f} {cpu['ratio']:6.3f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs")
    parser.add_argument("--backends", default="sqlite,postgres")
    args = parser.parse_args(argv)
    n, warmup = (60, 10) if args.quick else (300, 20)
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "benchmark": "surfaces",
        "started_at": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "runs_per_surface": n,
        "machine": machine(),
        "backends": {},
    }
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp, fake_model_process() as fm:
        for backend in backends:
            with routed_server(backend, Path(tmp), *fm) as target:
                results["backends"][backend] = asyncio.run(bench_backend(target, n, warmup))
                print(f"  {backend} done", flush=True)
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    save_results("surfaces", started, results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
