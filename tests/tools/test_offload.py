"""The compute pool that runs CPU-bound tool work off the event loop: results and errors
come back as if called here, an overrun kills only its own worker, a worker cannot
allocate without bound, and no worker outlives the server."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import pytest

from assistd.tools.builtin.calculator import evaluate
from assistd.tools.offload import ComputeFailed, ComputePool, ComputeTimeout

MIB = 1024 * 1024


@pytest.fixture
async def pool() -> AsyncIterator[ComputePool]:
    pool = ComputePool(workers=1, wall_s=3.0, memory_bytes=256 * MIB)
    try:
        yield pool
    finally:
        await pool.close()


def _alive(pid: int) -> bool:
    """Running (a zombie no one has reaped yet counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


async def test_results_and_errors_come_back(pool: ComputePool) -> None:
    assert await pool.call(evaluate, "2**10 + 1") == "1025"
    assert await pool.call(divmod, 17, 5) == (3, 2)
    with pytest.raises(ValueError, match="invalid literal"):
        await pool.call(int, "not a number")
    assert await pool.call(print, "printed output must not reach the replies") is None
    assert await pool.call(evaluate, "6 * 7") == "42"


async def test_an_overrun_kills_only_its_worker(pool: ComputePool) -> None:
    await pool.call(evaluate, "1")
    [first] = pool.pids
    with pytest.raises(ComputeTimeout, match="longer than 3 s"):
        await pool.call(time.sleep, 60)
    assert not _alive(first)
    assert await pool.call(evaluate, "1 + 1") == "2"  # on a fresh worker
    assert pool.pids != [first]


async def test_a_worker_cannot_allocate_without_bound(pool: ComputePool) -> None:
    with pytest.raises(MemoryError):
        await pool.call(bytearray, 1024 * MIB)
    assert len(await pool.call(bytearray, MIB)) == MIB


async def test_no_call_after_close(pool: ComputePool) -> None:
    await pool.call(evaluate, "1")
    [pid] = pool.pids
    await pool.close()
    assert not _alive(pid)
    with pytest.raises(ComputeFailed):
        await pool.call(evaluate, "1")


_PARENT = """
import asyncio, time
from assistd.tools.offload import ComputePool

async def main():
    pool = ComputePool(workers=1, wall_s=60, memory_bytes=256 * 1024 * 1024)
    await pool.call(len, "warm")
    print(pool.pids[0], flush=True)
    await pool.call(time.sleep, 60)

asyncio.run(main())
"""


def test_workers_die_with_the_server() -> None:
    """Even a worker busy computing ends when its server is killed outright."""
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT],
        stdout=subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert parent.stdout is not None
    worker = int(parent.stdout.readline())
    parent.stdout.close()
    assert _alive(worker)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while _alive(worker):
        assert time.monotonic() < deadline, "the worker outlived its server"
        time.sleep(0.05)
