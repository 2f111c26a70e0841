"""Paired A/B of one streamed run's latency in the embedded shape: a baseline tree's server
(`--baseline PATH`, a checkout of the commit to compare with) and this tree's, side by
side on SQLite against the same fake model, one run at a time, A then B, then B then A,
and so on, with the same model call made directly after each pair.

Each server's figures (first delta and completed p50, server CPU a run) are taken over the
same minutes, so the machine's drift (these machines are shared) falls on both alike; the
paired median of B - A, run by run, is steadier still than the difference of the p50s.

    python -m bench.first_delta_ab --baseline ../assistd-old [--runs 300]

Writes bench/results/first_delta_ab-<timestamp>.json and prints the table.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import psutil  # type: ignore[import-untyped]

from bench.harness import ROOT, child_listening_on, machine, save_results
from bench.runload import (
    INSTRUCTIONS,
    assistd_client,
    direct_raw,
    fake_model_process,
    make_threads,
    model_http,
    post_json,
    stream_run,
)
from tests.support.server import RunningServer, run_server

WARMUP = 20
RUN_WORKERS = "256"  # as bench/runs.py's servers


async def _runs(servers: list[RunningServer], model_url: str, n: int) -> dict[str, Any]:
    """First delta and completion of `n` streamed runs on each server, and of the direct
    model call, in ms; each server's runs in the order they were made."""
    first: list[list[float]] = [[], []]
    done: list[list[float]] = [[], []]
    direct: list[float] = []
    async with (
        assistd_client(servers[0].base_url, servers[0].admin_key) as a,
        assistd_client(servers[1].base_url, servers[1].admin_key) as b,
        model_http(model_url) as http,
    ):
        clients = [a, b]
        runs = []
        for client in clients:
            body = {"model": "instant", "instructions": INSTRUCTIONS}
            assistant = (await post_json(client, "/api/v1/assistants", body))["id"]
            runs.append({"assistant_id": assistant, "model": "instant"})
        threads = [await make_threads(client, n + WARMUP) for client in clients]
        for i in range(n + WARMUP):
            for k in (0, 1) if i % 2 == 0 else (1, 0):
                timed = await stream_run(clients[k], threads[k][i], runs[k])
                if not timed.ok:
                    raise RuntimeError(f"a run failed: {timed.error}")
                if i >= WARMUP:
                    first[k].append(timed.ttft_ms())
                    done[k].append(timed.total_ms())
            model = await direct_raw(http, "instant")
            if i >= WARMUP:
                direct.append(model.ttft_ms())
    return {"first": first, "done": done, "direct": direct}


def _running(tree: Path) -> dict[str, str]:
    """The environment in which `python -m assistd` runs the assistd of `tree`: first on
    the path, and the working directory (this tree's) not put ahead of it."""
    env = {"PYTHONPATH": str(tree), "PYTHONSAFEPATH": "1"}
    where = subprocess.run(
        [sys.executable, "-c", "import assistd; print(assistd.__file__)"],
        env={**os.environ, **env}, capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip
    if not Path(where).is_relative_to(tree):
        raise SystemExit(f"the server for {tree} would run {where}")
    return env


def _cpu_s(proc: psutil.Process) -> float:
    times = proc.cpu_times()
    return float(times.user + times.system)


def _figures(found: dict[str, Any], k: int, cpu_ms: float) -> dict[str, float]:
    med, direct = statistics.median, statistics.median(found["direct"])
    return {
        "first_delta_p50_ms": round(med(found["first"][k]), 3),
        "first_delta_added_p50_ms": round(med(found["first"][k]) - direct, 3),
        "completed_p50_ms": round(med(found["done"][k]), 3),
        "cpu_ms_per_run": round(cpu_ms, 3),
    }


def measure(baseline: Path, n: int) -> dict[str, Any]:
    trees = [baseline.resolve(), ROOT]
    with tempfile.TemporaryDirectory() as tmp, fake_model_process() as fm, ExitStack() as stack:
        model_url = fm[0]
        env = {"ASSISTD_OPENAI_BASE_URL": model_url, "ASSISTD_RUN_WORKERS": RUN_WORKERS}
        servers = [
            stack.enter_context(run_server(Path(tmp) / f"data-{k}", "", **_running(t), **env))
            for k, t in enumerate(trees)
        ]
        procs = [child_listening_on(int(s.base_url.rsplit(":", 1)[1])) for s in servers]
        before = [_cpu_s(p) for p in procs]
        found = asyncio.run(_runs(servers, model_url, n))
        cpu = [(_cpu_s(p) - b) * 1000 / (n + WARMUP) for p, b in zip(procs, before, strict=True)]
    paired = [b - a for a, b in zip(found["first"][0], found["first"][1], strict=True)]
    return {
        "runs": n,
        "direct_first_delta_p50_ms": round(statistics.median(found["direct"]), 3),
        "baseline": {"tree": str(trees[0]), **_figures(found, 0, cpu[0])},
        "this": {"tree": str(trees[1]), **_figures(found, 1, cpu[1])},
        "first_delta_paired_median_ms": round(statistics.median(paired), 3),
    }


def table(r: dict[str, Any]) -> str:
    rows = [
        f"{'tree':10} {'first delta p50':>16} {'added':>8} {'completed p50':>14} {'CPU/run':>8}"
    ]
    for name in ("baseline", "this"):
        f = r[name]
        rows.append(
            f"{name:10} {f['first_delta_p50_ms']:13.3f} ms {f['first_delta_added_p50_ms']:+8.3f}"
            f" {f['completed_p50_ms']:11.3f} ms {f['cpu_ms_per_run']:5.2f} ms"
        )
    rows.append(
        f"direct model call: first delta p50 {r['direct_first_delta_p50_ms']:.3f} ms; "
        f"this - baseline, paired run by run: {r['first_delta_paired_median_ms']:+.3f} ms "
        f"(median of {r['runs']})"
    )
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True, help="the tree to compare with")
    parser.add_argument("--runs", type=int, default=300, help="streamed runs on each server")
    args = parser.parse_args(argv)
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {"machine": machine(), **measure(args.baseline, args.runs)}
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    save_results("first_delta_ab", started, results, table(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
