"""The stream-load figure of the runs benchmark (`python -m bench.runs --streams N`): N
streamed runs at once, the fake model pacing each at `--delta-rate` deltas a second,
beside the same N streams made straight to the model by the same client.

Figures: errors; the added inter-delta delay (each gap between two consecutive deltas of a
stream, as the client saw it, minus the model's pacing), assistd's beside the direct
streams'; time to the first delta; the latency of a plain GET (`GET /assistants/{id}`,
from bench.probe in its own process) at idle and throughout the load; the server's RSS at
idle, at its peak and once the load has settled; the CPU of the server, of the model and
of the load generator (bench.loadgen, its own process) over the load.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import orjson
import psutil  # type: ignore[import-untyped]

from bench.harness import ROOT, cpu_seconds
from bench.runload import (
    INSTRUCTIONS,
    MESSAGES,
    Probe,
    assistd_client,
    make_threads,
    post_json,
    stats_ms,
)

MIB = 1024 * 1024
GOALS = {"errors": 0, "added_inter_delta_p99_ms": 50.0, "get_p99_ms": 20.0, "rss_ratio": 1.2}


@dataclass(frozen=True)
class LoadPlan:
    streams: int = 1000
    delta_rate: float = 20.0
    words: int = 300  # deltas a stream: 15 s at 20 a second
    ramp_s: float = 5.0  # the streams start evenly over this time
    settle_s: float = 10.0  # after the load, before RSS is read again
    idle_gets: int = 300

    @property
    def model(self) -> str:
        return f"paced-{self.delta_rate:g}-{self.words}"


def _request(url: str, path: str, body: bytes, headers: dict[str, str]) -> str:
    parts = urlsplit(url)
    lines = [f"POST {path} HTTP/1.1", f"Host: {parts.hostname}:{parts.port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    lines += [f"Content-Length: {len(body)}", "Connection: close", "", ""]
    return "\r\n".join(lines) + body.decode()


def _generate(url: str, requests: list[str], kind: str, plan: LoadPlan) -> dict[str, Any]:
    """Runs bench.loadgen over `requests`; `kind` is `assistd` or `model`."""
    parts = urlsplit(url)
    markers = {
        "assistd": ("event:thread.message.delta", "event:done", "event:thread.run.completed"),
        "model": ('"content": "w', "data: [DONE]", "data: [DONE]"),
    }[kind]
    spec = {
        "host": parts.hostname,
        "port": parts.port,
        "requests": requests,
        "marker": markers[0],
        "end": markers[1],
        "ok": markers[2],
        "ramp_s": plan.ramp_s,
        "pace_s": 1.0 / plan.delta_rate,
    }
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen"],
        cwd=ROOT,
        input=json.dumps(spec).encode(),
        capture_output=True,
        check=False,
    )
    if done.returncode:
        raise RuntimeError(f"load generator failed: {done.stderr.decode()[-800:]}")
    found: dict[str, Any] = json.loads(done.stdout)
    return found


def _rss(proc: psutil.Process) -> float:
    return round(float(proc.memory_info().rss) / MIB, 1)


async def _sample_rss(proc: psutil.Process, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss(proc))
        await asyncio.sleep(0.25)


def _direct(model_url: str, plan: LoadPlan) -> dict[str, Any]:
    body = orjson.dumps(
        {"model": plan.model, "messages": MESSAGES, "stream": True,
         "stream_options": {"include_usage": True}}
    )  # fmt: skip
    path = urlsplit(model_url).path + "/chat/completions"
    request = _request(model_url, path, body, {"Content-Type": "application/json"})
    return _generate(model_url, [request] * plan.streams, "model", plan)


async def _assistd(t: Any, threads: list[str], plan: LoadPlan) -> dict[str, Any]:
    base = t.server.base_url
    body = orjson.dumps({"assistant_id": t.assistant_id, "model": plan.model, "stream": True})
    headers = {"Authorization": f"Bearer {t.key}", "Content-Type": "application/json"}
    requests = [_request(base, f"/api/v1/threads/{th}/runs", body, headers) for th in threads]
    probe = Probe(base, t.key, f"/api/v1/assistants/{t.assistant_id}")
    stop, peak = asyncio.Event(), [_rss(t.proc)]
    sampler = asyncio.create_task(_sample_rss(t.proc, peak, stop))
    model = psutil.Process(t.model_pid)
    cpu0, model0, start = cpu_seconds(t.procs), cpu_seconds([model]), time.perf_counter()
    found = {"started_ns": time.perf_counter_ns()}
    found |= await asyncio.to_thread(_generate, base, requests, "assistd", plan)
    found["server_cpu_s"] = round(cpu_seconds(t.procs) - cpu0, 2)
    found["model_cpu_s"] = round(cpu_seconds([model]) - model0, 2)
    found["load_wall_s"] = round(time.perf_counter() - start, 2)
    found["get_under_load"] = probe.finish()
    stop.set()
    await sampler
    found["rss_peak_mib"] = peak[0]
    return found


def _pair(assistd: list[float], direct: list[float]) -> dict[str, Any]:
    a, d = stats_ms(assistd), stats_ms(direct)
    if not a["n"] or not d["n"]:
        return {"assistd": a, "direct": d}
    return {
        "assistd": a,
        "direct": d,
        "added_p50_ms": round(a["p50_ms"] - d["p50_ms"], 3),
        "added_p99_ms": round(a["p99_ms"] - d["p99_ms"], 3),
    }


async def stream_load(t: Any, plan: LoadPlan) -> dict[str, Any]:
    """The whole figure against a started server `t` (a bench.runs Target)."""
    rss_idle = _rss(t.proc)  # no run yet
    async with assistd_client(t.server.base_url, t.key) as client:
        body = {"model": "instant", "instructions": INSTRUCTIONS}
        t.assistant_id = (await post_json(client, "/api/v1/assistants", body))["id"]
        threads = await make_threads(client, plan.streams)
    get_path = f"/api/v1/assistants/{t.assistant_id}"
    idle = Probe(t.server.base_url, t.key, get_path, count=plan.idle_gets).finish()
    direct = await asyncio.to_thread(_direct, t.model_url, plan)
    loaded = await _assistd(t, threads, plan)
    await asyncio.sleep(plan.settle_s)
    return _report(plan, rss_idle, _rss(t.proc), idle, direct, loaded)


def _by_phase(gets: dict[str, Any], started_ns: int, ramp_s: float) -> dict[str, Any]:
    """GET latency while the streams start (the ramp) and once all have started: run
    creations and token relaying load the server differently."""
    ramp_end = started_ns + int(ramp_s * 1e9)
    pairs = list(zip(gets.get("started_ns", []), gets["latencies_ns"], strict=False))
    return {
        "ramp": stats_ms([lat / 1e6 for at, lat in pairs if at < ramp_end]),
        "after_ramp": stats_ms([lat / 1e6 for at, lat in pairs if at >= ramp_end]),
    }


def _report(
    plan: LoadPlan,
    rss_idle: float,
    rss_after: float,
    idle: dict[str, Any],
    direct: dict[str, Any],
    loaded: dict[str, Any],
) -> dict[str, Any]:
    get_idle = stats_ms([x / 1e6 for x in idle["latencies_ns"]])
    get_load = stats_ms([x / 1e6 for x in loaded["get_under_load"]["latencies_ns"]])
    gaps = _pair(loaded["gaps_ms"], direct["gaps_ms"])
    found = {
        "plan": {**plan.__dict__, "model": plan.model},
        "errors": loaded["errors"],
        "first_errors": loaded["first_errors"],
        "direct_errors": direct["errors"],
        "deltas_expected": plan.streams * plan.words,
        "deltas_received": loaded["deltas"],
        "direct_deltas_received": direct["deltas"],
        "added_inter_delta": gaps,
        "ttft": _pair(loaded["ttft_ms"], direct["ttft_ms"]),
        "response_head": _pair(loaded["head_ms"], direct["head_ms"]),
        "get_latency": {
            "idle": get_idle,
            "under_load": get_load,
            "errors_under_load": loaded["get_under_load"]["errors"],
            "under_load_by_phase": _by_phase(
                loaded["get_under_load"], loaded["started_ns"], plan.ramp_s
            ),
        },
        "rss_mib": {
            "idle": rss_idle,
            "peak": loaded["rss_peak_mib"],
            "after": rss_after,
            "after_vs_idle": round(rss_after / rss_idle, 2),
        },
        "wall_s": {"assistd": loaded["wall_s"], "direct": direct["wall_s"]},
        "cpu_s": {
            "server": loaded["server_cpu_s"],
            "model": loaded["model_cpu_s"],
            "load_generator": loaded["client_cpu_s"],
            "load_generator_direct": direct["client_cpu_s"],
        },
    }
    found["goals"] = _goals(found)
    return found


def _goals(f: dict[str, Any]) -> dict[str, str]:
    def met(ok: bool) -> str:
        return "MET" if ok else "MISSED"

    p99 = f["added_inter_delta"]["assistd"].get("p99_ms", float("inf"))
    get_p99 = f["get_latency"]["under_load"].get("p99_ms", float("inf"))
    return {
        "errors == 0": met(f["errors"] == 0),
        "added inter-delta p99 <= 50 ms": met(p99 <= GOALS["added_inter_delta_p99_ms"]),
        "GET p99 <= 20 ms under load": met(get_p99 <= GOALS["get_p99_ms"]),
        "RSS after <= 1.2x idle": met(f["rss_mib"]["after_vs_idle"] <= GOALS["rss_ratio"]),
    }


def table(found: dict[str, Any]) -> str:
    g, t, lat = found["added_inter_delta"], found["ttft"], found["get_latency"]
    plan, cpu, rss = found["plan"], found["cpu_s"], found["rss_mib"]

    def p(s: dict[str, Any]) -> str:
        return f"{s.get('p50_ms', float('nan')):.1f} / {s.get('p99_ms', float('nan')):.1f}"

    lines = [
        f"{plan['streams']} streams at {plan['delta_rate']:g} deltas/s, {plan['words']} each, "
        f"started over {plan['ramp_s']:g} s",
        f"  errors {found['errors']} (direct {found['direct_errors']}); deltas "
        f"{found['deltas_received']}/{found['deltas_expected']}",
        f"  added inter-delta p50/p99 ms: assistd {p(g['assistd'])}   direct {p(g['direct'])}",
        f"  time to first delta p50/p99 ms: assistd {p(t['assistd'])}   direct {p(t['direct'])}",
        f"  response head p50/p99 ms: assistd {p(found['response_head']['assistd'])}   "
        f"direct {p(found['response_head']['direct'])}",
        f"  GET p50/p99 ms: under load {p(lat['under_load'])}   idle {p(lat['idle'])}",
        f"  GET p50/p99 ms: while the streams start {p(lat['under_load_by_phase']['ramp'])}"
        f"   after {p(lat['under_load_by_phase']['after_ramp'])}",
        f"  server RSS MiB idle / peak / after: {rss['idle']} / {rss['peak']} / {rss['after']}"
        f" (x{rss['after_vs_idle']})",
        f"  CPU s: server {cpu['server']}, model {cpu['model']}, load generator "
        f"{cpu['load_generator']} (direct run {cpu['load_generator_direct']}); wall "
        f"{found['wall_s']['assistd']} s (direct {found['wall_s']['direct']} s)",
    ]
    lines += [f"  {goal}: {verdict}" for goal, verdict in found["goals"].items()]
    return "\n".join(lines)
