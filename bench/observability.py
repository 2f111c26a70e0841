"""The cost of observability: the calls of the `objects` and `runs` benchmarks against four
servers of one backend, started alike but for this: `off` has metrics, tracing and the
audit log off; `metrics` keeps its metrics (the default); `traced` also traces every
request, run, model call and tool call (`tracing_enabled`, no exporter; with `--export`,
spans go by the real OTLP/HTTP exporter to a local sink that discards them); `all` adds
the audit log (the default) to that, which is the issue's measure: everything on beside
everything off. Their calls are interleaved, one call (or run) of each in turn, the order
turning, so all four see the same noise and share one `off`.

    python -m bench.observability [--quick] [--export] [--backends sqlite,postgres]

Figures: ratios to `off` of p50 and mean request latency (goal: at most 1.05), and of
server CPU per object call. Writes bench/results/observability-<timestamp>.json and
prints a table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import orjson

from bench.harness import (
    Call,
    RawClient,
    Samples,
    child_listening_on,
    cpu_seconds,
    machine,
    save_results,
    summary,
)
from bench.objects import git_commit
from bench.runload import (
    INSTRUCTIONS,
    Timed,
    assistd_client,
    fake_model_process,
    make_threads,
    polled_run,
    post_json,
    stats_ms,
    stream_run,
)
from tests.support.postgres import fresh_database
from tests.support.server import RunningServer, run_server

GOAL = 1.05  # on/off latency
MODES = ("off", "metrics", "traced", "all")


@dataclass(frozen=True)
class Plan:
    object_calls: int
    runs: int
    warmup: int


# ---- the span sink ------------------------------------------------------------------------


class _Sink(BaseHTTPRequestHandler):
    """Takes OTLP/HTTP exports and drops them (an empty ExportTraceServiceResponse)."""

    received: ClassVar[list[int]] = [0, 0]  # exports, bytes

    def do_POST(self) -> None:
        size = int(self.headers.get("Content-Length", "0"))
        self.rfile.read(size)
        _Sink.received[0] += 1
        _Sink.received[1] += size
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def span_sink() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


# ---- servers ------------------------------------------------------------------------------


@dataclass
class ModeServers:
    servers: dict[str, RunningServer]
    keys: dict[str, str]


def _env(mode: str, model_url: str, sink_url: str | None) -> dict[str, str]:
    env = {"ASSISTD_OPENAI_BASE_URL": model_url}
    if mode in ("traced", "all") and sink_url:
        env["ASSISTD_OTLP_ENDPOINT"] = sink_url
    elif mode in ("traced", "all"):
        env["ASSISTD_TRACING_ENABLED"] = "true"
    if mode == "off":
        env["ASSISTD_METRICS_ENABLED"] = "false"
    if mode != "all":
        env["ASSISTD_AUDIT_LOG"] = "false"
    return env


def _key(server: RunningServer) -> str:
    admin = RawClient(server.base_url, {"Authorization": f"Bearer {server.admin_key}"})
    try:
        status, data = admin.send("POST", "/admin/v1/workspaces", b'{"name": "bench"}')
        ws = orjson.loads(data)["id"]
        status, data = admin.send("POST", "/admin/v1/keys", orjson.dumps({"workspace": ws}))
        assert status == 200, data
        return str(orjson.loads(data)["key"])
    finally:
        admin.close()


@contextmanager
def mode_servers(
    backend: str, workdir: Path, model_url: str, sink_url: str | None
) -> Iterator[ModeServers]:
    with ExitStack() as stack:
        servers = {}
        for mode in MODES:
            url = ""
            if backend == "postgres":
                url = stack.enter_context(fresh_database(workdir / f"pg-{mode}"))
            env = _env(mode, model_url, sink_url)
            servers[mode] = stack.enter_context(
                run_server(workdir / f"data-{backend}-{mode}", url, **env)
            )
        yield ModeServers(servers, {m: _key(s) for m, s in servers.items()})


# ---- object calls -------------------------------------------------------------------------


def _ratios(row: dict[str, Any], *keys: str) -> dict[str, dict[str, float]]:
    """Each mode's figures over those of off, measured in the same rounds."""
    ratios = {}
    for mode in MODES[1:]:
        off = row["off"]
        ratios[f"{mode}_over_off"] = {
            k: round(row[mode][k] / off[k], 3) for k in keys if row[mode].get(k) and off.get(k)
        }
    return ratios


