"""Run engine benchmarks: what assistd adds to a model call, beside the same call made
straight to the model in the same run.

    python -m bench.runs [--quick] [--backends sqlite,postgres] [--no-local]
    python -m bench.runs --shape distributed [--quick]

The embedded shape (default) benchmarks one `assistd serve` per backend. The distributed
shape benchmarks PostgreSQL + Redis with one `assistd serve --no-worker` and one
`assistd worker`, processes of their own; server CPU is theirs together.

1. overhead: a streamed run's create -> `thread.run.completed`, minus a streamed call of
   the fake model (answering at once) made directly with the openai SDK, same messages;
   also a non-streamed run polled back to back (GET after GET) as a second view.
2. added time to first token: first `thread.message.delta` vs first content chunk.
3. deltas/s relayed for one long run vs the fake model's own deltas/s.
4. runs/s at concurrency 32, each run on its own thread: create (not streamed) and poll
   retrieve every 50 ms; and the same with streamed runs; server CPU per run.
5. 200 concurrent streamed runs paced at 50 deltas/s: errors, added inter-delta delay vs
   200 direct streams, GET latency (a probe in its own process) idle vs under the load,
   server RSS at idle (no run yet, local model not loaded), at peak and after.
6. the local model (SmolLM2 via xllamacpp): tokens/s of a streamed run through the whole
   stack vs assistd.models.local.LocalBackend driven directly in this process.

    python -m bench.runs --streams 1000 [--delta-rate 20] [--stream-words 300] [--ramp-s 5]

measures only the stream load (bench/stream_load.py): that many streamed runs at once, the
model pacing each, from a load generator in its own process (bench/loadgen.py).

Writes bench/results/runs-<timestamp>.json and prints a table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.harness import (
    ROOT,
    child_listening_on,
    cpu_seconds,
    machine,
    postgres_processes,
    save_results,
)
from bench.objects import git_commit
from bench.runload import (
    INSTRUCTIONS,
    MESSAGES,
    Probe,
    Timed,
    assistd_client,
    direct_raw,
    direct_sdk,
    fake_model_process,
    gaps_ms,
    make_threads,
    model_client,
    model_http,
    polled_run,
    post_json,
    stats_ms,
    stream_run,
)
from bench.runs_report import best, median, table
from bench.stream_load import LoadPlan, stream_load
from bench.stream_load import table as stream_load_table
from tests.durability.cluster import cluster, forget_keys, missing_commands, redis_problem
from tests.support.postgres import fresh_database
from tests.support.redis import REDIS_URL
from tests.support.server import RunningServer, run_server

RESULTS = ROOT / "bench" / "results"
# The default (64) would queue 136 of the 200 concurrent streams behind the others; the
# scenario is 200 streams at once. Results record it.
RUN_WORKERS = 256
MIB = 1024 * 1024


@dataclass(frozen=True)
class Plan:
    overhead_n: int = 300
    polled_n: int = 100
    warmup: int = 30
    relay_words: int = 5000
    relay_reps: int = 3
    throughput_runs: int = 1000
    concurrency: int = 32
    poll_interval_s: float = 0.05
    streams: int = 200
    stream_rate: float = 50.0
    stream_words: int = 250
    idle_gets: int = 300
    local_reps: int = 6
    local_max_tokens: int = 128


QUICK = Plan(
    overhead_n=60,
    polled_n=30,
    warmup=10,
    relay_words=2000,
    relay_reps=2,
    throughput_runs=400,
    stream_words=100,
    idle_gets=150,
    local_reps=4,
)


# The backends after the first (PostgreSQL) run fewer iterations and skip the stream load,
# which keeps the whole benchmark near six minutes.
SECOND_BACKEND = {"overhead_n": 100, "polled_n": 30, "throughput_runs": 400}


@dataclass
class Target:
    server: RunningServer
    proc: psutil.Process  # the process serving the API
    model_url: str
    model_pid: int
    assistant_id: str = ""
    workers: list[psutil.Process] = field(default_factory=list)  # distributed: `assistd worker`

    @property
    def key(self) -> str:
        return self.server.admin_key

    @property
    def procs(self) -> list[psutil.Process]:
        """Every process of assistd: its CPU is the server CPU of a figure."""
        return [self.proc, *self.workers]


def _rss_mib(proc: psutil.Process) -> float:
    return round(float(proc.memory_info().rss) / MIB, 1)


def _pair(assistd: list[float], direct: list[float]) -> dict[str, Any]:
    a, d = stats_ms(assistd), stats_ms(direct)
    return {
        "assistd": a,
        "direct": d,
        "added_p50_ms": round(a["p50_ms"] - d["p50_ms"], 3),
        "added_p99_ms": round(a["p99_ms"] - d["p99_ms"], 3),
        "ratio_p50": round(a["p50_ms"] / d["p50_ms"], 2),
    }


# ---- 1 and 2: overhead and time to first token ------------------------------------------


async def overhead(t: Target, plan: Plan) -> dict[str, Any]:
    n = plan.overhead_n + plan.warmup
    async with assistd_client(t.server.base_url, t.key) as client, model_http(t.model_url) as http:
        oai = model_client(t.model_url)
        threads = await make_threads(client, n + plan.polled_n)
        run = {"assistant_id": t.assistant_id, "model": "instant"}
        a_runs: list[Timed] = []
        d_runs: list[Timed] = []
        s_runs: list[Timed] = []
        for i in range(n):  # interleaved, the order turning each time
            calls: list[Callable[[], Awaitable[Timed]]] = [
                lambda: stream_run(client, threads[i], run),  # noqa: B023
                lambda: direct_raw(http, "instant"),
                lambda: direct_sdk(oai, "instant"),
            ]
            k = i % 3
            done = [await call() for call in calls[k:] + calls[:k]]
            a, d, sdk = (done[(j - k) % 3] for j in range(3))
            if i >= plan.warmup:
                a_runs.append(a)
                d_runs.append(d)
                s_runs.append(sdk)
        polled = [await polled_run(client, th, run, interval=0) for th in threads[n:]]
        await oai.close()
    errors = [r.error for r in a_runs + d_runs + s_runs + polled if not r.ok]
    return {
        "errors": len(errors),
        "first_errors": errors[:3],
        "completed": _pair([r.total_ms() for r in a_runs], [r.total_ms() for r in d_runs]),
        "ttft": _pair([r.ttft_ms() for r in a_runs], [r.ttft_ms() for r in d_runs]),
        "polled_completed": _pair(
            [r.total_ms() for r in polled if r.ok], [r.total_ms() for r in d_runs]
        ),
        "direct_sdk": {
            "completed": stats_ms([r.total_ms() for r in s_runs]),
            "ttft": stats_ms([r.ttft_ms() for r in s_runs]),
        },
    }


# ---- 3: relay rate ------------------------------------------------------------------------


async def relay(t: Target, plan: Plan) -> dict[str, Any]:
    model = f"words-{plan.relay_words}"
    async with assistd_client(t.server.base_url, t.key) as client, model_http(t.model_url) as http:
        threads = await make_threads(client, plan.relay_reps + 1)
        run = {"assistant_id": t.assistant_id, "model": model}
        await stream_run(client, threads[-1], run)  # warm-up
        a_rates, d_rates = [], []
        cpu0 = cpu_seconds(t.procs)
        for thread in threads[:-1]:
            a = await stream_run(client, thread, run)
            d = await direct_raw(http, model)
            if not a.ok or not d.ok:
                raise RuntimeError(f"relay run failed: {a.error or d.error}")
            a_rates.append(a.rate())
            d_rates.append(d.rate())
        cpu = cpu_seconds(t.procs) - cpu0
    a_rate, d_rate = sorted(a_rates)[len(a_rates) // 2], sorted(d_rates)[len(d_rates) // 2]
    return {
        "words": plan.relay_words,
        "assistd_deltas_per_s": round(a_rate),
        "direct_deltas_per_s": round(d_rate),
        "ratio": round(a_rate / d_rate, 2),
        "server_cpu_us_per_delta": round(cpu * 1e6 / (plan.relay_words * plan.relay_reps), 1),
        "all_assistd": [round(x) for x in a_rates],
        "all_direct": [round(x) for x in d_rates],
    }


# ---- 4: throughput ------------------------------------------------------------------------


async def _pool(n: int, concurrency: int, work: Any) -> tuple[list[Timed], float]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(n):
        queue.put_nowait(i)
    done: list[Timed] = []

    async def worker() -> None:
        while not queue.empty():
            done.append(await work(queue.get_nowait()))

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return done, time.perf_counter() - start


async def throughput(t: Target, plan: Plan, streamed: bool) -> dict[str, Any]:
    n, c = plan.throughput_runs, plan.concurrency
    run = {"assistant_id": t.assistant_id, "model": "instant"}
    async with assistd_client(t.server.base_url, t.key) as client:
        threads = await make_threads(client, n + c)
        await _pool(c, c, lambda i: stream_run(client, threads[n + i], run))  # warm-up

        async def one(i: int) -> Timed:
            if streamed:
                return await stream_run(client, threads[i], run)
            return await polled_run(client, threads[i], run, plan.poll_interval_s)

        pg = postgres_processes() if t.server.database_url else []
        me, model = psutil.Process(), psutil.Process(t.model_pid)
        groups = [t.procs, pg, [me], [model], [t.proc]]
        cpu0 = [cpu_seconds(g) for g in groups]
        done, seconds = await _pool(n, c, one)
        cpu = [cpu_seconds(g) - c0 for g, c0 in zip(groups, cpu0, strict=True)]
    ok = [r for r in done if r.ok]
    found = {
        "mode": "streamed: create with stream=True, read to thread.run.completed"
        if streamed
        else f"polled: create (not streamed), GET the run every {plan.poll_interval_s * 1000:g} ms",
        "runs": n,
        "concurrency": c,
        "errors": n - len(ok),
        "runs_per_s": round(len(ok) / seconds, 1),
        "latency": stats_ms([r.total_ms() for r in ok]),
        "server_cpu_ms_per_run": round(cpu[0] * 1000 / n, 2),
        "client_cpu_ms_per_run": round(cpu[2] * 1000 / n, 2),
        "model_cpu_ms_per_run": round(cpu[3] * 1000 / n, 2),
        "vs_reference": {
            "runs_per_s_ratio": round(len(ok) / seconds / 11.0, 1),
            "cpu_per_run_ratio": round(140.0 / max(cpu[0] * 1000 / n, 1e-9), 1),
        },
    }
    if pg:
        found["postgres_cpu_ms_per_run"] = round(cpu[1] * 1000 / n, 2)
    if t.workers:  # the server CPU above is the API's and the worker's together
        found["api_cpu_ms_per_run"] = round(cpu[4] * 1000 / n, 2)
        found["worker_cpu_ms_per_run"] = round((cpu[0] - cpu[4]) * 1000 / n, 2)
    return found


async def direct_throughput(t: Target, plan: Plan) -> dict[str, Any]:
    """The fake model's own capacity at the same concurrency, for scale."""
    async with model_http(t.model_url) as http:
        await _pool(plan.concurrency, plan.concurrency, lambda i: direct_raw(http, "instant"))
        done, seconds = await _pool(
            plan.throughput_runs, plan.concurrency, lambda i: direct_raw(http, "instant")
        )
    return {"calls_per_s": round(sum(r.ok for r in done) / seconds, 1)}


