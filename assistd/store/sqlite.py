"""SQLite through aiosqlite over sqlean-py (a sqlite3 build that can load extensions)."""

from __future__ import annotations

import asyncio
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
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, QueuePool

from assistd.errors import ServiceUnavailable
from assistd.store import audit, prepared, sqlite_direct
from assistd.store.sql import SqlStore
from assistd.store.writer_lock import WriterLock

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
    # Autocommit at the driver: transactions are begun explicitly (_begin, and
    # SqliteStore._start). SQLite never sleeps on a lock (busy_timeout=0): that would
    # stall the event loop; the store waits for another process's lock in naps instead.
    db = sqlean.connect(path, isolation_level=None, check_same_thread=False)
    for pragma in (
        "journal_mode=WAL", "synchronous=NORMAL", "busy_timeout=0",
        "foreign_keys=ON", "cache_size=-16000",
    ):  # fmt: skip
        db.execute(f"PRAGMA {pragma}")
    _load_vec(db)
    return db


def _load_vec(db: Any) -> None:
    """sqlite-vec, for the knowledge tables' vector search (sqlean can load extensions)."""
    import sqlite_vec

    db.enable_load_extension(True)
    try:
        db.load_extension(sqlite_vec.loadable_path())
    finally:
        db.enable_load_extension(False)


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
        hide_parameters=True,  # errors and logs never show values: they are tenant content
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
        hide_parameters=True,  # errors and logs never show values: they are tenant content
    )
    return engine  # SqliteStore begins its transactions itself, waiting for locks in naps


KEPT_CONNECTIONS = 8  # the pool's size
_AUDIT_INSERT = audit.driver_insert(["?"] * len(audit.COLUMNS))
SQLITE_BUSY = 5  # its extended codes (BUSY_RECOVERY, BUSY_SNAPSHOT, ...) share the low byte
_FIRST_NAP_S = 0.001
_LONGEST_NAP_S = 0.05  # a freed lock is taken within this


def _is_busy(exc: BaseException) -> bool:
    """SQLITE_BUSY: another connection (another process) holds a lock this one needs."""
    error = exc.orig if isinstance(exc, DBAPIError) else exc
    code = getattr(error, "sqlite_errorcode", None)
    return isinstance(code, int) and code & 0xFF == SQLITE_BUSY


def _busy() -> ServiceUnavailable:
    return ServiceUnavailable(
        "The database is busy: another process holds its lock. Nothing was changed; retry shortly."
    )


class _BusyWait:
    """Naps on the event loop, ever longer, until a deadline (loop time), then gives up
    with 503."""

    def __init__(self, deadline: float) -> None:
        self._loop = asyncio.get_running_loop()
        self._deadline = deadline
        self._nap = _FIRST_NAP_S

    async def nap(self, busy: BaseException) -> None:
        left = self._deadline - self._loop.time()
        if left <= 0:
            raise _busy() from busy
        await asyncio.sleep(min(self._nap, left))
        self._nap = min(self._nap * 2, _LONGEST_NAP_S)


