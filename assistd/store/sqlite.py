"""SQLite through aiosqlite over sqlean-py (a sqlite3 build that can load extensions)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import aiosqlite
import orjson
import sqlean
from sqlalchemy import event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool

from assistd.store.sql import SqlStore

_ERROR_NAMES = (
    "DatabaseError", "Error", "IntegrityError", "NotSupportedError",
    "OperationalError", "ProgrammingError", "InterfaceError", "InternalError", "DataError",
)  # fmt: skip


class _SqleanDbapi(AsyncAdapt_aiosqlite_dbapi):
    """SQLAlchemy's aiosqlite shim, with sqlean's exception classes so errors map correctly."""

    def __init__(self) -> None:
        super().__init__(aiosqlite, sqlean)

    def _init_dbapi_attributes(self) -> None:
        super()._init_dbapi_attributes()
        for name in _ERROR_NAMES:
            setattr(self, name, getattr(sqlean, name))


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def _connector(path: str) -> Any:
    async def connect() -> aiosqlite.Connection:
        def open_db() -> Any:
            # Autocommit at the driver: transactions are begun explicitly below.
            db = sqlean.connect(path, isolation_level=None, check_same_thread=False)
            for pragma in (
                "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
                "foreign_keys=ON", "cache_size=-16000",
            ):  # fmt: skip
                db.execute(f"PRAGMA {pragma}")
            return db

        conn = aiosqlite.Connection(open_db, iter_chunk_size=64)
        worker = getattr(conn, "_thread", None)
        if isinstance(worker, threading.Thread):
            worker.daemon = True  # never keep the process alive for an idle pool connection
        return await conn

    return connect


def _begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("assistd_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def sqlite_engine(url: str) -> AsyncEngine:
    path = url.split(":///", 1)[1]
    if path and path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(
        url,
        module=_SqleanDbapi(),
        async_creator=_connector(path),
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        poolclass=AsyncAdaptedQueuePool,
        pool_size=8,
        max_overflow=8,
    )
    event.listen(engine.sync_engine, "begin", _begin)
    return engine


def sqlite_store(url: str) -> SqlStore:
    return SqlStore(sqlite_engine(url))
