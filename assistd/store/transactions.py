"""One transaction on an engine's connection, for the SQL that runs outside a workspace
unit (the store's own, the thread sweep's, usage and quotas')."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def transaction(engine: AsyncEngine, write: bool) -> AsyncIterator[AsyncConnection]:
    async with engine.connect() as conn:
        if write:
            # Lets SQLite take its write lock up front (BEGIN IMMEDIATE), so a
            # transaction never fails half-way on a lock upgrade.
            await conn.execution_options(assistd_write=True)
        async with conn.begin():
            yield conn
