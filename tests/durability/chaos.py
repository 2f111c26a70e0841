"""The durability test: runs on PostgreSQL + Redis with two API replicas and two workers,
while a worker is killed with SIGKILL at random moments and started again each time.

    python -m tests.durability.chaos [--threads 50] [--turns 2] [--seed 1] [--shape ...]

Prints the counts (runs completed, messages and steps lost or duplicated, coherent SSE
legs) and exits non-zero if any is off. `--shape embedded` runs the same scenario on one
`assistd serve` with no kills, as a control of the harness itself. scripts/chaos.sh runs
it; tests/durability/test_durability.py runs it under pytest.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.durability.cluster import (
    WORKER_READY,
    Cluster,
    Process,
    cluster,
    forget_keys,
    missing_commands,
    redis_problem,
)
from tests.durability.scenario import MODEL, Api, Outcome, Plan, plans, respond, run_one, setup
from tests.durability.verify import Counts, count
from tests.support.fake_model import FakeModel
from tests.support.postgres import fresh_database
from tests.support.redis import REDIS_URL
from tests.support.server import run_server

LEASE_S = 6.0  # a dead worker's runs are taken over this long after its last heartbeat


@dataclass
class Options:
    threads: int = 50
    turns: int = 2
    seed: int = 1
    shape: str = "distributed"
    concurrency: int = 8  # threads driven at once: the runs last long enough for many kills
    kill_gap_s: tuple[float, float] = (0.5, 2.0)  # from a restart's ready to the next kill
    down_s: tuple[float, float] = (0.1, 1.0)  # how long a killed worker stays down
    run_timeout_s: float = 90.0


@dataclass
class Report:
    counts: Counts
    kills: int = 0
    kills_mid_run: int = 0
    seconds: float = 0.0
    slowest_run_s: float = 0.0
    model_requests: int = 0
    model_turns_needed: int = 0
    logs: str = ""
    notes: list[str] = field(default_factory=list)

    def text(self) -> str:
        lines = [
            f"durability: {self.counts.runs} runs, {self.kills} worker kills (SIGKILL; "
            f"{self.kills_mid_run} while runs were in flight), "
            f"{self.seconds:.1f} s, slowest run {self.slowest_run_s:.1f} s",
            *self.counts.lines(),
            f"model requests        {self.model_requests} for {self.model_turns_needed} turns"
            f" ({self.model_requests - self.model_turns_needed} started again)",
            *self.notes,
            "RESULT: " + ("PASS" if self.counts.ok else "FAIL"),
        ]
        problems = self.counts.problems()
        if problems:
            lines += ["first problems:", *(f"  {p}" for p in problems)]
        return "\n".join(lines)


def unavailable(shape: str) -> str | None:
    """Why the scenario cannot run here (a missing service or command), or None."""
    if shape == "distributed":
        if why := missing_commands():
            return why
        if why := redis_problem(REDIS_URL):
            return why
    return None


@contextmanager
def _targets(opts: Options, workdir: Path, model_url: str) -> Iterator[Cluster]:
    with ExitStack() as stack:
        database_url = stack.enter_context(fresh_database(workdir / "pg"))
        if opts.shape == "embedded":
            server = stack.enter_context(
                run_server(workdir / "embedded", database_url, ASSISTD_OPENAI_BASE_URL=model_url)
            )
            yield Cluster([server.base_url], [])
            return
        prefix = f"assistd-chaos:{secrets.token_hex(4)}:"  # this run's keys only
        stack.callback(forget_keys, REDIS_URL, prefix)
        yield stack.enter_context(
            cluster(workdir, database_url, REDIS_URL, model_url,
                    ASSISTD_REDIS_PREFIX=prefix, ASSISTD_RUN_LEASE_S=str(LEASE_S))
        )  # fmt: skip


@dataclass
class Flight:
    runs: int = 0  # runs the clients have started and not yet seen end
    kills: int = 0
    kills_mid_run: int = 0  # kills while runs were in flight


async def _chaos_monkey(
    workers: list[Process], opts: Options, stop: asyncio.Event, flight: Flight
) -> None:
    """Kills one worker at a time at random moments and starts it again."""
    rng = random.Random(opts.seed)
    while workers and not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), rng.uniform(*opts.kill_gap_s))
            break
        except TimeoutError:
            pass
        victim = rng.choice(workers)
        flight.kills_mid_run += flight.runs > 0
        await asyncio.to_thread(victim.kill9)
        flight.kills += 1
        await asyncio.sleep(rng.uniform(*opts.down_s))
        victim.start()
        # The next kill is counted from when this worker claims runs again: killing
        # workers faster than they start would test nothing but the start.
        await asyncio.to_thread(victim.wait_for, WORKER_READY)


async def _drive(api: Api, planned: list[Plan], opts: Options, flight: Flight) -> list[Outcome]:
    assistant_id, threads = await setup(api, opts.threads)
    outcomes = [Outcome(p, threads[p.thread]) for p in planned]
    gate = asyncio.Semaphore(opts.concurrency)

    async def thread_turns(thread: int) -> None:
        async with gate:
            for out in (o for o in outcomes if o.plan.thread == thread):  # turns in order
                flight.runs += 1
                await run_one(api, assistant_id, out, opts.run_timeout_s)
                flight.runs -= 1

    await asyncio.gather(*(thread_turns(t) for t in range(opts.threads)))
    return outcomes


async def _scenario(target: Cluster, opts: Options, report: Report) -> None:
    api = Api(target.replicas, target.admin_key)
    stop, flight = asyncio.Event(), Flight()
    monkey = asyncio.create_task(_chaos_monkey(target.workers, opts, stop, flight))
    started = time.monotonic()
    try:
        outcomes = await _drive(api, plans(opts.threads, opts.turns), opts, flight)
    finally:
        stop.set()
        await monkey
    report.kills, report.kills_mid_run = flight.kills, flight.kills_mid_run
    report.seconds = time.monotonic() - started
    report.slowest_run_s = max(o.seconds for o in outcomes)
    report.model_turns_needed = sum(1 if o.plan.kind == "plain" else 2 for o in outcomes)
    report.counts = await count(api, outcomes)
    await api.close()


def run_chaos(opts: Options, workdir: Path) -> Report:
    """Runs the scenario; the caller checks `unavailable(opts.shape)` first."""
    report = Report(Counts())
    model = FakeModel().start()
    model.respond(MODEL, respond)
    try:
        with _targets(opts, workdir, model.base_url) as target:
            asyncio.run(_scenario(target, opts, report))
            if not report.counts.ok:
                report.logs = target.logs()
        report.model_requests = len(model.requests(MODEL))
    finally:
        model.stop()
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=Options.threads)
    parser.add_argument("--turns", type=int, default=Options.turns)
    parser.add_argument("--seed", type=int, default=Options.seed)
    parser.add_argument("--shape", choices=["distributed", "embedded"], default="distributed")
    parser.add_argument("--keep", type=Path, help="a directory to keep the processes' logs in")
    args = parser.parse_args(argv)
    opts = Options(threads=args.threads, turns=args.turns, seed=args.seed, shape=args.shape)
    if why := unavailable(opts.shape):
        print(f"durability test skipped: {why}")
        return 0 if not os.environ.get("CI") else 1
    with tempfile.TemporaryDirectory(prefix="assistd-chaos-") as tmp:
        workdir = args.keep or Path(tmp)
        workdir.mkdir(parents=True, exist_ok=True)
        report = run_chaos(opts, workdir)
        print(report.text())
        if report.logs:
            print(report.logs)
    return 0 if report.counts.ok else 1


if __name__ == "__main__":
    sys.exit(main())
