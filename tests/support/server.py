"""Runs the real server, `assistd serve`, in a subprocess on a free port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

# ASSISTD_API_KEY must be at least 32 characters.
ADMIN_KEY = "sk-test-admin-key-long-enough-for-assistd"


@dataclass(frozen=True)
class RunningServer:
    base_url: str  # e.g. http://127.0.0.1:PORT
    admin_key: str  # an admin key of the `default` workspace
    data_dir: Path
    database_url: str  # "" for the embedded SQLite
    env: dict[str, str]
    pid: int  # the server process
    process: subprocess.Popen[bytes] | None = None  # the `assistd serve` process

    @property
    def dashscope_url(self) -> str:
        return f"{self.base_url}/api/v1"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_env(data_dir: Path, database_url: str, admin_key: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    env.update(ASSISTD_API_KEY=admin_key, ASSISTD_DATA_DIR=str(data_dir), **extra)
    if database_url:
        env["ASSISTD_DATABASE_URL"] = database_url
    return env


# The bound covers the interpreter's start and assistd's imports too: on a loaded machine
# (two test lanes, other jobs) a server took 60 s to become ready, failing a whole session.
READY_TIMEOUT_S = 120


def _wait_ready(base_url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"assistd exited with {proc.returncode}:\n{log.read_text()}")
        try:
            if httpx.get(f"{base_url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"assistd did not become ready:\n{log.read_text()}")


@contextmanager
def run_server(
    data_dir: Path,
    database_url: str = "",
    admin_key: str = ADMIN_KEY,
    args: Sequence[str] = (),  # more command-line arguments of `assistd serve`
    **extra_env: str,
) -> Iterator[RunningServer]:
    data_dir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = server_env(data_dir, database_url, admin_key, **extra_env)
    log = data_dir / f"server-{port}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "assistd", "serve", "--port", str(port), *args],
            env=env, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip
    base_url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base_url, proc, log)
        yield RunningServer(base_url, admin_key, data_dir, database_url, env, proc.pid, proc)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
