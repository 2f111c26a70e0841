"""Code interpreter sandbox: cold start of a kernel, warm `1+1`, and a 100-call session,
each beside the same work done without the sandbox in the same run, in-process (no HTTP).

    python -m bench.sandbox [--quick] [--starts 8] [--warm 200] [--session 100]

Contenders, measured interleaved (one of each in turn) so they share the machine's noise:

- sandbox: assistd.sandbox.kernel.SandboxedKernel (ipykernel in bubblewrap, prlimit and,
  as root, its own uid), through the same calls the code interpreter makes;
- kernel_no_jail: the same SandboxedKernel code with the jail taken off the command line
  (what the sandbox itself costs);
- jupyter: a bare ipykernel started the stock way (jupyter_client start_new_async_kernel,
  wait_for_ready) and driven by the minimal execute / read-iopub-until-idle loop;
- python: a bare local Python: `python -c` for a cold start, and for warm calls one
  persistent `python` fed snippets over a pipe (exec, then the last expression's repr).

Goals (issue 4): warm call overhead <= 20 ms p50 (sandbox minus python), cold start <= 1.5 s
p50. Writes bench/results/sandbox-<timestamp>.json and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import gc
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from importlib.metadata import version
from pathlib import Path
from typing import Any
from unittest import mock

from jupyter_client.asynchronous.client import AsyncKernelClient
from jupyter_client.manager import AsyncKernelManager, start_new_async_kernel

from assistd.sandbox import kernel as kernel_module
from assistd.sandbox.bwrap import Limits, find_bwrap, sandbox_command
from assistd.sandbox.kernel import Execution, SandboxedKernel, _absorb
from assistd.sandbox.pool import KernelPool
from bench.harness import save_results

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CALL_TIMEOUT_S = 60.0
UID_BASE = 245_000  # clear of the uids a server's KernelPool hands out (200000 + n)
COLD_GOAL_MS = 1500.0
WARM_OVERHEAD_GOAL_MS = 20.0

REPL = r"""
import ast, contextlib, io, json, sys
ns = {"__name__": "__main__"}
for line in sys.stdin:
    out, result, error = io.StringIO(), None, None
    try:
        tree = ast.parse(json.loads(line))
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        with contextlib.redirect_stdout(out):
            exec(compile(tree, "<cell>", "exec"), ns)
            if last is not None:
                value = eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)
                result = None if value is None else repr(value)
    except BaseException as exc:
        error = repr(exc)
    sys.__stdout__.write(json.dumps([out.getvalue(), result, error]) + "\n")
    sys.__stdout__.flush()
