"""CPU-bound tool work, off the event loop: a small pool of worker processes.

A call names a module-level function and its (picklable) arguments; an idle worker
process runs it and sends the result back over a pipe, so a warm call costs a fraction
of a millisecond. A call that runs past the wall-time limit has its worker killed, and
raises ComputeTimeout: only that call fails, and the next call gets a fresh worker.
Workers start on first use, run under an address-space limit (a runaway allocation
fails there with MemoryError, not in the server) and die with the server.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import pickle
import sys
from collections.abc import Callable
from typing import ParamSpec, TypeVar

from assistd.tools.offload_worker import HEADER, frame

log = logging.getLogger("assistd.tools")
P = ParamSpec("P")
T = TypeVar("T")

# The worker imports assistd from exactly where the server did.
_BOOT = (
    "import sys, json; sys.path[:] = json.loads(sys.argv.pop(1)); "
    "from assistd.tools.offload_worker import main; main()"
)


class ComputeTimeout(Exception):
    """The call ran past the wall-time limit; its worker was killed."""

    def __init__(self, limit_s: float) -> None:
        super().__init__(f"the computation took longer than {limit_s:g} s and was stopped")
        self.limit_s = limit_s


class ComputeFailed(Exception):
    """The worker process ended without answering (it crashed or was killed)."""


class _Worker:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    @classmethod
    async def start(cls, memory_bytes: int) -> _Worker:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-c", _BOOT, json.dumps(sys.path), str(os.getpid()), str(memory_bytes),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
            start_new_session=True,  # a Ctrl-C at the terminal is the server's to handle
        )  # fmt: skip
        return cls(process)

    async def ask(self, request: bytes) -> bytes:
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(frame(request))
            await stdin.drain()
            size = HEADER.unpack(await stdout.readexactly(HEADER.size))[0]
            return await stdout.readexactly(size)
        except (asyncio.IncompleteReadError, ConnectionError) as exc:
            raise ComputeFailed("the worker process ended without answering") from exc

    async def stop(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        await self.process.wait()


class ComputePool:
    """Runs functions in worker processes, at most `workers` at a time."""

    def __init__(self, workers: int, wall_s: float, memory_bytes: int) -> None:
        self.wall_s = wall_s
        self.memory_bytes = memory_bytes
        self._slots = asyncio.Semaphore(workers)
        self._idle: list[_Worker] = []
        self._busy: set[_Worker] = set()
        self._closed = False

    async def call(self, function: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        """function(*args, **kwargs) in a worker process, within the wall-time limit."""
        request = pickle.dumps((function.__module__, function.__qualname__, args, kwargs))
        async with self._slots:
            worker = await self._take()
            try:
                reply = await asyncio.wait_for(worker.ask(request), self.wall_s)
            except BaseException as exc:  # overran, crashed, or the run was cancelled
                self._busy.discard(worker)
                await worker.stop()
                if isinstance(exc, TimeoutError):
                    name = f"{function.__module__}.{function.__qualname__}"
                    log.warning("%s ran past %g s; its worker was stopped", name, self.wall_s)
                    raise ComputeTimeout(self.wall_s) from None
                raise
            self._busy.discard(worker)
            self._idle.append(worker)
        status, value = pickle.loads(reply)
        if status == "error":
            raise value
        result: T = value
        return result

    @property
    def pids(self) -> list[int]:
        """The worker processes now running (idle ones first)."""
        return [worker.process.pid for worker in (*self._idle, *self._busy)]

    async def _take(self) -> _Worker:
        if self._closed:
            raise ComputeFailed("the server is shutting down")
        worker = self._idle.pop() if self._idle else await _Worker.start(self.memory_bytes)
        if self._closed:  # closed while the worker started
            await worker.stop()
            raise ComputeFailed("the server is shutting down")
        self._busy.add(worker)
        return worker

    async def close(self) -> None:
        """Ends every worker; a call still running fails with ComputeFailed."""
        self._closed = True
        workers = [*self._idle, *self._busy]
        self._idle.clear()
        for worker in workers:
            await worker.stop()