# ---- 5: many streams ------------------------------------------------------------------------


async def _sample_rss(proc: psutil.Process, peak: list[float], stop: asyncio.Event) -> None:
    while not stop.is_set():
        peak[0] = max(peak[0], _rss_mib(proc))
        await asyncio.sleep(0.25)


async def many_streams(t: Target, plan: Plan) -> dict[str, Any]:
    model = f"paced-{plan.stream_rate:g}-{plan.stream_words}"
    pace = 1.0 / plan.stream_rate
    get_path = f"/api/v1/assistants/{t.assistant_id}"
    async with model_http(t.model_url) as http:
        direct = await asyncio.gather(*(direct_raw(http, model) for _ in range(plan.streams)))
    async with assistd_client(t.server.base_url, t.key) as client:
        threads = await make_threads(client, plan.streams)
        idle = Probe(t.server.base_url, t.key, get_path, count=plan.idle_gets).finish()
        probe = Probe(t.server.base_url, t.key, get_path)
        stop, peak = asyncio.Event(), [_rss_mib(t.proc)]
        sampler = asyncio.create_task(_sample_rss(t.proc, peak, stop))
        cpu0, start = cpu_seconds(t.procs), time.perf_counter()
        run = {"assistant_id": t.assistant_id, "model": model}
        runs = await asyncio.gather(*(stream_run(client, th, run) for th in threads))
        seconds, cpu = time.perf_counter() - start, cpu_seconds(t.procs) - cpu0
        loaded = probe.finish()
        stop.set()
        await sampler
    errors = [r.error for r in runs if not r.ok]
    deltas = sum(len(r.deltas) for r in runs)
    idle_ms = [x / 1e6 for x in idle["latencies_ns"]]
    loaded_ms = [x / 1e6 for x in loaded["latencies_ns"]]
    return {
        "streams": plan.streams,
        "model": model,
        "errors": len(errors) + sum(1 for r in direct if not r.ok) * 0,
        "first_errors": errors[:3],
        "direct_errors": sum(1 for r in direct if not r.ok),
        "deltas_expected": plan.streams * plan.stream_words,
        "deltas_received": deltas,
        "wall_s": round(seconds, 2),
        "server_cpu_s": round(cpu, 2),
        "added_inter_delta": _pair(gaps_ms(runs, pace), gaps_ms(direct, pace)),
        "ttft": _pair(
            [r.ttft_ms() for r in runs if r.first_delta],
            [r.ttft_ms() for r in direct if r.first_delta],
        ),
        "get_latency": {
            "idle": stats_ms(idle_ms),
            "under_load": stats_ms(loaded_ms),
            "errors_under_load": loaded["errors"],
            "ratio_p50": round(stats_ms(loaded_ms)["p50_ms"] / stats_ms(idle_ms)["p50_ms"], 2),
            "ratio_p99": round(stats_ms(loaded_ms)["p99_ms"] / stats_ms(idle_ms)["p99_ms"], 2),
        },
        "rss_peak_mib": peak[0],
    }


