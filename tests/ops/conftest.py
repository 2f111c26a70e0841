"""Helpers of the operator tests: `assistd serve` run as an operator runs it, and a
database of each backend for tests that start servers of their own."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.postgres import database_or_skip
from tests.support.server import RunningServer


@pytest.fixture(params=["sqlite", "postgres"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database of this test's own: "" for SQLite (in the server's data dir), else the
    URL of a fresh PostgreSQL database."""
    if request.param == "sqlite":
        yield ""
        return
    with database_or_skip(tmp_path / "pg") as url:
        yield url


def clean_env(**settings: str) -> dict[str, str]:
    """This process's environment without any ASSISTD_* variable, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith("ASSISTD_")}
    return {**env, **settings}


def serve_refused(env: dict[str, str], *args: str, cwd: Path | None = None) -> str:
    """Runs `assistd serve` expecting it to refuse to start: a non-zero exit, no
    traceback, and one or two lines on stderr, the last `Error: ...`. Returns stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "assistd", "serve", *args],
        env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "Traceback" not in output, output
    lines = done.stderr.strip().splitlines()
    assert 1 <= len(lines) <= 2 and lines[-1].startswith("Error: "), output
    return done.stderr


def server_output(server: RunningServer) -> str:
    """What a server started by `run_server` has printed so far."""
    return (server.data_dir / f"server-{server.base_url.rsplit(':', 1)[1]}.log").read_text()
