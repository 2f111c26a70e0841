"""PostgreSQL through asyncpg.

Read units run in autocommit: PostgreSQL's default isolation (READ COMMITTED) gives
every statement its own snapshot, inside a transaction or not, so a read unit sees the
same data either way, without the two round trips of BEGIN and COMMIT. A read unit that
writes would lose its atomicity that way, so a write there raises instead."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from assistd.store.sql import SqlStore


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def postgres_engine(url: str) -> AsyncEngine:
    return create_async_engine(
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


def postgres_store(url: str) -> SqlStore:
    engine = postgres_engine(url)
    return SqlStore(engine, reads=autocommit_reads(engine))
