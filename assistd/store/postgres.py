"""PostgreSQL through asyncpg.

Read units run in autocommit: PostgreSQL's default isolation (READ COMMITTED) gives
every statement its own snapshot, inside a transaction or not, so a read unit sees the
same data either way, without the two round trips of BEGIN and COMMIT. A read unit that
writes would lose its atomicity that way, so a write there raises instead."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from assistd.store import audit, pg_dense
from assistd.store.sql import SqlStore


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def postgres_engine(url: str) -> AsyncEngine:
    engine = create_async_engine(
        url,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        # Twenty connections at most, as many kept open: an overflow connection is closed
        # as soon as it is returned, so a busy worker kept opening new ones, each
        # preparing every statement again.
        pool_size=20,
        max_overflow=0,
        pool_pre_ping=False,
        hide_parameters=True,  # errors and logs never show values: they are tenant content
    )
    event.listen(engine.sync_engine, "connect", pg_dense.tune_session)
    return engine


def autocommit_reads(engine: AsyncEngine) -> AsyncEngine:
    """The engine of read units: the same pool, each connection in autocommit while
    it is checked out; a write through it raises."""
    reads = engine.execution_options(isolation_level="AUTOCOMMIT")
    event.listen(reads.sync_engine, "before_cursor_execute", _refuse_writes)
    return reads


def _refuse_writes(
    conn: Any, cursor: Any, statement: str, params: Any, context: Any, many: bool
) -> None:
    if context.isinsert or context.isupdate or context.isdelete:
        raise RuntimeError("a read unit of work wrote: open it with write=True")


_AUDIT_INSERT = audit.driver_insert(
    [f"${n}" for n in range(1, len(audit.COLUMNS) + 1)], " RETURNING seq"
)


class PostgresStore(SqlStore):
    async def insert_audit_row(self, conn: AsyncConnection, values: dict[str, Any]) -> int:
        """On asyncpg, inside the transaction its adapter began (SQLAlchemy's execution
        costs more than the round trip); through SQLAlchemy where none has begun yet."""
        driver = (await conn.get_raw_connection()).driver_connection
        if driver is None or not driver.is_in_transaction():
            return await super().insert_audit_row(conn, values)
        return int(await driver.fetchval(_AUDIT_INSERT, *audit.driver_args(values)))


def postgres_store(url: str) -> SqlStore:
    engine = postgres_engine(url)
    return PostgresStore(engine, reads=autocommit_reads(engine))
