"""Fixtures: the real server on SQLite and on PostgreSQL, a migrated store on each, and
SDK helpers.

Every test that takes `server` or `store` runs once per storage backend.
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import dashscope
import httpx
import pytest
import pytest_asyncio

from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.store.sql import SqlStore
from tests.support import openai_sdk
from tests.support.fake_model import FakeModel
from tests.support.postgres import database_or_skip
from tests.support.server import RunningServer, run_server

BACKENDS = ["sqlite", "postgres"]
# Before any conftest.py below this one imports openai: the SDK major version this run tests.
OPENAI_SDK_MAJOR = openai_sdk.select_from_env()


def pytest_report_header() -> str:
    where = "the venv" if OPENAI_SDK_MAJOR == openai_sdk.DEFAULT_MAJOR else openai_sdk.ENV
    return f"openai SDK: {OPENAI_SDK_MAJOR}.x (from {where})"


@pytest.fixture(scope="session")
def postgres_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with database_or_skip(tmp_path_factory.mktemp("pg")) as url:
        yield url


def database_url(backend: str, request: pytest.FixtureRequest) -> str:
    """ "" for SQLite; else the URL the `<backend>_url` fixture gives (postgres_url here,
    pgvector_url in tests/knowledge)."""
    return "" if backend == "sqlite" else str(request.getfixturevalue(f"{backend}_url"))


@pytest.fixture(params=BACKENDS)
def settings(request: pytest.FixtureRequest, tmp_path: Path) -> Settings:
    """The settings of a store on each backend (a module may define its own)."""
    return Settings(data_dir=tmp_path, database_url=database_url(request.param, request))


@pytest_asyncio.fixture
async def store(settings: Settings) -> AsyncIterator[SqlStore]:
    """The real store those settings name, migrated, closed after the test."""
    opened = open_store(settings)
    try:
        await opened.migrate()
        yield opened
    finally:
        await opened.close()


@pytest.fixture(scope="session")
def fake_model() -> Iterator[FakeModel]:
    """The scripted model every test server routes its model names to."""
    model = FakeModel().start()
    yield model
    model.stop()


@pytest.fixture(scope="session", params=BACKENDS)
def server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """The real server, once per backend; shared by the tests of a session. Every model
    name is routed to the fake model."""
    url = database_url(request.param, request)
    data_dir = tmp_path_factory.mktemp(f"server-{request.param}")
    with run_server(data_dir, url, ASSISTD_OPENAI_BASE_URL=fake_model.base_url) as running:
        yield running


@pytest.fixture
def admin(server: RunningServer) -> Iterator[httpx.Client]:
    """An HTTP client holding the server's admin key."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
        yield client


def make_workspace(admin: httpx.Client, prefix: str = "ws") -> tuple[str, str]:
    """A new workspace and a plain key of it: (workspace_id, key)."""
    created = admin.post("/admin/v1/workspaces", json={"name": f"{prefix}-{secrets.token_hex(4)}"})
    assert created.status_code == 200, created.text
    ws_id = created.json()["id"]
    key = admin.post("/admin/v1/keys", json={"workspace": ws_id})
    assert key.status_code == 200, key.text
    return ws_id, key.json()["key"]


@pytest.fixture
def ds(server: RunningServer, admin: httpx.Client) -> Iterator[str]:
    """Points the dashscope SDK at the server with the key of a fresh workspace, so each
    test sees only its own objects. Yields that workspace's id."""
    ws_id, key = make_workspace(admin)
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url = server.dashscope_url
    dashscope.api_key = key
    try:
        yield ws_id
    finally:
        dashscope.base_http_api_url, dashscope.api_key = saved


@pytest.fixture
def text_file(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text("assistd test file\n")
    return path
