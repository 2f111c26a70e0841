"""One transaction on an engine's connection, for the SQL that runs outside a workspace
unit (the store's own, the thread sweep's, usage and quotas')."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

# The store's write transaction (SqlStore.writing): on SQLite it waits its turn behind the
# process's other writers, where a bare BEGIN IMMEDIATE on the engine failed at once with
# "database is locked" while a run was writing (busy_timeout is 0, store/sqlite.py).
Writing = Callable[[], AbstractAsyncContextManager[AsyncConnection]]


@asynccontextmanager
async def transaction(engine: AsyncEngine, write: bool) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if write:
            # Lets SQLite take its write lock up front (BEGIN IMMEDIATE), so a
            # transaction never fails half-way on a lock upgrade.
            await conn.execution_options(assistd_write=True)
        async with conn.begin():
            yield conn