class _LoopConnection:
    """What the repositories use of an AsyncConnection, over a plain connection whose
    statements run right here, on the event loop's thread."""

    def __init__(self, conn: Connection) -> None:
        self.sync_connection = conn
        self._driver: Any = None

    async def execute(self, statement: Any, parameters: Any = None) -> Any:
        if parameters and prepared.is_kept(statement):
            many = parameters if isinstance(parameters, list) else [parameters]
            dialect = self.sync_connection.dialect
            plan = sqlite_direct.plan_for(statement, many, dialect)
            if plan is not None:  # on the driver (store/sqlite_direct.py)
                if self._driver is None:
                    self._driver = self.sync_connection.connection.driver_connection
                return sqlite_direct.execute(self._driver, plan, many, dialect)
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
    bridge does. Migrations keep the async engine.

    SQLite lets one transaction write at a time, and a writer that finds the lock taken
    sleeps and retries for ever longer naps, so with a few dozen concurrent writers most
    of the time would go on naps while the lock is free. Queueing this process's writers
    here hands the lock over at once and keeps waiting writers from holding pool
    connections. Another process (the CLI, a backup) may still hold it: then the writer
    ahead naps on the loop, and every writer gives up with 503 once it has waited
    busy_timeout_s in all; reads go on meanwhile (WAL)."""

    def __init__(self, url: str, busy_timeout_s: float = 5.0) -> None:
        super().__init__(sqlite_engine(url))
        self.sync_engine = sqlite_sync_engine(url)
        self.busy_timeout_s = busy_timeout_s
        self._writer: tuple[asyncio.AbstractEventLoop, WriterLock] | None = None
        self._idle: list[Connection] = []  # checked out, between transactions

    async def migrate(self) -> None:
        wait = _BusyWait(asyncio.get_running_loop().time() + self.busy_timeout_s)
        while True:
            try:
                return await super().migrate()  # one transaction: a retry starts afresh
            except DBAPIError as exc:
                if not _is_busy(exc):
                    raise
                await wait.nap(exc)

    def _write_lock(self) -> WriterLock:
        loop = asyncio.get_running_loop()
        if self._writer is None or self._writer[0] is not loop:
            self._writer = (loop, WriterLock())
        return self._writer[1]

    async def _writers_turn(self, deadline: float) -> WriterLock:
        lock = self._write_lock()
        if not lock.locked():
            await lock.acquire()
            return lock
        try:  # the writer ahead may be waiting for another process: wait no longer
            async with asyncio.timeout_at(deadline):
                await lock.acquire()
        except TimeoutError as exc:
            raise _busy() from exc
        return lock

    @asynccontextmanager
    async def _transaction(self, write: bool) -> AsyncIterator[AsyncConnection]:
        deadline = asyncio.get_running_loop().time() + self.busy_timeout_s if write else None
        lock = await self._writers_turn(deadline) if deadline is not None else None
        conn = self._idle.pop() if self._idle else self.sync_engine.connect()
        try:
            with conn.begin():
                await self._start(conn, deadline)
                yield cast(AsyncConnection, _LoopConnection(conn))
        except DBAPIError as exc:  # rolled back by now: nothing was changed
            # A write holds its lock from BEGIN IMMEDIATE on, and a read in WAL mode needs
            # none that another process holds, short of exclusive locking mode or WAL
            # recovery: a lock met inside a transaction is not waited for.
            if _is_busy(exc):
                raise _busy() from exc
            raise
        finally:
            self._put_back(conn)
            if lock is not None:
                lock.release()

    def _put_back(self, conn: Connection) -> None:
        """Keeps a connection for the next transaction: checking one out of the pool and
        back costs SQLAlchemy more than a short transaction's statements do."""
        kept = not (conn.invalidated or conn.closed or conn.in_transaction())
        if kept and len(self._idle) < KEPT_CONNECTIONS:
            self._idle.append(conn)
        else:
            conn.close()

    async def _start(self, conn: Connection, write_deadline: float | None) -> None:
        """BEGIN on the driver (SQLAlchemy's begin() emits nothing for SQLite). A write
        takes the lock up front (IMMEDIATE), so it never fails half-way on an upgrade."""
        driver = conn.connection.driver_connection
        assert driver is not None
        if write_deadline is None:
            driver.execute("BEGIN DEFERRED")
            return
        wait: _BusyWait | None = None
        while True:
            try:
                driver.execute("BEGIN IMMEDIATE")
                return
            except sqlean.OperationalError as exc:
                if not _is_busy(exc):
                    raise
                wait = wait or _BusyWait(write_deadline)
                await wait.nap(exc)

    def release_memory(self) -> None:
        """Each kept connection's page cache filled (up to cache_size) with the pages a
        load wrote; freed now, the heap can give their memory back. They fill again from
        the database file, which the system's page cache most likely still holds."""
        for conn in self._idle:
            driver = conn.connection.driver_connection
            if driver is not None:
                driver.execute("PRAGMA shrink_memory")

    async def insert_audit_row(self, conn: AsyncConnection, values: dict[str, Any]) -> int:
        """On the driver: a sixth of the time SQLAlchemy's execution of it takes."""
        driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        assert driver is not None
        cursor = driver.execute(_AUDIT_INSERT, audit.driver_args(values))
        return int(cursor.lastrowid)

    async def close(self) -> None:
        while self._idle:
            self._idle.pop().close()
        self.sync_engine.dispose()
        await super().close()


def sqlite_store(url: str, busy_timeout_s: float = 5.0) -> SqlStore:
    return SqliteStore(url, busy_timeout_s)
