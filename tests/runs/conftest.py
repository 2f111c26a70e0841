"""Fixtures of the run tests: dedicated servers started with their own settings.

The session's `server` shares one configuration; a test that needs another (a short run
expiry, a model route with a small context window, an unreachable model endpoint) starts
its own server, on SQLite and on a fresh PostgreSQL database of its own, so its worker
pool never touches the runs of another server.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path

import dashscope
import httpx
import pytest

from tests.conftest import make_workspace
from tests.support.postgres import database_or_skip
from tests.support.server import RunningServer, run_server

StartServer = Callable[..., RunningServer]


@contextmanager
def _database(backend: str, workdir: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield ""
        return
    with database_or_skip(workdir) as url:
        yield url


@contextmanager
def dedicated_server(backend: str, workdir: Path, **env: str) -> Iterator[RunningServer]:
    """A server of its own on `backend` ("sqlite" or "postgres") with `env` settings."""
    with _database(backend, workdir / "pg") as url, run_server(workdir / "data", url, **env) as s:
        yield s


@contextmanager
def sdk_at(server: RunningServer, key: str) -> Iterator[None]:
    """Points the dashscope SDK at `server` with `key`, as a user sets both globals."""
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url = server.dashscope_url
    dashscope.api_key = key
    try:
        yield
    finally:
        dashscope.base_http_api_url, dashscope.api_key = saved


def workspace_key(server: RunningServer) -> tuple[str, str]:
    """A fresh workspace on `server` and a plain key of it: (workspace id, key)."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        return make_workspace(admin)


@contextmanager
def sdk_on(server: RunningServer) -> Iterator[str]:
    """Points the dashscope SDK at `server` with the key of a fresh workspace there;
    yields the workspace id."""
    ws_id, key = workspace_key(server)
    with sdk_at(server, key):
        yield ws_id


@pytest.fixture(params=["sqlite", "postgres"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def start_server(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Starts dedicated servers on this test's backend; they stop when the test ends."""
    with ExitStack() as stack:

        def start(**env: str) -> RunningServer:
            workdir = tmp_path_factory.mktemp(f"dedicated-{backend}")
            cm: AbstractContextManager[RunningServer] = dedicated_server(backend, workdir, **env)
            return stack.enter_context(cm)

        yield start


@pytest.fixture
def database(backend: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A database of this test's own ("" for SQLite in the server's data directory), for
    tests that start several servers on the same storage one after another."""
    with _database(backend, tmp_path_factory.mktemp(f"db-{backend}")) as url:
        yield url


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def start_module_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[StartServer]:
    """As `start_server`, for servers shared by the tests of one module (per backend)."""
    with ExitStack() as stack:

        def start(**env: str) -> RunningServer:
            workdir = tmp_path_factory.mktemp(f"module-{request.param}")
            cm: AbstractContextManager[RunningServer] = dedicated_server(
                request.param, workdir, **env
            )
            return stack.enter_context(cm)

        yield start
