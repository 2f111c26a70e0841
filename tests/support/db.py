"""Straight to a running server's database (SQLite or PostgreSQL), for what the API does
not show: the rows a failed request must not leave behind, and rows an older server may
have written."""

from __future__ import annotations

import asyncio
import sqlite3
from contextlib import closing
from typing import Any

import asyncpg

from tests.support.server import RunningServer


def query(server: RunningServer, sql: str, *params: Any) -> list[tuple[Any, ...]]:
    """Runs one statement, written with `?` placeholders, and returns its rows."""
    if not server.database_url:
        path = server.data_dir / "assistd.db"
        with closing(sqlite3.connect(path, timeout=30)) as conn, conn:
            return [tuple(row) for row in conn.execute(sql, params)]

    numbered = sql
    for n in range(1, len(params) + 1):
        numbered = numbered.replace("?", f"${n}", 1)

    async def run() -> list[tuple[Any, ...]]:
        dsn = server.database_url.replace("postgresql+asyncpg://", "postgresql://", 1)
        conn = await asyncpg.connect(dsn)
        try:
            return [tuple(row) for row in await conn.fetch(numbered, *params)]
        finally:
            await conn.close()

    return asyncio.run(run())


def ids_in(server: RunningServer, table: str, workspace_id: str) -> set[str]:
    """The ids of a workspace's rows in `table` (the DashScope API cannot list threads)."""
    rows = query(server, f"SELECT id FROM {table} WHERE workspace_id = ?", workspace_id)
    return {row[0] for row in rows}