def object_calls(fleet: ModeServers, plan: Plan) -> dict[str, Any]:
    clients = {
        m: RawClient(s.base_url, {"Authorization": f"Bearer {fleet.keys[m]}"})
        for m, s in fleet.servers.items()
    }
    procs = {m: [child_listening_on(int(s.base_url.rsplit(":", 1)[1]))]
             for m, s in fleet.servers.items()}  # fmt: skip
    threads = {m: orjson.loads(c.send("POST", "/api/v1/threads", b"{}")[1])["id"]
               for m, c in clients.items()}  # fmt: skip
    message = orjson.dumps({"role": "user", "content": "A short message."})
    for m, c in clients.items():
        for _ in range(20):
            c.send("POST", f"/api/v1/threads/{threads[m]}/messages", message)
    body = orjson.dumps({"model": "instant", "instructions": INSTRUCTIONS})
    ops: list[tuple[str, str, Callable[[str], str], bytes | None]] = [
        ("assistants.create", "POST", lambda t: "/api/v1/assistants", body),
        ("messages.list", "GET", lambda t: f"/api/v1/threads/{t}/messages?limit=20", None),
        ("messages.create", "POST", lambda t: f"/api/v1/threads/{t}/messages", message),
    ]
    rows: dict[str, Any] = {}
    try:
        for op, method, path, payload in ops:
            calls = {m: Call(clients[m], method, path(threads[m]), payload, procs[m])
                     for m in MODES}  # fmt: skip
            row = measure_modes(calls, plan)
            row.update(_ratios(row, "p50_ms", "mean_ms", "server_cpu_ms_per_req"))
            rows[op] = row
            _progress(op, row)
    finally:
        for client in clients.values():
            client.close()
    return rows


def measure_modes(calls: dict[str, Call], plan: Plan) -> dict[str, Any]:
    """The four modes' calls in rounds, one each, the order turning, so all four see the
    same machine noise and every mode's ratios are over the same `off`."""
    for _ in range(plan.warmup):
        for mode in MODES:
            calls[mode].once()
    gc.collect()
    gc.disable()  # keep the client's collector out of the timed section
    try:
        cpu0 = {m: cpu_seconds(calls[m].cpu_procs) for m in MODES}
        latencies: dict[str, list[int]] = {m: [] for m in MODES}
        for i in range(plan.object_calls):
            turn = i % len(MODES)
            for mode in MODES[turn:] + MODES[:turn]:
                latencies[mode].append(calls[mode].once())
        cpu = {m: cpu_seconds(calls[m].cpu_procs) - cpu0[m] for m in MODES}
    finally:
        gc.enable()
    return {m: summary(Samples(latencies[m], cpu[m], None)) for m in MODES}


def _progress(op: str, row: dict[str, Any]) -> None:
    figures = "  ".join(
        f"{mode} p50 x{row[f'{mode}_over_off'].get('p50_ms')}" for mode in MODES[1:]
    )
    print(f"    {op:20} {figures}", flush=True)


# ---- runs ---------------------------------------------------------------------------------


async def _interleaved(
    runs: dict[str, Callable[[int], Awaitable[Timed]]], n: int, warmup: int
) -> dict[str, list[Timed]]:
    done: dict[str, list[Timed]] = {m: [] for m in MODES}
    for i in range(n + warmup):
        turn = i % len(MODES)
        order = MODES[turn:] + MODES[:turn]
        for mode in order:
            timed = await runs[mode](i)
            if i >= warmup:
                done[mode].append(timed)
    return done


