"""Benchmark plumbing: keep-alive HTTP clients, server processes, CPU accounting, statistics.

Latency is measured client-side: from just before the request is written to just after
the whole response body is read, over one persistent keep-alive connection per server,
one request at a time (concurrency 1).
"""

from __future__ import annotations

import gc
import http.client
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import httpx
import orjson
import psutil  # type: ignore[import-untyped]

from tests.support.server import free_port

ROOT = Path(__file__).resolve().parent.parent


class Client(Protocol):
    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]: ...
    def close(self) -> None: ...


class RawClient:
    """http.client.HTTPConnection: one keep-alive connection, the least client overhead."""

    kind = "http.client keep-alive"

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        parts = urlsplit(base_url)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port)
        self.headers = {"Content-Type": "application/json", **headers}

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        try:
            return self._send(method, path, body)
        except (http.client.RemoteDisconnected, BrokenPipeError, ConnectionResetError):
            # uvicorn closes a connection idle for 5 s (e.g. while the bench seeds the
            # database); reconnect once. Only ever hits a warm-up call.
            self.conn.close()
            return self._send(method, path, body)

    def _send(self, method: str, path: str, body: bytes | None) -> tuple[int, bytes]:
        self.conn.request(method, path, body=body, headers=self.headers)
        response = self.conn.getresponse()
        return response.status, response.read()

    def close(self) -> None:
        self.conn.close()


