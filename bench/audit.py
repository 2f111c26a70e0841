"""The audit log's cost: mutating calls on a server with the audit log on (the default)
beside the same calls on a server with it off (`audit_log = false`), interleaved one to
one in the same run, on SQLite and on PostgreSQL.

    python -m bench.audit [--quick] [--backends sqlite,postgres] [--iterations N]

Figures: p50/p90/p99 latency and server CPU per call of each, and their ratios
(on / off). Writes bench/results/audit-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import orjson

from bench.harness import (
    CLIENTS,
    Call,
    child_listening_on,
    json_call,
    machine,
    measure_pair,
    postgres_processes,
    save_results,
    summary,
)
from tests.support.postgres import fresh_database
from tests.support.server import RunningServer, run_server

ASSISTANT = orjson.dumps({"model": "qwen-max", "name": "Painter", "instructions": "Draw."})
MESSAGE = orjson.dumps({"role": "user", "content": "Please draw a ragdoll cat."})
RENAME = orjson.dumps({"name": "Renamed"})


@contextmanager
def _server(backend: str, workdir: Path, audit: bool) -> Iterator[RunningServer]:
    with ExitStack() as stack:
        url = ""
        if backend == "postgres":
            url = stack.enter_context(fresh_database(workdir / "pg"))
        env = {"ASSISTD_AUDIT_LOG": "true" if audit else "false"}
        yield stack.enter_context(run_server(workdir / "data", url, **env))


class Side:
    """One server, a key of a fresh workspace of it, and an assistant and a thread."""

    def __init__(self, server: RunningServer, client_kind: str, backend: str) -> None:
        make = CLIENTS[client_kind]
        admin = make(server.base_url, {"Authorization": f"Bearer {server.admin_key}"})
        ws = json_call(admin, "POST", "/admin/v1/workspaces", {"name": f"bench-{time.time_ns()}"})
        key = json_call(admin, "POST", "/admin/v1/keys", {"workspace": ws["id"]})["key"]
        admin.close()
        self.client = make(server.base_url, {"Authorization": f"Bearer {key}"})
        self.assistant = json_call(self.client, "POST", "/v1/assistants", {"model": "m"})["id"]
        self.thread = json_call(self.client, "POST", "/api/v1/threads", {})["id"]
        self.procs = [child_listening_on(int(server.base_url.rsplit(":", 1)[1]))]
        self.extra = postgres_processes() if backend == "postgres" else []

    def call(self, method: str, path: str, body: bytes | None) -> Call:
        path = path.format(assistant=self.assistant, thread=self.thread)
        return Call(self.client, method, path, body, self.procs, self.extra)


OPS = [
    ("assistants.create", "POST", "/api/v1/assistants", ASSISTANT),
    ("messages.create", "POST", "/api/v1/threads/{thread}/messages", MESSAGE),
    ("assistants.update", "POST", "/v1/assistants/{assistant}", RENAME),
]


def bench_backend(backend: str, on: Side, off: Side, n: int, warmup: int) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for op, method, path, body in OPS:
        t, b = measure_pair(on.call(method, path, body), off.call(method, path, body), n, warmup)
        row = {"audit_on": summary(t), "audit_off": summary(b)}
        on_s, off_s = row["audit_on"], row["audit_off"]
        row["ratio"] = {
            k: round(on_s[k] / off_s[k], 3)
            for k in ("p50_ms", "p90_ms", "p99_ms", "server_cpu_ms_per_req")
            if off_s.get(k)
        }
        rows[op] = row
        print(f"  {backend:8} {op:18} p50 {on_s['p50_ms']:.3f} ms on, "
              f"{off_s['p50_ms']:.3f} ms off: x{row['ratio']['p50_ms']}", flush=True)  # fmt: skip
    return rows


def table(results: dict[str, Any]) -> str:
    lines = ["backend   operation          p50 on/off (ms)      x p50   x p99   x cpu"]
    for backend, rows in results["backends"].items():
        for op, row in rows.items():
            on, off, r = row["audit_on"], row["audit_off"], row["ratio"]
            lines.append(
                f"{backend:9} {op:18} {on['p50_ms']:7.3f} / {off['p50_ms']:7.3f}   "
                f"{r['p50_ms']:6.3f}  {r['p99_ms']:6.3f}  {r.get('server_cpu_ms_per_req', 0):6.3f}"
            )
    lines.append("x = audit log on / off, same calls interleaved one to one in the same run")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer calls per figure")
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument("--client", choices=sorted(CLIENTS), default="http.client")
    parser.add_argument("--iterations", type=int, default=None, help="timed calls per op")
    args = parser.parse_args(argv)
    n = args.iterations or (300 if args.quick else 2000)
    started, t0 = dt.datetime.now(dt.UTC), time.monotonic()
    results: dict[str, Any] = {"benchmark": "audit", "iterations": n, "machine": machine(),
                               "client": args.client, "backends": {}}  # fmt: skip
    for backend in args.backends.split(","):
        with (
            tempfile.TemporaryDirectory() as tmp,
            _server(backend, Path(tmp) / "on", True) as with_log,
            _server(backend, Path(tmp) / "off", False) as without,
        ):
            on, off = Side(with_log, args.client, backend), Side(without, args.client, backend)
            results["backends"][backend] = bench_backend(backend, on, off, n, max(20, n // 10))
            on.client.close()
            off.client.close()
    results["wall_seconds"] = round(time.monotonic() - t0, 1)
    save_results("audit", started, results, table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