"""


def session_snippets(n: int) -> list[str]:
    """`n` small cells: assignments, prints, list comprehensions, expression values."""
    kinds = [
        lambda i: f"x{i} = {i} * 2",
        lambda i: f"print('step', {i}, x{i - 1})",
        lambda i: f"squares = [k * k for k in range({i})]\nsum(squares)",
        lambda i: f"name = 'item-{i}'\nname.upper()",
    ]
    return [kinds[i % 4](i) for i in range(n)]


# ---- contenders ---------------------------------------------------------------------------


class Contender:
    """One way of running Python: start it, run cells, stop it."""

    name = ""

    async def start(self) -> None:
        raise NotImplementedError

    async def run(self, code: str) -> tuple[str, str | None]:
        """(stdout, last expression's value) of one cell."""
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError


def _uids() -> Iterator[int | None]:
    n = 0
    while True:
        yield UID_BASE + n % 1000 if os.geteuid() == 0 else None
        n += 1


UIDS = _uids()


class Sandboxed(Contender):
    name = "sandbox"

    def __init__(self, bwrap: str, limits: Limits) -> None:
        self.kernel = SandboxedKernel(bwrap, limits, next(UIDS))

    async def start(self) -> None:
        await self.kernel.start()

    async def run(self, code: str) -> tuple[str, str | None]:
        done = await self.kernel.execute(code, CALL_TIMEOUT_S)
        if done.error or done.timed_out or done.crashed:
            raise RuntimeError(f"{self.name}: {code!r} failed: {done}")
        return done.stdout, done.result

    async def stop(self) -> None:
        await self.kernel.shutdown()


class NoJail(Sandboxed):
    """SandboxedKernel with bwrap, prlimit and setpriv left off the command line."""

    name = "kernel_no_jail"

    def __init__(self, bwrap: str, limits: Limits) -> None:
        self.kernel = SandboxedKernel(bwrap, limits, None)

    async def start(self) -> None:
        with mock.patch.object(kernel_module, "sandbox_command", _bare_command):
            await self.kernel.start()


def _bare_command(bwrap: str, command: list[str], *rest: Any) -> list[str]:
    return command


class Jupyter(Contender):
    name = "jupyter"
    km: AsyncKernelManager
    kc: AsyncKernelClient

    async def start(self) -> None:
        # stderr: the kernel's warning that tcp is unencrypted, on every start
        self.km, self.kc = await start_new_async_kernel(
            kernel_name="python3", stderr=subprocess.DEVNULL
        )

    async def run(self, code: str) -> tuple[str, str | None]:
        msg_id = self.kc.execute(code)
        done = Execution()
        while True:
            message = await self.kc.get_iopub_msg(timeout=CALL_TIMEOUT_S)
            if message["parent_header"].get("msg_id") == msg_id and _absorb(message, done):
                break
        if done.error:
            raise RuntimeError(f"{self.name}: {code!r} failed: {done.error}")
        return done.stdout, done.result

    async def stop(self) -> None:
        self.kc.stop_channels()
        await self.km.shutdown_kernel(now=True)


class PythonPipe(Contender):
    name = "python"
    proc: asyncio.subprocess.Process

    async def start(self) -> None:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-u", "-c", REPL,
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip

    async def run(self, code: str) -> tuple[str, str | None]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(code).encode() + b"\n")
        await self.proc.stdin.drain()
        stdout, result, error = json.loads(await self.proc.stdout.readline())
        if error:
            raise RuntimeError(f"{self.name}: {code!r} failed: {error}")
        return stdout, result

    async def stop(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        await self.proc.wait()


# ---- measuring ----------------------------------------------------------------------------


async def timed(action: Awaitable[Any]) -> tuple[int, Any]:
    start = time.perf_counter_ns()
    value = await action
    return time.perf_counter_ns() - start, value


async def run_command(command: list[str]) -> None:
    proc = await asyncio.create_subprocess_exec(
        *command, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"{command[-1]!r} exited {proc.returncode}: {err.decode()[-300:]}")


@contextlib.contextmanager
def no_gc() -> Iterator[None]:
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def percentile(values: list[float], q: float) -> float:
    """Linear interpolation between closest ranks (numpy's default)."""
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summary(samples_ns: list[int], keep: bool = False) -> dict[str, Any]:
    """Milliseconds; `keep` adds every sample (for the few cold starts)."""
    ms = [s / 1e6 for s in samples_ns]
    found: dict[str, Any] = {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 0.5), 3),
        "p99_ms": round(percentile(ms, 0.99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
        "total_ms": round(sum(ms), 1),
    }
    if keep:
        found["samples_ms"] = [round(x, 1) for x in ms]
    return found


def rotate(items: list[Any], i: int) -> list[Any]:
    """The contenders in a different order each round, so none always goes first."""
    k = i % len(items)
    return items[k:] + items[:k]


# ---- the three measures -------------------------------------------------------------------


def _jailed(bwrap: str, limits: Limits, command: list[str], control: Path) -> list[str]:
    return sandbox_command(bwrap, command, control, limits, next(UIDS))


async def cold_starts(bwrap: str, limits: Limits, n: int, workdir: Path) -> dict[str, Any]:
    """Start -> ready, `n` times each; plus the pieces a sandboxed start is made of."""
    control = workdir / "probe"
    control.mkdir()
    os.chmod(control, 0o777)
    py = sys.executable
    commands = {
        "python -c": [py, "-c", "1+1"],
        "python -c 'import ipykernel.kernelapp'": [py, "-c", "import ipykernel.kernelapp"],
        "bwrap /bin/true": _jailed(bwrap, limits, ["/bin/true"], control),
        "bwrap python -c": _jailed(bwrap, limits, [py, "-c", "1+1"], control),
        "bwrap python -c 'import ipykernel.kernelapp'": _jailed(
            bwrap, limits, [py, "-c", "import ipykernel.kernelapp"], control
        ),
    }
    makers: dict[str, Callable[[], Contender]] = {
        "sandbox": lambda: Sandboxed(bwrap, limits),
        "kernel_no_jail": lambda: NoJail(bwrap, limits),
        "jupyter": Jupyter,
    }
    samples: dict[str, list[int]] = {name: [] for name in [*makers, *commands]}
    for i in range(n):
        for name in rotate([*makers, *commands], i):
            if name in commands:
                elapsed, _ = await timed(run_command(commands[name]))
            else:
                contender = makers[name]()
                elapsed, _ = await timed(contender.start())
                assert await contender.run("1+1") == ("", "2"), name
                await contender.stop()
            samples[name].append(elapsed)
    return {name: summary(found, keep=True) for name, found in samples.items()}


async def pool_first_call(limits: Limits, n: int) -> dict[str, Any]:
    """A new thread's first `1+1` through KernelPool (what the code interpreter does)."""
    pool = KernelPool(limits, idle_s=600, max_kernels=4)
    found: list[int] = []
    try:
        for _ in range(n):
            await asyncio.sleep(1.5)  # as threads arrive in practice: not back to back

            async def first_call() -> None:
                slot = await pool.slot("ws_bench", f"thread_{uuid.uuid4().hex}")
                done = await slot.kernel.execute("1+1", CALL_TIMEOUT_S)
                assert done.result == "2", done

            elapsed, _ = await timed(first_call())
            found.append(elapsed)
    finally:
        await pool.close()
    return summary(found, keep=True)


async def calls(contenders: list[Contender], cells: list[str], warmup: int) -> dict[str, Any]:
    """Each cell on each contender in turn; every contender must print and answer alike."""
    samples: dict[str, list[int]] = {c.name: [] for c in contenders}
    for cell in cells[:warmup]:
        for contender in contenders:
            await contender.run(cell)
    with no_gc():
        for i, cell in enumerate(cells):
            answers = {}
            for contender in rotate(contenders, i):
                elapsed, answers[contender.name] = await timed(contender.run(cell))
                samples[contender.name].append(elapsed)
            if len(set(answers.values())) != 1:
                raise RuntimeError(f"contenders disagree on {cell!r}: {answers}")
    return {name: summary(found) for name, found in samples.items()}


async def bench(plan: argparse.Namespace, results: dict[str, Any], workdir: Path) -> None:
    bwrap = find_bwrap()
    reason = KernelPool(Limits(), 60, 1).unavailable_reason()
    if bwrap is None or reason:
        raise SystemExit(f"no sandbox can start here: {reason}")
    limits = Limits()
    print(f"cold starts x{plan.starts} ...", flush=True)
    results["cold_start"] = await cold_starts(bwrap, limits, plan.starts, workdir)
    print(f"KernelPool first call on a new thread x{plan.starts} ...", flush=True)
    results["pool_first_call"] = await pool_first_call(limits, plan.starts)
    contenders: list[Contender] = [
        Sandboxed(bwrap, limits), NoJail(bwrap, limits), Jupyter(), PythonPipe(),
    ]  # fmt: skip
    for contender in contenders:
        await contender.start()
    try:
        print(f"warm 1+1 x{plan.warm} ...", flush=True)
        results["warm_1plus1"] = await calls(contenders, ["1+1"] * plan.warm, warmup=20)
        print(f"session of {plan.session} cells ...", flush=True)
        session = [PythonPipe(), Sandboxed(bwrap, limits), NoJail(bwrap, limits), Jupyter()]
        for contender in session:
            await contender.start()
        try:
            results["session"] = await calls(session, session_snippets(plan.session), warmup=0)
        finally:
            for contender in session:
                await contender.stop()
    finally:
        for contender in contenders:
            await contender.stop()


# ---- report -------------------------------------------------------------------------------


def ratios(rows: dict[str, Any], base: str) -> dict[str, Any]:
    b = rows[base]
    return {
        name: {
            "p50_ratio": round(r["p50_ms"] / b["p50_ms"], 2),
            "p50_diff_ms": round(r["p50_ms"] - b["p50_ms"], 2),
            "p99_ratio": round(r["p99_ms"] / b["p99_ms"], 2),
            "p99_diff_ms": round(r["p99_ms"] - b["p99_ms"], 2),
        }
        for name, r in rows.items()
        if name != base
    }


def add_verdicts(results: dict[str, Any]) -> None:
    cold = results["cold_start"]
    results["vs_python"] = {
        "cold_start": ratios(cold, "python -c"),
        "warm_1plus1": ratios(results["warm_1plus1"], "python"),
        "session": ratios(results["session"], "python"),
    }
    kernels = {k: cold[k] for k in ("sandbox", "kernel_no_jail", "jupyter")}
    results["vs_jupyter"] = {
        "cold_start": ratios(kernels, "jupyter"),
        "warm_1plus1": ratios(results["warm_1plus1"], "jupyter"),
        "session": ratios(results["session"], "jupyter"),
    }
    cold_p50 = cold["sandbox"]["p50_ms"]
    overhead = results["vs_python"]["warm_1plus1"]["sandbox"]["p50_diff_ms"]
    results["goals"] = {
        "cold_start_p50_ms<=1500": [cold_p50, cold_p50 <= COLD_GOAL_MS],
        "warm_overhead_p50_ms<=20": [overhead, overhead <= WARM_OVERHEAD_GOAL_MS],
    }


def table(results: dict[str, Any]) -> str:
    head = f"{'measure':48} {'p50':>9} {'p99':>9} {'x p50':>7} {'x p99':>7} {'+ms p50':>8}"
    lines = [head, "-" * len(head)]
    sections = [
        ("cold start (start -> ready)", "cold_start", "python -c"),
        ("warm `1+1`", "warm_1plus1", "python"),
        ("100-call session (per call)", "session", "python"),
    ]
    for title, key, base in sections:
        lines.append(f"{title}; x and +ms vs {base!r}")
        rows, against = results[key], results["vs_python"][key]
        for name, row in rows.items():
            r = against.get(name, {"p50_ratio": 1.0, "p99_ratio": 1.0, "p50_diff_ms": 0.0})
            lines.append(
                f"  {name:46} {row['p50_ms']:9.2f} {row['p99_ms']:9.2f} "
                f"{r['p50_ratio']:7.2f} {r['p99_ratio']:7.2f} {r['p50_diff_ms']:8.2f}"
            )
        if key == "cold_start":
            pool = results["pool_first_call"]
            lines.append(
                f"  {'KernelPool: new thread, first 1+1':46} {pool['p50_ms']:9.2f} "
                f"{pool['p99_ms']:9.2f}"
            )
        if key == "session":
            totals = "  ".join(f"{n} {r['total_ms']:.0f}" for n, r in rows.items())
            lines.append(f"  total ms: {totals}")
    for goal, (value, met) in results["goals"].items():
        lines.append(f"goal {goal}: {value} -> {'met' if met else 'MISSED'}")
    lines.append("times in ms; x = ratio to the baseline named in the section title")
    return "\n".join(lines)


def git_commit() -> str:
    done = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
    )
    dirty = subprocess.run(
        ["git", "status", "--porcelain", "assistd"], cwd=ROOT, capture_output=True, text=True
    )
    return done.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")