# ---- 6: the local model -------------------------------------------------------------------


def _tokens_per_s(timed: Timed, tokens: int) -> dict[str, float]:
    decode = (len(timed.deltas) - 1) / (timed.deltas[-1] - timed.deltas[0])
    return {
        "tokens": tokens,
        "deltas": len(timed.deltas),
        "ttft_ms": round(timed.ttft_ms(), 1),
        "tokens_per_s": round(tokens / (timed.end - timed.start), 1),  # type: ignore[operator]
        "decode_deltas_per_s": round(decode, 1),
    }


async def _local_run(client: Any, thread: str, run: dict[str, Any]) -> dict[str, float]:
    timed = await stream_run(client, thread, run)
    if not timed.ok or not timed.deltas:
        raise RuntimeError(f"local run failed: {timed.error}")
    usage = timed.usage or {}
    return _tokens_per_s(timed, usage.get("output_tokens") or usage.get("completion_tokens") or 0)


async def _direct_local(backend: Any, max_tokens: int) -> dict[str, float]:
    from assistd.models.base import ModelRequest, TextDelta, Usage

    request = ModelRequest(model="local", messages=MESSAGES, temperature=0.0, max_tokens=max_tokens)
    timed, tokens = Timed(start=time.perf_counter()), 0
    async for chunk in backend.stream(request):
        now = time.perf_counter()
        if isinstance(chunk, TextDelta):
            timed.first_delta = timed.first_delta or now
            timed.deltas.append(now)
        elif isinstance(chunk, Usage):
            tokens = chunk.completion_tokens
    timed.end = time.perf_counter()
    return _tokens_per_s(timed, tokens)


