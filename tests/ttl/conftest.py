"""Fixtures of the thread time-to-live tests: servers of their own (a short sweep
interval, or none in reach), on SQLite and PostgreSQL, and the database behind them."""

from __future__ import annotations

import time

from tests.runs.conftest import backend, start_module_server, start_server  # noqa: F401
from tests.support.db import query
from tests.support.server import RunningServer

HOUR_MS = 3600 * 1000


def idle_for(server: RunningServer, thread_id: str, ms: int) -> None:
    """Moves the thread's last activity `ms` back, as if nothing had happened since."""
    at = time.time_ns() // 1_000_000 - ms
    query(server, "UPDATE threads SET last_active_at = ? WHERE id = ?", at, thread_id)


def exists(server: RunningServer, table: str, object_id: str) -> bool:
    return bool(query(server, f"SELECT 1 FROM {table} WHERE id = ?", object_id))


def count_of(server: RunningServer, table: str, thread_id: str) -> int:
    rows = query(server, f"SELECT COUNT(*) FROM {table} WHERE thread_id = ?", thread_id)
    return int(rows[0][0])


def wait_gone(server: RunningServer, thread_id: str, timeout_s: float = 60) -> None:
    """Until the sweep has deleted the thread (bounded, to fail rather than hang)."""
    deadline = time.monotonic() + timeout_s
    while exists(server, "threads", thread_id):
        assert time.monotonic() < deadline, f"thread {thread_id} was not swept"
        time.sleep(0.2)
