"""Object-call latency: Assistants.create, Messages.create and Messages.list(limit=20) on
threads of 10,000 and 100,000 messages, on SQLite and on PostgreSQL, each beside a bare
FastAPI baseline measured the same way in the same run.

    python -m bench.objects [--quick] [--backends sqlite,postgres] [--client http.client]

Writes bench/results/objects-<timestamp>.json and prints a table. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import Message
from assistd.core.validation import text_content
from assistd.settings import Settings
from assistd.store.factory import open_store
from bench.harness import (
    CLIENTS,
    ROOT,
    Baseline,
    Call,
    child_listening_on,
    json_call,
    machine,
    measure_pair,
    postgres_processes,
    run_baseline,
    save_results,
    summary,
)
from tests.support.postgres import fresh_database
from tests.support.server import RunningServer, run_server

RESULTS = ROOT / "bench" / "results"
SEED_BATCH = 5000
ASSISTANT_BODY = orjson.dumps(
    {"model": "qwen-max", "name": "Painter", "instructions": "You draw pictures on request."}
)
MESSAGE_TEXT = "Please help me draw a picture of a ragdoll cat, sitting on a windowsill."
MESSAGE_BODY = orjson.dumps({"role": "user", "content": MESSAGE_TEXT})
# The goals: (operation prefix, backend or None for every backend, p50 limit in ms)
GOALS = [
    ("messages.list@100k", None, 5.0),
    ("assistants.create", "sqlite", 5.0),
    ("messages.create", "sqlite", 5.0),
]


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    iterations: int
    warmup: int
    client: str


# ---- seeding ----------------------------------------------------------------------------


def _messages(thread_id: str, count: int, start_ms: int) -> Iterator[list[Message]]:
    content = text_content(MESSAGE_TEXT)
    for first in range(0, count, SEED_BATCH):
        batch = []
        for i in range(first, min(first + SEED_BATCH, count)):
            created = start_ms + i
            role = "user" if i % 2 == 0 else "assistant"
            message = Message(
                id=new_id("msg"), thread_id=thread_id, created_at=created, role=role,
                content=content, status="completed", completed_at=created,
            )  # fmt: skip
            batch.append(message)
        yield batch


async def _seed(settings: Settings, ws: str, threads: dict[str, int], analyze: bool) -> None:
    """Bulk-inserts messages straight through assistd's store, in batches."""
    store = open_store(settings)
    try:
        for thread_id, count in threads.items():
            for batch in _messages(thread_id, count, now_ms() - count):
                async with store.workspace(ws, write=True) as unit:
                    await unit.messages.insert_many(batch)
        if analyze:  # what autovacuum would do soon after a bulk load
            async with store.engine.begin() as conn:
                await conn.exec_driver_sql("ANALYZE messages")
    finally:
        await store.close()


def seed(server: RunningServer, ws: str, threads: dict[str, int]) -> float:
    started = time.perf_counter()
    settings = Settings(data_dir=server.data_dir, database_url=server.database_url)
    asyncio.run(_seed(settings, ws, threads, analyze=bool(server.database_url)))
    return time.perf_counter() - started


# ---- one backend ------------------------------------------------------------------------


def _workspace_key(server: RunningServer, plan: Plan) -> tuple[str, str]:
    """A fresh workspace and a plain (non-admin) key of it, through the admin API."""
    admin = CLIENTS[plan.client](server.base_url, {"Authorization": f"Bearer {server.admin_key}"})
    try:
        ws = json_call(
            admin, "POST", "/admin/v1/workspaces", {"name": f"bench-{new_id('b')[2:10]}"}
        )
        key = json_call(admin, "POST", "/admin/v1/keys", {"workspace": ws["id"]})
    finally:
        admin.close()
    return str(ws["id"]), str(key["key"])


def _print_progress(backend: str, op: str, row: dict[str, Any]) -> None:
    t, b = row["assistd"], row["baseline"]
    print(
        f"  {backend:8} {op:22} p50 {t['p50_ms']:7.3f} ms (baseline {b['p50_ms']:.3f})"
        f"  p99 {t['p99_ms']:7.3f} ms (baseline {b['p99_ms']:.3f})",
        flush=True,
    )


def bench_backend(
    backend: str, server: RunningServer, baseline: Baseline, plan: Plan
) -> dict[str, Any]:
    ws, key = _workspace_key(server, plan)
    make = CLIENTS[plan.client]
    target = make(server.base_url, {"Authorization": f"Bearer {key}"})
    base = make(baseline.base_url, {})
    server_procs = [child_listening_on(int(server.base_url.rsplit(":", 1)[1]))]
    base_procs = [child_listening_on(int(baseline.base_url.rsplit(":", 1)[1]))]
    db_procs = postgres_processes() if server.database_url else []
    rows: dict[str, Any] = {}

    def run(op: str, method: str, path: str, body: bytes | None) -> None:
        t = Call(target, method, path, body, server_procs, db_procs)
        b = Call(base, method, "/const", body, base_procs)
        t_samples, b_samples = measure_pair(t, b, plan.iterations, plan.warmup)
        rows[op] = {"assistd": summary(t_samples), "baseline": summary(b_samples)}
        _print_progress(backend, op, rows[op])

    try:
        run("assistants.create", "POST", "/api/v1/assistants", ASSISTANT_BODY)
        threads = {json_call(target, "POST", "/api/v1/threads", {})["id"]: n for n in plan.sizes}
        seconds = seed(server, ws, threads)
        print(f"  {backend:8} seeded {sum(plan.sizes):,} messages in {seconds:.1f} s", flush=True)
        for thread_id, n in threads.items():
            path = f"/api/v1/threads/{thread_id}/messages?limit=20"
            run(f"messages.list@{n // 1000}k", "GET", path, None)
        biggest = max(threads, key=lambda t: threads[t])
        run(
            f"messages.create@{threads[biggest] // 1000}k",
            "POST",
            f"/api/v1/threads/{biggest}/messages",
            MESSAGE_BODY,
        )
    finally:
        target.close()
        base.close()
    return {"seed_seconds": round(seconds, 2), "operations": rows}


