"""Transactions for the SQL that runs outside a workspace unit (the thread sweep's,
usage and quotas'): reads on an engine's connection, writes through the store's turn."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The store's write transaction (SqlStore.writing): on SQLite it waits its turn behind the
# process's other writers, where a bare BEGIN IMMEDIATE on the engine failed at once with
# "database is locked" while a run was writing (busy_timeout is 0, store/sqlite.py).
Writing = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@asynccontextmanager
async def read_transaction(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A read transaction on the engine. Writes go through the store's `writing()` only:
    on SQLite a write transaction opened beside it would skip the writer turn."""
    async with engine.connect() as conn, conn.begin():
        yield conn