async def local_model(server: RunningServer, plan: Plan) -> dict[str, Any]:
    from assistd.models.local import LocalBackend, bundled_model_path
    from assistd.settings import Settings

    s = Settings()
    backend = LocalBackend(bundled_model_path(), s.local_context, s.local_threads, s.local_parallel)
    proc = child_listening_on(int(server.base_url.rsplit(":", 1)[1]))
    rss_before = _rss_mib(proc)
    async with assistd_client(server.base_url, server.admin_key) as client:
        body = {"model": "smollm2", "instructions": INSTRUCTIONS}
        assistant = await post_json(client, "/api/v1/assistants", body)
        threads = await make_threads(client, plan.local_reps + 1)
        run = {
            "assistant_id": assistant["id"],
            "temperature": 0.0,
            "max_tokens": plan.local_max_tokens,
        }
        await stream_run(client, threads[-1], run)  # loads the model
        await _direct_local(backend, plan.local_max_tokens)  # loads it here
        stack, raw = [], []
        for i, thread in enumerate(threads[:-1]):  # interleaved, the order turning each time
            if i % 2:
                raw.append(await _direct_local(backend, plan.local_max_tokens))
            stack.append(await _local_run(client, thread, run))
            if not i % 2:
                raw.append(await _direct_local(backend, plan.local_max_tokens))
    return {
        "max_tokens": plan.local_max_tokens,
        "assistd": stack,
        "direct": raw,
        "ratio_tokens_per_s": round(median(stack, "tokens_per_s") / median(raw, "tokens_per_s"), 2),
        "ratio_best_tokens_per_s": round(
            best(stack, "tokens_per_s") / best(raw, "tokens_per_s"), 2
        ),
        "ratio_decode": round(
            median(stack, "decode_deltas_per_s") / median(raw, "decode_deltas_per_s"), 2
        ),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "server_rss_mib_before_model": rss_before,
        "server_rss_mib_with_model": _rss_mib(proc),
    }