def machine() -> dict[str, Any]:
    return {
        "cpus": os.cpu_count(),
        "load_avg": [round(x, 2) for x in os.getloadavg()],
        "platform": platform.platform(),
        "python": platform.python_version(),
        "ipykernel": version("ipykernel"),
        "jupyter_client": version("jupyter_client"),
        "root": os.geteuid() == 0,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="3 starts, 50 warm calls")
    parser.add_argument("--starts", type=int, default=None, help="cold starts per contender")
    parser.add_argument("--warm", type=int, default=None, help="timed warm `1+1` calls")
    parser.add_argument("--session", type=int, default=100, help="cells in the session")
    args = parser.parse_args(argv)
    args.starts = args.starts or (3 if args.quick else 8)
    args.warm = args.warm or (50 if args.quick else 200)
    started = dt.datetime.now(dt.UTC)
    results: dict[str, Any] = {
        "benchmark": "sandbox",
        "started_at": started.isoformat(timespec="seconds"),
        "commit": git_commit(),
        "plan": {"starts": args.starts, "warm": args.warm, "session": args.session},
        "machine": machine(),
    }
    print(f"assistd sandbox benchmark: {results['plan']}", flush=True)
    with tempfile.TemporaryDirectory(prefix="assistd-bench-sandbox-") as tmp:
        asyncio.run(bench(args, results, Path(tmp)))
    results["machine"]["load_avg_after"] = machine()["load_avg"]
    results["wall_seconds"] = round((dt.datetime.now(dt.UTC) - started).total_seconds(), 1)
    add_verdicts(results)
    save_results("sandbox", started, results, table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
