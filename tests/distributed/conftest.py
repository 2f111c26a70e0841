"""The distributed shape as it is deployed: `assistd serve --no-worker` replicas and
`assistd worker` processes, all real, sharing a fresh PostgreSQL database and a fresh
Redis key prefix of the test's own. Only the model is faked (the session's fake model).

No PostgreSQL or Redis: the tests skip, saying why, unless `CI` is set, where they fail.
"""

from __future__ import annotations

import asyncio
import functools
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.fake_model import FakeModel
from tests.support.postgres import database_or_skip
from tests.support.redis import REDIS_URL, redis_or_skip
from tests.support.server import ADMIN_KEY, RunningServer, free_port, server_env

READY_TIMEOUT_S = 60


@dataclass
class Cluster:
    """What the processes share; starts replicas and workers on it."""

    data_dir: Path
    env: dict[str, str]
    stack: ExitStack
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _spawn(self, args: list[str], log: Path, **env: str) -> subprocess.Popen[bytes]:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [sys.executable, "-m", "assistd", *args], env={**self.env, **env},
                stdout=out, stderr=subprocess.STDOUT,
            )  # fmt: skip
        self.processes.append(proc)
        self.stack.callback(_stop, proc)
        return proc

    def start(
        self, replicas: int = 0, workers: int = 0
    ) -> tuple[list[RunningServer], list[Worker]]:
        """Starts them all at once (their migrations race, as in a rollout), then waits
        until each is ready."""
        pending = []
        for _ in range(replicas):
            port = free_port()
            log = self.data_dir / f"replica-{port}.log"
            proc = self._spawn(["serve", "--no-worker", "--port", str(port)], log)
            pending.append((port, proc, log))
        made_workers = [self.worker(wait=False) for _ in range(workers)]
        servers = []
        database_url = self.env["ASSISTD_DATABASE_URL"]
        for port, proc, log in pending:
            base_url = f"http://127.0.0.1:{port}"
            _wait(functools.partial(_healthy, base_url), proc, log)
            running = RunningServer(
                base_url, ADMIN_KEY, self.data_dir, database_url, self.env, proc.pid, proc
            )
            servers.append(running)
        for worker in made_workers:
            worker.wait_ready()
        return servers, made_workers

    def worker(self, *, wait: bool = True) -> Worker:
        log = self.data_dir / f"worker-{secrets.token_hex(3)}.log"
        worker = Worker(self._spawn(["worker", "--concurrency", "4"], log), log)
        if wait:
            worker.wait_ready()
        return worker


@dataclass
class Worker:
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self) -> None:
        _wait(lambda: b"assistd worker ready" in self.log.read_bytes(), self.process, self.log)


def _healthy(base_url: str) -> bool:
    try:
        return httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _wait(ready: Callable[[], bool], proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while not ready():
        if proc.poll() is not None:
            raise RuntimeError(f"assistd exited with {proc.returncode}:\n{log.read_text()}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"assistd did not become ready:\n{log.read_text()}")
        time.sleep(0.1)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def _postgres(workdir: Path) -> Iterator[str]:
    with database_or_skip(workdir) as url:
        yield url


@contextmanager
def _redis_prefix() -> Iterator[str]:
    async def open_prefix() -> str:
        client = await redis_or_skip()  # skips (or fails under CI) without Redis
        await client.aclose()
        return f"assistd-test:{secrets.token_hex(6)}:"

    prefix = asyncio.run(open_prefix())
    try:
        yield prefix
    finally:

        async def clean() -> None:
            client = await redis_or_skip()
            try:
                keys = [key async for key in client.scan_iter(match=f"{prefix}*")]
                if keys:
                    await client.delete(*keys)
            finally:
                await client.aclose()

        asyncio.run(clean())


@pytest.fixture
def cluster(tmp_path: Path, fake_model: FakeModel) -> Iterator[Cluster]:
    """A fresh database and Redis prefix; the processes a test starts on them are
    stopped (SIGTERM) at its end. The run lease is short so takeovers come quickly."""
    with _postgres(tmp_path / "pg") as url, _redis_prefix() as prefix, ExitStack() as stack:
        data_dir = tmp_path / "data"
        data_dir.mkdir()
        env = server_env(
            data_dir, url, ADMIN_KEY,
            ASSISTD_REDIS_URL=REDIS_URL, ASSISTD_REDIS_PREFIX=prefix,
            ASSISTD_OPENAI_BASE_URL=fake_model.base_url, ASSISTD_RUN_LEASE_S="2",
            # Every process signs and encrypts with the same secret, as a deployment's do.
            ASSISTD_SECRET_KEY=secrets.token_hex(32),
        )  # fmt: skip
        yield Cluster(data_dir, env, stack)