# ---- one backend ----------------------------------------------------------------------------


@contextmanager
def routed_server(
    backend: str, workdir: Path, model_url: str, model_pid: int, workers: int = RUN_WORKERS
) -> Iterator[Target]:
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(workdir / "pg")) if backend == "postgres" else ""
        server = stack.enter_context(
            run_server(
                workdir / f"data-{backend}",
                url,
                ASSISTD_OPENAI_BASE_URL=model_url,
                ASSISTD_RUN_WORKERS=str(workers),
            )
        )
        proc = child_listening_on(int(server.base_url.rsplit(":", 1)[1]))
        yield Target(server, proc, model_url, model_pid)


@contextmanager
def distributed_server(
    workdir: Path, model_url: str, model_pid: int, workers: int = RUN_WORKERS
) -> Iterator[Target]:
    """PostgreSQL + Redis (keys under a fresh prefix, deleted afterwards), one API
    replica and one worker."""
    prefix = f"assistd-bench:{os.urandom(4).hex()}:"
    with ExitStack() as stack:
        url = stack.enter_context(fresh_database(workdir / "pg"))
        stack.callback(forget_keys, REDIS_URL, prefix)
        found = stack.enter_context(
            cluster(workdir / "distributed", url, REDIS_URL, model_url, replicas=1, workers=1,
                    worker_concurrency=workers, ASSISTD_REDIS_PREFIX=prefix,
                    ASSISTD_RUN_WORKERS=str(workers))
        )  # fmt: skip
        api, worker = found.processes[0], found.workers[0]
        assert api.popen is not None and worker.popen is not None
        server = RunningServer(
            found.replicas[0], found.admin_key, workdir / "distributed", url, {}, api.popen.pid
        )
        procs = [psutil.Process(api.popen.pid), psutil.Process(worker.popen.pid)]
        yield Target(server, procs[0], model_url, model_pid, workers=procs[1:])


def distributed_unavailable() -> str | None:
    """Why the distributed shape cannot be measured here, or None."""
    return missing_commands() or redis_problem(REDIS_URL)


async def bench_backend(backend: str, t: Target, plan: Plan, full: bool) -> dict[str, Any]:
    out: dict[str, Any] = {"rss_idle_mib": _rss_mib(t.proc)}  # no run yet, no local model
    async with assistd_client(t.server.base_url, t.key) as client:
        body = {"model": "instant", "instructions": INSTRUCTIONS}
        t.assistant_id = (await post_json(client, "/api/v1/assistants", body))["id"]
    steps = [("overhead", overhead(t, plan)), ("relay", relay(t, plan))]
    steps += [("direct_throughput", direct_throughput(t, plan))]
    steps += [("throughput_polled", throughput(t, plan, streamed=False))]
    steps += [("throughput_streamed", throughput(t, plan, streamed=True))]
    if full:
        steps += [("streams", many_streams(t, plan))]
    for name, work in steps:
        started = time.perf_counter()
        out[name] = await work
        print(f"  {backend:8} {name:20} {time.perf_counter() - started:5.1f} s", flush=True)
    await asyncio.sleep(2)
    out["rss_after_mib"] = _rss_mib(t.proc)
    if t.workers:
        out["worker_rss_after_mib"] = _rss_mib(t.workers[0])
    return out