async def run_calls(fleet: ModeServers, plan: Plan) -> dict[str, Any]:
    out: dict[str, Any] = {}
    procs = {m: [child_listening_on(int(s.base_url.rsplit(":", 1)[1]))]
             for m, s in fleet.servers.items()}  # fmt: skip
    async with contextlib.AsyncExitStack() as stack:
        clients = {
            m: await stack.enter_async_context(assistd_client(s.base_url, fleet.keys[m]))
            for m, s in fleet.servers.items()
        }
        body = {"model": "instant", "instructions": INSTRUCTIONS}
        assistants = {m: (await post_json(c, "/api/v1/assistants", body))["id"]
                      for m, c in clients.items()}  # fmt: skip
        total = 2 * (plan.runs + plan.warmup)
        threads = {m: await make_threads(c, total) for m, c in clients.items()}
        for kind in ("streamed", "polled"):
            offset = 0 if kind == "streamed" else plan.runs + plan.warmup

            def one(mode: str, kind: str = kind, offset: int = offset) -> Callable[[int], Any]:
                run = {"assistant_id": assistants[mode], "model": "instant"}
                c, th = clients[mode], threads[mode]
                if kind == "streamed":
                    return lambda i: stream_run(c, th[offset + i], run)
                return lambda i: polled_run(c, th[offset + i], run, interval=0)

            cpu0 = {m: cpu_seconds(p) for m, p in procs.items()}
            done = await _interleaved({m: one(m) for m in MODES}, plan.runs, plan.warmup)
            errors = [t.error for ts in done.values() for t in ts if not t.ok]
            row: dict[str, Any] = {m: stats_ms([t.total_ms() for t in done[m] if t.ok])
                                   for m in MODES}  # fmt: skip
            for m, p in procs.items():  # warm-up runs included: the same count for each
                row[m]["server_cpu_ms_per_run"] = round(
                    (cpu_seconds(p) - cpu0[m]) * 1000 / (plan.runs + plan.warmup), 3
                )
            row.update(_ratios(row, "p50_ms", "mean_ms", "server_cpu_ms_per_run"))
            row["errors"] = len(errors)
            out[f"run.{kind}"] = row
            _progress(f"run.{kind}", row)
    return out


# ---- the whole run ------------------------------------------------------------------------


def bench_backend(backend: str, fleet: ModeServers, plan: Plan) -> dict[str, Any]:
    print(f"  {backend}", flush=True)
    started = time.perf_counter()
    rows = object_calls(fleet, plan)
    rows.update(asyncio.run(run_calls(fleet, plan)))
    return {"operations": rows, "seconds": round(time.perf_counter() - started, 1)}


def table(results: dict[str, Any]) -> str:
    lines = [
        f"{'backend':9} {'operation':20} {'mode':8} {'p50 ms':>9} {'off p50':>9} "
        f"{'p50 x':>7} {'mean x':>7} {'cpu x':>7}  goal p50 x <= {GOAL}"
    ]
    for backend, found in results["backends"].items():
        for op, row in found["operations"].items():
            for mode in MODES[1:]:
                ratios = row[f"{mode}_over_off"]
                ratio = ratios.get("p50_ms")
                off = row["off"]
                cpu = ratios.get("server_cpu_ms_per_req", ratios.get("server_cpu_ms_per_run"))
                met = "MET" if ratio is not None and ratio <= GOAL else "MISSED"
                lines.append(
                    f"{backend:9} {op:20} {mode:8} {row[mode]['p50_ms']:9.3f} "
                    f"{off['p50_ms']:9.3f} {ratio!s:>7} {ratios.get('mean_ms')!s:>7} "
                    f"{cpu!s:>7}  {met}"
                )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--export", action="store_true", help="traced spans go to a local OTLP/HTTP sink"
    )
    args = parser.parse_args(argv)
    plan = Plan(
        object_calls=300 if args.quick else 2000,
        runs=40 if args.quick else 200,
        warmup=20 if args.quick else 50,
    )
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "benchmark": "observability",
        "started_at": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "quick": args.quick,
        "plan": plan.__dict__,
        "setup": "off: metrics_enabled=false, no OTLP endpoint, audit_log=false; metrics: "
        "metrics on (the default); traced: metrics on, and every request, run, model call "
        "and tool call traced ("
        + (
            "spans exported by OTLP/HTTP to a local sink that drops them"
            if args.export
            else "tracing_enabled, no exporter"
        )
        + "); "
        "all: traced with the audit log on (the default). Object calls over http.client "
        "keep-alive (the four interleaved in turn, the order turning); runs over httpx, one at "
        "a time, the four interleaved in turn.",
        "machine": machine(),
        "backends": {},
    }
    print(f"assistd observability benchmark: {plan}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp,
        fake_model_process() as (model_url, _),
        span_sink() as sink_url,
    ):
        for backend in [b.strip() for b in args.backends.split(",") if b.strip()]:
            sink = sink_url if args.export else None
            with mode_servers(backend, Path(tmp), model_url, sink) as fleet:
                results["backends"][backend] = bench_backend(backend, fleet, plan)
                if sink:
                    time.sleep(6)  # the batch processor's next export (every 5 s)
    results["spans_exported"] = {"exports": _Sink.received[0], "bytes": _Sink.received[1]}
    results["machine"]["load_avg_after"] = machine()["load_avg"]
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    save_results("observability", started, results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
