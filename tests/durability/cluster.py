"""The distributed shape as real processes: API replicas (`assistd serve --no-worker`) and
workers (`assistd worker`) on one PostgreSQL database and one Redis, each process with a
data dir of its own; a worker can be killed with SIGKILL and started again."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from tests.support.server import ADMIN_KEY, free_port, server_env

SECRET_KEY = "chaos-secret-key-shared-by-every-process-0123456789"
ROOT = Path(__file__).resolve().parents[2]
_BAD = ("WARNING", "ERROR", "Traceback", "Error:")
WORKER_READY = "assistd worker ready"  # what `assistd worker` prints once it claims runs


def redis_problem(url: str) -> str | None:
    """Why the Redis at `url` cannot be used, or None."""
    from redis import Redis
    from redis.exceptions import RedisError

    try:
        with Redis.from_url(url) as client:
            client.ping()
    except (RedisError, OSError) as exc:
        return f"no Redis at {url}: {exc}"
    return None


def forget_keys(url: str, prefix: str) -> None:
    """Deletes the keys a deployment made under `prefix`."""
    from redis import Redis

    with Redis.from_url(url) as client:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)


def missing_commands() -> str | None:
    """Why this build cannot run the distributed shape, or None if it can."""
    for command, needle in (("serve", "--no-worker"), ("worker", "--concurrency")):
        done = subprocess.run(
            [sys.executable, "-m", "assistd", command, "--help"],
            cwd=ROOT, capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode != 0 or needle not in done.stdout:
            return f"this build has no `assistd {command} {needle}` (the distributed shape)"
    return None


@dataclass
class Process:
    """One assistd process; started in its own session so a kill takes its children too
    (its code interpreter kernels, its tool pool), as a dead container would."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0

    def start(self) -> None:
        self.starts += 1
        with self.log.open("ab") as out:
            out.write(f"\n---- start {self.starts}\n".encode())
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "assistd", *self.args], cwd=ROOT, env=self.env,
                stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
            )  # fmt: skip

    def wait_for(self, line: str, timeout_s: float = 60) -> None:
        """Waits until this start of the process has printed `line`."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log.read_text(errors='replace')}")
            this_start = self.log.read_text(errors="replace").rsplit("\n---- start ", 1)[-1]
            if line in this_start:
                return
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not print {line!r}:\n{self.log.read_text()}")

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        if self.popen is None:
            return
        with suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait()

    def stop(self) -> None:
        """SIGTERM, then SIGKILL of the whole group after a grace period."""
        if self.popen is None:
            return
        if self.popen.poll() is None:
            self.popen.terminate()
            with suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=15)
        self.kill9()


@dataclass
class Cluster:
    replicas: list[str]  # base URLs of the API replicas
    workers: list[Process]
    processes: list[Process] = field(default_factory=list)
    admin_key: str = ADMIN_KEY

    def logs(self, most: int = 15) -> str:
        """Each process's first warnings and errors (request lines left out)."""
        parts = []
        for proc in self.processes:
            lines = proc.log.read_text(errors="replace").splitlines()
            bad = [line for line in lines if any(w in line for w in _BAD)][:most]
            parts.append(
                f"==== {proc.name}: {len(bad)} warnings or errors shown\n" + "\n".join(bad)
            )
        return "\n".join(parts)


def _wait_healthy(base_url: str, proc: Process) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if not proc.alive():
            raise RuntimeError(f"{proc.name} exited:\n{proc.log.read_text(errors='replace')}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{proc.name} did not become ready:\n{proc.log.read_text()}")


@contextmanager
def cluster(
    workdir: Path,
    database_url: str,
    redis_url: str,
    model_url: str,
    replicas: int = 2,
    workers: int = 2,
    worker_concurrency: int = 16,
    **extra_env: str,
) -> Iterator[Cluster]:
    """Starts the replicas one after the other (the first migrates the database), then
    the workers; stops them all on the way out."""
    common = {
        "ASSISTD_REDIS_URL": redis_url,
        "ASSISTD_OPENAI_BASE_URL": model_url,
        "ASSISTD_SECRET_KEY": SECRET_KEY,
        **extra_env,
    }
    found = Cluster([], [])
    with ExitStack() as stack:
        for i in range(replicas):
            port = free_port()
            proc = _process(f"api-{i + 1}", ["serve", "--no-worker", "--port", str(port)],
                            workdir, database_url, common)  # fmt: skip
            found.processes.append(proc)
            stack.callback(proc.stop)
            proc.start()
            base_url = f"http://127.0.0.1:{port}"
            _wait_healthy(base_url, proc)
            found.replicas.append(base_url)
        for i in range(workers):
            args = ["worker", "--concurrency", str(worker_concurrency)]
            proc = _process(f"worker-{i + 1}", args, workdir, database_url, common)
            found.processes.append(proc)
            found.workers.append(proc)
            stack.callback(proc.stop)
            proc.start()
        for proc in found.workers:
            proc.wait_for(WORKER_READY)
        yield found


def _process(
    name: str, args: list[str], workdir: Path, database_url: str, common: dict[str, str]
) -> Process:
    data_dir = workdir / name
    data_dir.mkdir(parents=True, exist_ok=True)
    env = server_env(data_dir, database_url, ADMIN_KEY, **common)
    return Process(name, args, env, workdir / f"{name}.log")