def run_distributed(plan: Plan, results: dict[str, Any]) -> None:
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistd-bench-")))
        model_url, model_pid = stack.enter_context(fake_model_process())
        target = stack.enter_context(distributed_server(tmp, model_url, model_pid))
        found = asyncio.run(bench_backend("distributed", target, plan, full=True))
        results["backends"]["distributed"] = found


def run_stream_load(args: argparse.Namespace, results: dict[str, Any]) -> str:
    """Only the stream-load figure (--streams), on the first backend or the distributed
    shape; every stream runs at once, so the server runs as many."""
    load = LoadPlan(args.streams, args.delta_rate, args.stream_words, args.ramp_s, args.settle_s)
    backend = "distributed" if args.shape == "distributed" else args.backends.split(",")[0]
    workers = max(RUN_WORKERS, load.streams)
    results["server_env"] = {"ASSISTD_RUN_WORKERS": workers}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistd-bench-")))
        model_url, model_pid = stack.enter_context(fake_model_process())
        if backend == "distributed":
            server = distributed_server(tmp, model_url, model_pid, workers)
        else:
            server = routed_server(backend, tmp, model_url, model_pid, workers)
        target = stack.enter_context(server)
        found = asyncio.run(stream_load(target, load))
    results["backends"][backend] = {"stream_load": found}
    return f"{backend}: {stream_load_table(found)}"


def run_all(args: argparse.Namespace, plan: Plan, results: dict[str, Any]) -> None:
    if args.shape == "distributed":
        run_distributed(plan, results)
        return
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    with tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp, fake_model_process() as fm:
        for i, backend in enumerate(backends):
            with routed_server(backend, Path(tmp), *fm) as target:
                fewer = {k: min(v, getattr(plan, k)) for k, v in SECOND_BACKEND.items()}
                scaled = plan if i == 0 else replace(plan, **fewer)
                found = asyncio.run(bench_backend(backend, target, scaled, full=i == 0))
                results["backends"][backend] = found
        if not args.no_local:
            with run_server(Path(tmp) / "data-local", "") as server:
                results["local_model"] = asyncio.run(local_model(server, plan))
                print("  local    model                done", flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer runs, shorter streams")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--no-local", action="store_true", help="skip the local model")
    parser.add_argument(
        "--shape", choices=["embedded", "distributed"], default="embedded",
        help="embedded: one `assistd serve` per backend; distributed: PostgreSQL + Redis, "
        "one `assistd serve --no-worker` and one `assistd worker`",
    )  # fmt: skip
    load = parser.add_argument_group("stream load (only this figure, when --streams is given)")
    load.add_argument("--streams", type=int, default=0, help="concurrent streamed runs")
    load.add_argument("--delta-rate", type=float, default=20.0, help="model deltas/s a stream")
    load.add_argument("--stream-words", type=int, default=300, help="deltas a stream")
    load.add_argument("--ramp-s", type=float, default=5.0, help="the starts spread over this")
    load.add_argument("--settle-s", type=float, default=10.0, help="wait before RSS after")
    args = parser.parse_args(argv)
    if args.shape == "distributed" and (why := distributed_unavailable()):
        print(f"runs benchmark, distributed shape: skipped, {why}", flush=True)
        return 0
    plan = QUICK if args.quick else Plan()
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "benchmark": "runs",
        "started_at": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "quick": args.quick,
        "plan": asdict(plan),
        "client": "httpx.AsyncClient (load, streams: SSE read raw), openai.AsyncOpenAI (direct "
        "model calls), bench.probe (GETs over http.client, own process); fake model "
        "in its own process (bench.fake_server)",
        "machine": machine(),
        "shape": args.shape,
        "server_env": {"ASSISTD_RUN_WORKERS": RUN_WORKERS},
        "backends": {},
    }
    if args.streams:
        print(f"assistd runs benchmark, stream load ({args.shape} shape)", flush=True)
        del results["plan"]
        text = run_stream_load(args, results)
    else:
        print(f"assistd runs benchmark ({args.shape} shape): {plan}", flush=True)
        run_all(args, plan, results)
        text = table(results)
    results["machine"]["load_avg_after"] = machine()["load_avg"]
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    save_results("runs", started, results, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