# ---- the run ----------------------------------------------------------------------------


@contextmanager
def backend_server(backend: str, workdir: Path) -> Iterator[RunningServer]:
    with ExitStack() as stack:
        url = ""
        if backend == "postgres":
            url = stack.enter_context(fresh_database(workdir / "pg"))
        yield stack.enter_context(run_server(workdir / f"data-{backend}", url))


def _goal(op: str, backend: str, row: dict[str, Any]) -> str:
    for prefix, where, limit in GOALS:
        if op.startswith(prefix) and where in (None, backend):
            met = row["assistd"]["p50_ms"] <= limit
            return f"p50<={limit:g} {'MET' if met else 'MISSED'}"
    return ""


def add_ratios(results: dict[str, Any]) -> None:
    for backend, found in results["backends"].items():
        for op, row in found["operations"].items():
            t, b = row["assistd"], row["baseline"]
            row["vs_baseline"] = {
                "p50_ratio": round(t["p50_ms"] / b["p50_ms"], 2),
                "p50_diff_ms": round(t["p50_ms"] - b["p50_ms"], 3),
                "p99_ratio": round(t["p99_ms"] / b["p99_ms"], 2),
                "p99_diff_ms": round(t["p99_ms"] - b["p99_ms"], 3),
                "server_cpu_diff_ms": round(
                    t["server_cpu_ms_per_req"] - b["server_cpu_ms_per_req"], 3
                ),
            }
            row["goal"] = _goal(op, backend, row)


def _pg_cpu(summary: dict[str, Any]) -> str:
    value = summary.get("postgres_cpu_ms_per_req")
    return "" if value is None else f"{value:.3f}"


def table(results: dict[str, Any]) -> str:
    head = (
        f"{'backend':8} {'operation':22} {'p50':>7} {'base':>6} {'x':>5} {'+ms':>6}"
        f"  {'p99':>7} {'base':>6} {'x':>5} {'+ms':>6}  {'cpu/req':>7} {'base':>6} {'pg cpu':>6}"
        "  goal"
    )
    lines = [head, "-" * len(head)]
    for backend, found in results["backends"].items():
        for op, row in found["operations"].items():
            t, b, r = row["assistd"], row["baseline"], row["vs_baseline"]
            lines.append(
                f"{backend:8} {op:22} {t['p50_ms']:7.3f} {b['p50_ms']:6.3f} "
                f"{r['p50_ratio']:5.1f} {r['p50_diff_ms']:6.3f}  {t['p99_ms']:7.3f} "
                f"{b['p99_ms']:6.3f} {r['p99_ratio']:5.1f} {r['p99_diff_ms']:6.3f}  "
                f"{t['server_cpu_ms_per_req']:7.3f} {b['server_cpu_ms_per_req']:6.3f} "
                f"{_pg_cpu(t):>6}  {row['goal']}"
            )
    lines.append(
        "all times in ms; x = ratio to the baseline; +ms = difference to the baseline; "
        "cpu/req = CPU of the server process per request; pg cpu = CPU of every\n"
        "PostgreSQL process on the machine per request (anything else using that server counts)"
    )
    return "\n".join(lines)


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "assistd"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="10k messages only, fewer calls")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="http.client")
    parser.add_argument("--iterations", type=int, default=None, help="timed calls per op")
    args = parser.parse_args(argv)
    plan = Plan(
        sizes=(10_000,) if args.quick else (10_000, 100_000),
        iterations=args.iterations or (300 if args.quick else 2000),
        warmup=30 if args.quick else 100,
        client=args.client,
    )
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "benchmark": "objects",
        "started_at": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "quick": args.quick,
        "plan": plan.__dict__,
        "client": CLIENTS[plan.client].__dict__.get("kind", plan.client)
        + ", one connection per server, one request at a time, assistd and baseline "
        "requests interleaved one to one",
        "machine": machine(),
        "backends": {},
    }
    print(f"assistd objects benchmark: {plan}", flush=True)
    with (
        tempfile.TemporaryDirectory(prefix="assistd-bench-") as tmp,
        run_baseline(Path(tmp)) as baseline,
    ):
        for backend in backends:
            with backend_server(backend, Path(tmp)) as server:
                results["backends"][backend] = bench_backend(backend, server, baseline, plan)
    results["machine"]["load_avg_after"] = machine()["load_avg"]
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    add_ratios(results)
    save_results("objects", started, results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