class HttpxClient:
    """A persistent httpx.Client (keep-alive pool of one connection in practice)."""

    kind = "httpx.Client keep-alive"

    def __init__(self, base_url: str, headers: dict[str, str]) -> None:
        headers = {"Content-Type": "application/json", **headers}
        self.client = httpx.Client(base_url=base_url, headers=headers, timeout=60)

    def send(self, method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        response = self.client.request(method, path, content=body)
        return response.status_code, response.content

    def close(self) -> None:
        self.client.close()


CLIENTS: dict[str, Callable[[str, dict[str, str]], Client]] = {
    "http.client": RawClient,
    "httpx": HttpxClient,
}


def json_call(client: Client, method: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """One JSON request whose answer must be 200; its JSON body."""
    status, data = client.send(method, path, orjson.dumps(body))
    if status != 200:
        raise RuntimeError(f"{method} {path}: {status} {data[:300]!r}")
    found: dict[str, Any] = orjson.loads(data)
    return found


# ---- server processes -------------------------------------------------------------------


def child_listening_on(port: int) -> psutil.Process:
    """The child process of this one started with `--port <port>` (the server itself)."""
    for child in psutil.Process().children(recursive=True):
        try:
            cmdline = child.cmdline()
        except psutil.Error:
            continue
        if "--port" in cmdline and str(port) in cmdline:
            return child
    raise RuntimeError(f"no child process serving port {port}")


def cpu_seconds(procs: list[psutil.Process]) -> float:
    """User + system CPU of these processes (all their threads); vanished ones count 0."""
    total = 0.0
    for proc in procs:
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        total += times.user + times.system
    return total


def postgres_processes() -> list[psutil.Process]:
    """Every PostgreSQL process on the machine (the server and all its backends)."""
    found = []
    for proc in psutil.process_iter(["name"]):
        if (proc.info.get("name") or "").startswith("postgres"):
            found.append(proc)
    return found


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"baseline exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"baseline did not become ready:\n{log.read_text()}")


@dataclass(frozen=True)
class Baseline:
    base_url: str
    pid: int


@contextmanager
def run_baseline(workdir: Path) -> Iterator[Baseline]:
    """The bare FastAPI app of bench/baseline_app.py under uvicorn, in a subprocess."""
    port = free_port()
    log = workdir / f"baseline-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "bench.baseline_app", "--port", str(port)],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(f"{base_url}/healthz", proc, log)
        yield Baseline(base_url, proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()


# ---- measuring --------------------------------------------------------------------------


@dataclass
class Call:
    """One kind of request to one server, and the processes whose CPU it costs."""

    client: Client
    method: str
    path: str
    body: bytes | None
    cpu_procs: list[psutil.Process]
    extra_cpu_procs: list[psutil.Process] = field(default_factory=list)

    def once(self) -> int:
        """One request; its latency in nanoseconds. Fails loudly on a non-2xx answer."""
        start = time.perf_counter_ns()
        status, data = self.client.send(self.method, self.path, self.body)
        elapsed = time.perf_counter_ns() - start
        if not 200 <= status < 300:
            raise RuntimeError(f"{self.method} {self.path} answered {status}: {data[:300]!r}")
        return elapsed


@dataclass
class Samples:
    latencies_ns: list[int]
    cpu_s: float  # CPU of the server process over the measured requests
    extra_cpu_s: float | None  # CPU of the database processes (PostgreSQL only)


def measure_pair(target: Call, baseline: Call, n: int, warmup: int) -> tuple[Samples, Samples]:
    """`n` requests to each, interleaved one to one so both see the same machine noise."""
    for _ in range(warmup):
        target.once()
        baseline.once()
    gc.collect()
    gc.disable()  # keep the client's collector out of the timed section
    try:
        t_cpu0, b_cpu0 = cpu_seconds(target.cpu_procs), cpu_seconds(baseline.cpu_procs)
        x_cpu0 = cpu_seconds(target.extra_cpu_procs)
        t_lat, b_lat = [], []
        for _ in range(n):
            t_lat.append(target.once())
            b_lat.append(baseline.once())
        t_cpu = cpu_seconds(target.cpu_procs) - t_cpu0
        b_cpu = cpu_seconds(baseline.cpu_procs) - b_cpu0
        x_cpu = cpu_seconds(target.extra_cpu_procs) - x_cpu0
    finally:
        gc.enable()
    extra = x_cpu if target.extra_cpu_procs else None
    return Samples(t_lat, t_cpu, extra), Samples(b_lat, b_cpu, None)


def percentile(sorted_values: list[int], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    if not sorted_values:
        return float("nan")
    pos = (len(sorted_values) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(sorted_values) - 1)
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * (pos - lo)


def summary(samples: Samples) -> dict[str, Any]:
    """Milliseconds: p50, p90, p99, mean, min, max, and server CPU per request."""
    values = sorted(samples.latencies_ns)
    n = len(values)

    def ms(ns: float) -> float:
        return round(ns / 1e6, 4)

    out: dict[str, Any] = {
        "n": n,
        "p50_ms": ms(percentile(values, 0.50)),
        "p90_ms": ms(percentile(values, 0.90)),
        "p99_ms": ms(percentile(values, 0.99)),
        "mean_ms": ms(sum(values) / n) if n else None,
        "min_ms": ms(values[0]) if n else None,
        "max_ms": ms(values[-1]) if n else None,
        "server_cpu_ms_per_req": round(samples.cpu_s * 1000 / n, 4) if n else None,
    }
    if samples.extra_cpu_s is not None:
        out["postgres_cpu_ms_per_req"] = round(samples.extra_cpu_s * 1000 / n, 4)
    return out


def machine() -> dict[str, Any]:
    import platform

    import uvicorn

    def importable(name: str) -> bool:
        try:
            __import__(name)
        except ImportError:
            return False
        return True

    return {
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "uvicorn": uvicorn.__version__,
        # uvicorn.run's defaults (loop="auto", http="auto"), used by assistd and baseline alike
        "uvicorn_loop": "uvloop" if importable("uvloop") else "asyncio",
        "uvicorn_http": "httptools" if importable("httptools") else "h11",
    }


def save_results(name: str, started: Any, results: dict[str, Any], table_text: str) -> None:
    """Writes bench/results/<name>-<UTC timestamp>.json and prints the table and the path."""
    folder = ROOT / "bench" / "results"
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}-{started.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print()
    print(table_text)
    print(f"\nresults: {out.relative_to(ROOT)} ({results['wall_seconds']} s)")
