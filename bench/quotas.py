"""What the quota check costs a request: `GET /api/v1/assistants` with a key whose limit is
counted on every request (in memory, the embedded shape), beside the same call with a key
of the same workspace that has no limit (the baseline: the check returns at once),
interleaved one to one on one SQLite server. Both figures run on the same server process,
so its CPU is not told apart: the ratios are of latency.

    python -m bench.quotas [--iterations N]
"""

from __future__ import annotations

import argparse
import datetime
import tempfile
import time
from pathlib import Path

import httpx

from bench.harness import (
    Call,
    RawClient,
    child_listening_on,
    machine,
    measure_pair,
    save_results,
    summary,
)
from tests.support.server import run_server

PATH = "/api/v1/assistants?limit=1"


def _keys(base_url: str, admin_key: str) -> tuple[str, str]:
    """A key counted on every request (a limit no bench reaches) and one without limits."""
    headers = {"Authorization": f"Bearer {admin_key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=30) as admin:
        ws = admin.post("/admin/v1/workspaces", json={"name": "bench-quotas"}).json()["id"]
        counted = admin.post("/admin/v1/keys", json={"workspace": ws}).json()
        free = admin.post("/admin/v1/keys", json={"workspace": ws}).json()
        limits = {"requests_per_minute": 10**9, "runs_per_minute": 10**9}
        answer = admin.post(f"/admin/v1/keys/{counted['id']}/limits", json=limits)
        answer.raise_for_status()
        return counted["key"], free["key"]


def main(n: int) -> dict[str, object]:
    with tempfile.TemporaryDirectory() as tmp, run_server(Path(tmp) / "data") as server:
        counted, free = _keys(server.base_url, server.admin_key)
        procs = [child_listening_on(int(server.base_url.rsplit(":", 1)[1]))]
        calls = [
            Call(RawClient(server.base_url, {"Authorization": f"Bearer {key}"}), "GET", PATH,
                 None, procs)
            for key in (counted, free)
        ]  # fmt: skip
        target, baseline = measure_pair(calls[0], calls[1], n, warmup=max(50, n // 10))
        with_limit, without = summary(target), summary(baseline)
    return {
        "limit_counted": with_limit,
        "no_limit": without,
        "p50_ratio": round(with_limit["p50_ms"] / without["p50_ms"], 3),
        "p90_ratio": round(with_limit["p90_ms"] / without["p90_ms"], 3),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--iterations", type=int, default=2000)
    options = parser.parse_args()
    started = datetime.datetime.now(datetime.UTC)
    wall = time.monotonic()
    figures = main(options.iterations)
    lines = [f"{'figure':<14} {'p50 ms':>9} {'p90 ms':>9}"]
    for name in ("no_limit", "limit_counted"):
        s = figures[name]
        assert isinstance(s, dict)
        lines.append(f"{name:<14} {s['p50_ms']:>9} {s['p90_ms']:>9}")
    lines.append(f"p50 ratio {figures['p50_ratio']}, p90 ratio {figures['p90_ratio']}")
    results = {"machine": machine(), "figures": figures,
               "wall_seconds": round(time.monotonic() - wall, 1)}  # fmt: skip
    save_results("quotas", started, results, "\n".join(lines))
