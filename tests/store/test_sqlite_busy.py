"""Another process holding a lock on the server's SQLite database (the CLI, a backup, a
sqlite3 shell) never stalls the server: /healthz and reads answer while a write waits for
the lock, a write whose lock is freed in time succeeds, and one that waits past
`sqlite_busy_timeout_s` answers 503 with Retry-After, having written nothing.

SQLite only: PostgreSQL's driver waits for its locks without holding the event loop."""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import dashscope
import httpx
import pytest

from tests.cli.test_cli import fails
from tests.conftest import make_workspace
from tests.support.fake_model import FakeModel
from tests.support.sdk import assert_error, assert_ok
from tests.support.server import RunningServer, run_server

DEADLINE_S = 4.0  # the server's sqlite_busy_timeout_s here
# A stalled loop answers after seconds (the write's whole wait); a free one in milliseconds.
READ_BOUND_S = 1.5


@dataclass
class Tenant:
    server: RunningServer
    http: httpx.Client
    assistant_id: str

    @property
    def db(self) -> Path:
        return self.server.data_dir / "assistd.db"


@pytest.fixture(scope="module")
def busy_server(
    tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> Iterator[RunningServer]:
    with run_server(
        tmp_path_factory.mktemp("busy"),
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_SQLITE_BUSY_TIMEOUT_S=str(DEADLINE_S),
    ) as running:
        yield running


@pytest.fixture
def tenant(busy_server: RunningServer) -> Iterator[Tenant]:
    headers = {"Authorization": f"Bearer {busy_server.admin_key}"}
    with httpx.Client(base_url=busy_server.base_url, headers=headers, timeout=60) as admin:
        _, key = make_workspace(admin, "busy")
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url, dashscope.api_key = busy_server.dashscope_url, key
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=busy_server.dashscope_url, headers=headers, timeout=60) as http:
        made = dashscope.Assistants.create(model="qwen-max", name="before the lock")
        assert_ok(made)
        try:
            yield Tenant(busy_server, http, made.id)
        finally:
            dashscope.base_http_api_url, dashscope.api_key = saved


@contextmanager
def holding(db: Path, *statements: str) -> Iterator[sqlite3.Connection]:
    """A raw connection of another process's kind that runs `statements` and keeps
    whatever they lock until the block ends."""
    with closing(sqlite3.connect(db, isolation_level=None, timeout=0)) as conn:
        for statement in statements:
            conn.execute(statement).fetchall()
        yield conn
        conn.execute("ROLLBACK")


@dataclass
class Reads:
    """Latencies of /healthz and a GET, polled while writes were pending."""

    latencies: list[float] = field(default_factory=list)

    def poll_until(self, tenant: Tenant, done: Callable[[], bool]) -> None:
        while not done():
            for path in ("/healthz", f"/api/v1/assistants/{tenant.assistant_id}"):
                url = tenant.server.base_url + path
                started = time.monotonic()
                answer = tenant.http.get(url)
                self.latencies.append(time.monotonic() - started)
                assert answer.status_code == 200, answer.text
            time.sleep(0.05)

    def assert_prompt(self) -> None:
        assert len(self.latencies) >= 6, self.latencies  # answered while the writes waited
        assert max(self.latencies) < READ_BOUND_S, self.latencies


def counts(db: Path) -> dict[str, int]:
    tables = ("assistants", "threads", "messages", "runs")
    with closing(sqlite3.connect(db, timeout=10)) as conn:
        return {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}


def create_thread_and_run(tenant: Tenant) -> httpx.Response:
    body = {
        "assistant_id": tenant.assistant_id,
        "thread": {"messages": [{"role": "user", "content": "hello"}]},
    }
    return tenant.http.post("/threads/runs", json=body)


def test_a_write_that_outwaits_the_deadline_answers_503_and_writes_nothing(
    tenant: Tenant,
) -> None:
    before = counts(tenant.db)
    reads = Reads()
    with ThreadPoolExecutor(2) as pool, holding(tenant.db, "BEGIN IMMEDIATE"):
        sdk_create = pool.submit(
            dashscope.Assistants.create, model="qwen-max", name="during the lock"
        )
        raw_run = pool.submit(create_thread_and_run, tenant)
        reads.poll_until(tenant, lambda: sdk_create.done() and raw_run.done())
    reads.assert_prompt()
    assert_error(sdk_create.result(), 503, "ServiceUnavailable", "busy")
    answer = raw_run.result()
    assert answer.status_code == 503, answer.text
    assert int(answer.headers["Retry-After"]) >= 1
    assert answer.json()["code"] == "ServiceUnavailable"
    assert counts(tenant.db) == before  # not half a thread, not a message, not a run
    assert_ok(dashscope.Assistants.create(model="qwen-max", name="after the lock"))


def test_a_write_proceeds_once_the_lock_is_freed_within_the_deadline(tenant: Tenant) -> None:
    reads = Reads()
    body = {"model": "qwen-max", "name": "waits"}
    with ThreadPoolExecutor(1) as pool:
        with holding(tenant.db, "BEGIN IMMEDIATE"):
            create = pool.submit(tenant.http.post, "/assistants", json=body)
            reads.poll_until(tenant, lambda: create.done() or len(reads.latencies) >= 10)
            assert not create.done(), create.result().text  # it waits for the lock
        answer = create.result()
    reads.assert_prompt()
    assert answer.status_code == 200, answer.text
    found = tenant.http.get(f"/assistants/{answer.json()['id']}")
    assert found.status_code == 200 and found.json()["name"] == "waits"


def test_a_pending_checkpoint_holds_writers_not_readers(tenant: Tenant) -> None:
    """A TRUNCATE checkpoint in another process takes the write lock while it waits for
    an older reader to finish; the server keeps reading, and its write goes through
    once the checkpoint gives up."""
    gives_up_ms = int(DEADLINE_S * 1000 * 0.75)
    with holding(tenant.db, "BEGIN", "SELECT count(*) FROM assistants"):
        assert_ok(dashscope.Assistants.create(model="qwen-max", name="ahead of the reader"))
        checkpointer = threading.Thread(target=_checkpoint, args=(tenant.db, gives_up_ms))
        checkpointer.start()
        time.sleep(0.3)  # the checkpoint is waiting for the reader now
        reads = Reads()
        body = {"model": "qwen-max", "name": "behind the checkpoint"}
        with ThreadPoolExecutor(1) as pool:
            create = pool.submit(tenant.http.post, "/assistants", json=body)
            reads.poll_until(tenant, create.done)
        checkpointer.join()
    reads.assert_prompt()
    assert create.result().status_code == 200, create.result().text


def _checkpoint(db: Path, busy_ms: int) -> None:
    with closing(sqlite3.connect(db, isolation_level=None)) as conn:
        conn.execute(f"PRAGMA busy_timeout={busy_ms}")
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()


def test_the_cli_says_the_database_is_busy(tenant: Tenant) -> None:
    env = {**tenant.server.env, "ASSISTD_SQLITE_BUSY_TIMEOUT_S": "0.5"}
    with holding(tenant.db, "BEGIN IMMEDIATE"):
        message = fails("workspace", "create", "while-locked", env=env)
    assert "busy" in message
