"""One serving process per store: a file lock in the SQLite data dir (holding the PID), or
a PostgreSQL advisory lock held by one connection for the server's life.

At start a server takes over every run left `in_progress`. That is sound only when no
other live process is executing those runs, and holding this lock is what makes it true:
a second server on the same store refuses to start instead of taking over the first
one's runs. Only the embedded shape takes it: the distributed shape (redis_url) runs many
processes on one PostgreSQL database, whose runs are leased to workers and taken over only
once a lease lapses. The CLI's admin commands (key, workspace, migrate) don't take the
lock, so they keep working next to a running server.
"""

from __future__ import annotations

import fcntl
import os
import re
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncConnection, create_async_engine
from sqlalchemy.pool import NullPool

from assistd.errors import StartupError
from assistd.settings import Settings
from assistd.urls import redact_url

CONNECT_TIMEOUT_S = 10
# The two int4 keys of pg_try_advisory_lock: "assi" and 1, the serving lock.
_PG_KEYS = {"a": 0x61737369, "b": 1}
_HOLDER = re.compile(r"pid=(\d+) host=(\S+)")


@asynccontextmanager
async def server_lock(settings: Settings) -> AsyncIterator[None]:
    """Holds the store's serving lock until the block ends (or the process does)."""
    if settings.uses_sqlite:
        with _sqlite_lock(settings):
            yield
    else:
        async with _postgres_lock(settings.resolved_database_url):
            yield


# ---- SQLite: a file lock next to the database ------------------------------------------


def _sqlite_file(settings: Settings) -> Path | None:
    path = settings.resolved_database_url.split(":///", 1)[1]
    return None if path in ("", ":memory:") else Path(path).resolve()


def _open_lock_file(where: Path, lock: Path) -> int:
    if where.exists() and not where.is_dir():
        raise StartupError(f"the data dir {where} is a file, not a directory")
    try:
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        os.fchmod(fd, 0o600)  # one an older version left readable is tightened too
        return fd
    except OSError as exc:
        raise StartupError(f"cannot use the data dir {where}: {exc.strerror}") from None


@contextmanager
def _sqlite_lock(settings: Settings) -> Iterator[None]:
    database = _sqlite_file(settings)
    if database is None:
        yield
        return
    fd = _open_lock_file(database.parent, database.with_name(database.name + ".lock"))
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            what, other = (
                (f"the data dir {database.parent}", "--data-dir")
                if not settings.database_url
                else (f"the SQLite database {database}", "database_url")
            )
            raise StartupError(
                f"{what} is in use by another assistd server (PID {holder}); "
                f"stop that server first, or give this one another {other}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # closing the descriptor releases the lock


# ---- PostgreSQL: an advisory lock held by one connection --------------------------------


def _unreachable(url: str, exc: BaseException) -> StartupError:
    if isinstance(exc, DBAPIError):
        reason = str(exc.orig)
    elif isinstance(exc, ConnectionRefusedError):
        reason = "connection refused (is PostgreSQL running and listening there?)"
    elif isinstance(exc, socket.gaierror):
        reason = f"unknown host ({exc.strerror})"
    elif isinstance(exc, TimeoutError):
        reason = f"no answer within {CONNECT_TIMEOUT_S} s"
    else:
        reason = (exc.strerror if isinstance(exc, OSError) else None) or str(exc)
    return StartupError(f"cannot connect to PostgreSQL at {redact_url(url)}: {reason}")


async def _holder(conn: AsyncConnection) -> str:
    """Who holds the lock, from the application name its connection set."""
    found = await conn.execute(
        text(
            "SELECT a.application_name FROM pg_locks l JOIN pg_stat_activity a USING (pid) "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.classid::bigint = :a "
            "AND l.objid::bigint = :b AND l.objsubid = 2 AND a.datname = current_database()"
        ),
        _PG_KEYS,
    )
    match = _HOLDER.search(str(found.scalar() or ""))
    return f" (PID {match.group(1)} on {match.group(2)})" if match else ""


@asynccontextmanager
async def postgres_session(url: str, purpose: str) -> AsyncIterator[AsyncConnection]:
    """One connection of its own, named after `purpose` and this process in
    pg_stat_activity; StartupError naming the URL (password masked) if none can be made."""
    # Keepalives let PostgreSQL notice a vanished server (and free its lock) in about a
    # minute instead of the system default of two hours.
    name = f"assistd {purpose} pid={os.getpid()} host={socket.gethostname()}"
    server_settings = {
        "application_name": name[:63],
        "tcp_keepalives_idle": "30",
        "tcp_keepalives_interval": "10",
        "tcp_keepalives_count": "3",
    }
    engine = create_async_engine(
        url,
        poolclass=NullPool,
        connect_args={"timeout": CONNECT_TIMEOUT_S, "server_settings": server_settings},
    )
    try:
        try:
            conn = await engine.connect()
        except (OSError, TimeoutError, DBAPIError) as exc:
            raise _unreachable(url, exc) from None
        try:
            yield conn
        finally:
            await conn.close()  # ends the session, and with it any lock it holds
    finally:
        await engine.dispose()


@asynccontextmanager
async def _postgres_lock(url: str) -> AsyncIterator[None]:
    async with postgres_session(url, "serve") as conn:
        got = await conn.scalar(text("SELECT pg_try_advisory_lock(:a, :b)"), _PG_KEYS)
        if not got:
            raise StartupError(
                f"the PostgreSQL database {redact_url(url)} is in use by another assistd "
                f"server{await _holder(conn)}; without redis_url one server serves a "
                "database: stop that server first, point this one at another database, or "
                "run the distributed shape (redis_url) to serve it from several processes"
            )
        await conn.commit()  # the lock is the session's; it outlives the transaction
        yield
