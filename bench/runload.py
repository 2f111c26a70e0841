"""Client side of the run benchmarks: streamed and polled runs against assistd over
httpx.AsyncClient, the same model call made straight to the fake model through the
openai SDK, the fake model and probe processes, and the statistics.

Times are seconds from `time.perf_counter()`, taken when a chunk reaches the client;
events that arrive in one chunk share its arrival time.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, cast

import httpx
import openai
import orjson

from bench.harness import ROOT
from tests.support.server import free_port

PROMPT = "Please help me draw a picture of a ragdoll cat, sitting on a windowsill."
INSTRUCTIONS = "You draw pictures on request."
MESSAGES = [{"role": "system", "content": INSTRUCTIONS}, {"role": "user", "content": PROMPT}]
RUN_ENDS = (
    b"thread.run.completed",
    b"thread.run.failed",
    b"thread.run.cancelled",
    b"thread.run.expired",
    b"thread.run.requires_action",
)
TERMINAL = {"completed", "failed", "cancelled", "expired", "requires_action"}


@dataclass
class Timed:
    """One streamed answer, from assistd or straight from the model."""

    start: float
    first_delta: float | None = None
    end: float | None = None  # assistd: the run's final event; direct: the end of stream
    deltas: list[float] = field(default_factory=list)  # arrival time of every delta
    final: str = ""  # the final event's name (assistd)
    usage: dict[str, Any] | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.end is not None

    def ttft_ms(self) -> float:
        assert self.first_delta is not None
        return (self.first_delta - self.start) * 1000

    def total_ms(self) -> float:
        assert self.end is not None
        return (self.end - self.start) * 1000

    def rate(self) -> float:
        """Deltas a second between the first and the last delta."""
        if len(self.deltas) < 2 or self.deltas[-1] <= self.deltas[0]:
            return float("nan")
        return (len(self.deltas) - 1) / (self.deltas[-1] - self.deltas[0])


# ---- assistd ----------------------------------------------------------------------------


def assistd_client(base_url: str, key: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    return httpx.AsyncClient(base_url=base_url, headers=headers, limits=limits, timeout=300)


async def post_json(client: httpx.AsyncClient, path: str, body: dict[str, Any]) -> Any:
    response = await client.post(path, content=orjson.dumps(body))
    if response.status_code != 200:
        raise RuntimeError(f"POST {path} answered {response.status_code}: {response.text[:300]}")
    return orjson.loads(response.content)


async def make_threads(client: httpx.AsyncClient, n: int, concurrency: int = 16) -> list[str]:
    """`n` threads, each holding the one user message."""
    body = {"messages": [{"role": "user", "content": PROMPT}]}
    ids: list[str] = []
    lock = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with lock:
            ids.append((await post_json(client, "/api/v1/threads", body))["id"])

    await asyncio.gather(*(one() for _ in range(n)))
    return ids


def _event_name(frame: bytes) -> bytes:
    for line in frame.split(b"\n"):
        if line.startswith(b"event:"):
            return line[6:]
    return b""


def _on_frame(result: Timed, frame: bytes, now: float) -> bool:
    """Records one SSE frame; True once the stream is over."""
    name = _event_name(frame)
    if name == b"thread.message.delta":
        if result.first_delta is None:
            result.first_delta = now
        result.deltas.append(now)
    elif name in RUN_ENDS:
        result.end, result.final = now, name.decode()
        data = frame.split(b"\ndata:", 1)[1]
        result.usage = orjson.loads(data).get("usage")
    elif name == b"error":
        result.error = frame.decode(errors="replace")[:300]
    elif name == b"done":
        return True
    return False


async def stream_run(client: httpx.AsyncClient, thread_id: str, run: dict[str, Any]) -> Timed:
    """Creates a streamed run and reads its stream to `event:done` (at most 5 minutes)."""
    body = orjson.dumps({**run, "stream": True})
    result = Timed(start=time.perf_counter())
    try:
        async with asyncio.timeout(300):
            await _read_stream(client, thread_id, body, result)
    except Exception as exc:  # counted as an error of this run
        result.error = result.error or f"{type(exc).__name__}: {exc}"
    if result.error is None and result.final != "thread.run.completed":
        result.error = f"ended with {result.final or 'no final event'}"
    return result


async def _read_stream(
    client: httpx.AsyncClient, thread_id: str, body: bytes, result: Timed
) -> None:
    path = f"/api/v1/threads/{thread_id}/runs"
    async with client.stream("POST", path, content=body) as response:
        if response.status_code != 200:
            await response.aread()
            result.error = f"HTTP {response.status_code}: {response.text[:200]}"
            return
        buffer = b""
        async for chunk in response.aiter_raw():
            now = time.perf_counter()
            buffer += chunk
            while (cut := buffer.find(b"\n\n")) >= 0:
                frame, buffer = buffer[:cut], buffer[cut + 2 :]
                if _on_frame(result, frame, now):
                    return


async def polled_run(
    client: httpx.AsyncClient, thread_id: str, run: dict[str, Any], interval: float
) -> Timed:
    """Creates a run (not streamed) and polls it every `interval` s until it ends."""
    result = Timed(start=time.perf_counter())
    try:
        created = await post_json(client, f"/api/v1/threads/{thread_id}/runs", run)
        path = f"/api/v1/threads/{thread_id}/runs/{created['id']}"
        status = created["status"]
        while status not in TERMINAL:
            if interval:
                await asyncio.sleep(interval)
            response = await client.get(path)
            if response.status_code != 200:
                raise RuntimeError(f"GET run answered {response.status_code}")
            status = orjson.loads(response.content)["status"]
        result.end, result.final = time.perf_counter(), f"thread.run.{status}"
        if status != "completed":
            result.error = f"ended {status}"
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


# ---- the model, directly ----------------------------------------------------------------


def model_client(base_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=base_url, api_key="none", max_retries=0, timeout=300)


def model_http(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=2000, max_keepalive_connections=2000)
    return httpx.AsyncClient(base_url=base_url, limits=limits, timeout=300)


def model_body(model: str) -> bytes:
    """The request assistd's openai_compat backend sends for a run of the bench."""
    return orjson.dumps(
        {
            "model": model,
            "messages": MESSAGES,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
    )


async def direct_raw(http: httpx.AsyncClient, model: str) -> Timed:
    """The call assistd makes for a run, made straight to the fake model by the leanest
    client: httpx, the SSE read raw, each chunk parsed with orjson (as assistd does)."""
    result = Timed(start=time.perf_counter())
    headers = {"Content-Type": "application/json"}
    try:
        async with http.stream(
            "POST", "/chat/completions", content=model_body(model), headers=headers
        ) as response:
            buffer = b""
            async for block in response.aiter_raw():
                now = time.perf_counter()
                buffer += block
                *lines, buffer = buffer.split(b"\n")
                for line in lines:
                    if not line.startswith(b"data: {"):
                        continue
                    choices = orjson.loads(line[6:]).get("choices")
                    if choices and choices[0]["delta"].get("content"):
                        if result.first_delta is None:
                            result.first_delta = now
                        result.deltas.append(now)
        result.end = time.perf_counter()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


async def direct_sdk(oai: openai.AsyncOpenAI, model: str) -> Timed:
    """The same call through the openai SDK's typed stream (a pydantic object a chunk)."""
    result = Timed(start=time.perf_counter())
    try:
        stream = await oai.chat.completions.create(
            model=model,
            messages=cast(Any, MESSAGES),
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                now = time.perf_counter()
                if result.first_delta is None:
                    result.first_delta = now
                result.deltas.append(now)
        result.end = time.perf_counter()
    except Exception as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


# ---- processes --------------------------------------------------------------------------


@contextmanager
def fake_model_process() -> Iterator[tuple[str, int]]:
    """The fake model in its own process; yields its /v1 base URL and pid."""
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.fake_server", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        if b"fake model" not in line:
            raise RuntimeError(f"fake model did not start: {line!r}")
        yield f"http://127.0.0.1:{port}/v1", proc.pid
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class Probe:
    """bench.probe in a subprocess: GETs `path` until stopped (or `count` of them)."""

    def __init__(self, base_url: str, key: str, path: str, count: int = 0) -> None:
        args = [sys.executable, "-m", "bench.probe", base_url, key, path]
        args += ["--count", str(count)] if count else ["--until-stdin-closes"]
        self.proc = subprocess.Popen(
            args, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        assert self.proc.stderr is not None
        self.proc.stderr.readline()  # "ready"

    def finish(self) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=120)
        if self.proc.returncode:
            raise RuntimeError(f"probe failed: {err.decode()[-500:]}")
        found: dict[str, Any] = json.loads(out)
        return found


# ---- statistics -------------------------------------------------------------------------


def percentile(ordered: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def stats_ms(values: list[float]) -> dict[str, Any]:
    ordered = sorted(values)
    if not ordered:
        return {"n": 0}
    return {
        "n": len(ordered),
        "p50_ms": round(percentile(ordered, 0.5), 3),
        "p90_ms": round(percentile(ordered, 0.9), 3),
        "p99_ms": round(percentile(ordered, 0.99), 3),
        "max_ms": round(ordered[-1], 3),
        "mean_ms": round(sum(ordered) / len(ordered), 3),
    }


def gaps_ms(results: list[Timed], pace_s: float) -> list[float]:
    """Every delay between two consecutive deltas of one stream beyond the pacing."""
    added = []
    for result in results:
        times = result.deltas
        added += [(b - a - pace_s) * 1000 for a, b in itertools.pairwise(times)]
    return added
