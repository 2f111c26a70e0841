"""Reads on PostgreSQL's hot paths through asyncpg itself.

SQLAlchemy's execution of a text statement (its greenlet hop, parameter processing,
result wrapping) costs about 0.5 ms a statement over asyncpg's own on this machine
(bench/README.md, knowledge): a hybrid search's statements run here. Each statement is
prepared once per connection by asyncpg's statement cache, as SQLAlchemy's were.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection


async def fetch(conn: AsyncConnection, sql: str, *args: Any) -> list[Any]:
    """The rows of `sql` (positional `$n` parameters) on the unit's own connection."""
    driver = (await conn.get_raw_connection()).driver_connection
    assert driver is not None  # a checked-out connection always has its driver's
    return list(await driver.fetch(sql, *args))


def on_postgres(conn: AsyncConnection) -> bool:
    """Whether the unit's connection is PostgreSQL's (SQLite's units pass their own
    stand-in for AsyncConnection, store/sqlite.py, which has the sync connection too)."""
    return bool(conn.sync_connection.dialect.name == "postgresql")  # type: ignore[union-attr]
