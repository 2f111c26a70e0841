"""SQLite through aiosqlite over sqlean-py (a sqlite3 build that can load extensions)."""

from __future__ import annotations

import errno
import os
import stat
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from functools import partial
from pathlib import Path
from typing import Any, cast

import aiosqlite
import orjson
import sqlean
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.dialects.sqlite.aiosqlite import AsyncAdapt_aiosqlite_dbapi
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

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


def _open_db(path: str) -> Any:
    # Autocommit at the driver: transactions are begun explicitly (see _begin).
    db = sqlean.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=10000",
        "foreign_keys=ON", "cache_size=-16000",
    ):  # fmt: skip
        db.execute(f"PRAGMA {pragma}")
    return db


def _connector(path: str) -> Any:
    async def connect() -> aiosqlite.Connection:
        conn = aiosqlite.Connection(partial(_open_db, path), iter_chunk_size=64)
        worker = getattr(conn, "_thread", None)
        if isinstance(worker, threading.Thread):
            worker.daemon = True  # never keep the process alive for an idle pool connection
        return await conn

    return connect


def private_dir(path: Path, *, tighten: bool = False) -> None:
    """Makes `path` a directory only its owner may enter (0700). With `tighten`, an existing
    one loses its group and other permissions too, unless it is a shared (sticky) one."""
    if path.exists() and not path.is_dir():
        raise NotADirectoryError(errno.ENOTDIR, "this is a file, not a directory", str(path))
    if not path.exists():
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        return
    mode = path.stat().st_mode
    if tighten and mode & 0o077 and not mode & stat.S_ISVTX:
        _chmod(path, stat.S_IMODE(mode) & 0o700)


def _chmod(path: Path, mode: int) -> None:
    with suppress(PermissionError):  # not ours (a shared mount, another user's): leave it
        path.chmod(mode)


def private_database(path: Path) -> None:
    """Creates the database file readable by its owner only (SQLite gives its -wal and -shm
    files the database's mode), and takes group and other permissions off existing ones."""
    private_dir(path.parent)
    with suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
    for name in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        mode = name.stat().st_mode if name.exists() else 0
        if mode & 0o077:
            _chmod(name, stat.S_IMODE(mode) & 0o700)


def _begin(conn: Connection) -> None:
    mode = "IMMEDIATE" if conn.get_execution_options().get("assistd_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def sqlite_engine(url: str) -> AsyncEngine:
    path = url.split(":///", 1)[1]
    if path and path != ":memory:":
        private_database(Path(path))
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


def sqlite_sync_engine(url: str) -> Engine:
    path = url.split(":///", 1)[1]
    engine = create_engine(
        "sqlite+pysqlite:///" + path,
        module=sqlean,
        creator=partial(_open_db, path),
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
        poolclass=QueuePool,
        pool_size=8,
        max_overflow=-1,  # never make the event loop wait for a connection
    )
    event.listen(engine, "begin", _begin)
    return engine


class _LoopConnection:
    """What the repositories use of an AsyncConnection, over a plain connection whose
    statements run right here, on the event loop's thread."""

    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        return self.sync_connection.execute(statement, parameters)

    async def exec_driver_sql(self, statement: str, parameters: Any = None) -> Any:
        return self.sync_connection.exec_driver_sql(statement, parameters)

    @asynccontextmanager
    async def begin_nested(self) -> AsyncIterator[Any]:
        with self.sync_connection.begin_nested() as nested:
            yield nested


class SqliteStore(SqlStore):
    """SQLite statements take microseconds: run on the event loop's own thread, they cost
    a sixth of the CPU that a trip through aiosqlite's thread and SQLAlchemy's greenlet
    bridge does. Writers queue in-process (SqlStore one_writer), so BEGIN IMMEDIATE never
    waits here, except on another process (the CLI), up to busy_timeout. Migrations keep
    the async engine."""

    def __init__(self, url: str) -> None:
        super().__init__(sqlite_engine(url), one_writer=True)
        self.sync_engine = sqlite_sync_engine(url)

    @asynccontextmanager
    async def _open(self, write: bool) -> AsyncIterator[AsyncConnection]:
        with self.sync_engine.connect() as conn:
            if write:
                conn = conn.execution_options(assistd_write=True)
            with conn.begin():
                yield cast(AsyncConnection, _LoopConnection(conn))

    async def close(self) -> None:
        self.sync_engine.dispose()
        await super().close()


def sqlite_store(url: str) -> SqlStore:
    return SqliteStore(url)
