"""Paired A/B of the distributed shape: two clusters (PostgreSQL + Redis, one
`assistd serve --no-worker` and one `assistd worker` each), one running a baseline tree
(`--baseline PATH`, a checkout of the commit to compare with) and one this tree, the
same fake model, measured in alternating rounds (A B, then B A, ...):

- relay: one streamed run of `--words` words, deltas/s and server CPU per delta;
- c=32 streamed: `--runs` streamed runs 32 at a time, runs/s and server CPU per run.

    python -m bench.dist_ab --baseline ../assistd-old [--rounds 3] [--words 2000] [--runs 300]

Writes bench/results/dist_ab-<timestamp>.json and prints new/old ratios (median of rounds).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import os
import statistics
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import tests.durability.cluster as cluster_mod
from bench.harness import machine, save_results
from bench.runload import INSTRUCTIONS, assistd_client, post_json
from bench.runs import QUICK, Target, distributed_server, fake_model_process, relay, throughput


@contextmanager
def _tree(root: Path) -> Iterator[None]:
    """Processes started inside run the assistd of `root` (they run with it as cwd)."""
    saved = cluster_mod.ROOT
    cluster_mod.ROOT = root
    try:
        yield
    finally:
        cluster_mod.ROOT = saved


async def _assistant(t: Target) -> None:
    async with assistd_client(t.server.base_url, t.key) as client:
        body = {"model": "instant", "instructions": INSTRUCTIONS}
        t.assistant_id = (await post_json(client, "/api/v1/assistants", body))["id"]


async def _round(t: Target, words: int, runs: int) -> dict[str, float]:
    plan = replace(QUICK, relay_words=words, relay_reps=1, throughput_runs=runs)
    r = await relay(t, plan)
    s = await throughput(t, plan, streamed=True)
    return {
        "deltas_per_s": r["assistd_deltas_per_s"],
        "cpu_us_per_delta": r["server_cpu_us_per_delta"],
        "runs_per_s": s["runs_per_s"],
        "cpu_ms_per_run": s["server_cpu_ms_per_run"],
        "api_cpu_ms_per_run": s["api_cpu_ms_per_run"],
        "worker_cpu_ms_per_run": s["worker_cpu_ms_per_run"],
        "errors": s["errors"],
    }


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--baseline", type=Path, required=True, help="checkout of the old tree")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--words", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {"machine_before": machine(), "rounds": []}
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="assistd-ab-")))
        model_url, model_pid = stack.enter_context(fake_model_process())
        targets: dict[str, Target] = {}
        for name, root in (("old", args.baseline.resolve()), ("new", cluster_mod.ROOT)):
            with _tree(root):
                targets[name] = stack.enter_context(
                    distributed_server(tmp / name, model_url, model_pid)
                )
            asyncio.run(_assistant(targets[name]))
        for i in range(args.rounds):
            order = ("old", "new") if i % 2 == 0 else ("new", "old")
            found = {n: asyncio.run(_round(targets[n], args.words, args.runs)) for n in order}
            print(f"round {i + 1}: {found} load {os.getloadavg()}", flush=True)
            results["rounds"].append({**found, "load_avg": list(os.getloadavg())})
    ratios = {
        k: round(statistics.median(r["new"][k] / r["old"][k] for r in results["rounds"]), 2)
        for k in results["rounds"][0]["old"]
        if k != "errors" and results["rounds"][0]["old"][k]
    }
    results["ratios_new_over_old"] = ratios
    results["machine_after"] = machine()
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    save_results("dist_ab", started, results, f"new/old (median of rounds): {ratios}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
