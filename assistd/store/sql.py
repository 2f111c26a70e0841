"""The SQL store: units of work over an async SQLAlchemy engine (SQLite or PostgreSQL)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from functools import cache
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Select, bindparam, delete, func, insert, inspect, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from assistd.core.objects import ApiKey, Workspace
from assistd.errors import Conflict
from assistd.store import audit, pg_driver, rows, schema
from assistd.store.base import (
    AssistantRepo,
    FileRepo,
    KnowledgeRepo,
    MessageRepo,
    PluginRepo,
    RunRepo,
    StepRepo,
    ThreadRepo,
    UsageRepo,
)
from assistd.store.knowledge import SqlKnowledgeRepo
from assistd.store.migrations import upgrade
from assistd.store.plugins import SqlPluginRepo
from assistd.store.prepared import kept
from assistd.store.repos import (
    SqlAssistantRepo,
    SqlFileRepo,
    SqlMessageRepo,
    SqlRunRepo,
    SqlStepRepo,
    SqlThreadRepo,
)
from assistd.store.transactions import read_transaction
from assistd.store.usage import SqlUsageRepo


class SqlWorkspaceUnit:
    def __init__(self, conn: AsyncConnection, workspace_id: str) -> None:
        self.workspace_id = workspace_id
        self.assistants: AssistantRepo = SqlAssistantRepo(conn, workspace_id)
        self.threads: ThreadRepo = SqlThreadRepo(conn, workspace_id)
        self.messages: MessageRepo = SqlMessageRepo(conn, workspace_id)
        self.files: FileRepo = SqlFileRepo(conn, workspace_id)
        self.runs: RunRepo = SqlRunRepo(conn, workspace_id)
        self.steps: StepRepo = SqlStepRepo(conn, workspace_id)
        self.plugins: PluginRepo = SqlPluginRepo(conn, workspace_id)
        self.knowledge: KnowledgeRepo = SqlKnowledgeRepo(conn, workspace_id)
        self.usage: UsageRepo = SqlUsageRepo(conn, workspace_id)


class SqlAdminUnit:
    def __init__(self, conn: AsyncConnection) -> None:
        self.conn = conn

    async def insert_workspace(self, workspace: Workspace) -> None:
        t = schema.workspaces
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(
                    insert(t).values(
                        id=workspace.id, name=workspace.name, created_at=workspace.created_at
                    )
                )
        except IntegrityError as exc:
            raise Conflict(f"A workspace named '{workspace.name}' already exists.") from exc
        audit.created(workspace.id)

    async def get_workspace(self, id_or_name: str) -> Workspace | None:
        t = schema.workspaces
        query = select(t).where((t.c.id == id_or_name) | (t.c.name == id_or_name)).order_by(t.c.seq)
        row = (await self.conn.execute(query)).first()
        return rows.workspace(row) if row is not None else None

    async def list_workspaces(self) -> list[Workspace]:
        t = schema.workspaces
        return [rows.workspace(r) for r in await self.conn.execute(select(t).order_by(t.c.seq))]

    async def insert_key(self, key: ApiKey, key_hash: str) -> None:
        values = {
            "id": key.id, "workspace_id": key.workspace_id, "key_hash": key_hash,
            "prefix": key.prefix, "name": key.name, "admin": key.admin,
            "created_at": key.created_at, "revoked_at": key.revoked_at,
            "bootstrap": key.bootstrap,
        }  # fmt: skip
        try:
            async with self.conn.begin_nested():
                await self.conn.execute(insert(schema.api_keys).values(values))
        except IntegrityError as exc:  # the same secret, registered by another process
            raise Conflict("This API key is already registered.") from exc
        audit.created(key.id)

    async def find_key(self, key_hash: str) -> ApiKey | None:
        t = schema.api_keys
        row = (await self.conn.execute(select(t).where(t.c.key_hash == key_hash))).first()
        return rows.api_key(row) if row is not None else None

    async def find_key_with_workspace(self, key_hash: str) -> tuple[ApiKey, Workspace] | None:
        row: Any
        if pg_driver.on_postgres(self.conn):  # every request's: one prepared statement
            found = await pg_driver.fetch(self.conn, _PG_KEY_WITH_WORKSPACE, key_hash)
            row = SimpleNamespace(**found[0]) if found else None
        else:
            row = (await self.conn.execute(_key_with_workspace(), {"k_hash": key_hash})).first()
        if row is None:
            return None
        own = Workspace(
            id=row.workspace_id, name=row.workspace_name, created_at=row.workspace_created_at,
            limits=row.workspace_limits,
        )  # fmt: skip
        return rows.api_key(row), own

    async def get_key(self, key_id: str) -> ApiKey | None:
        t = schema.api_keys
        row = (await self.conn.execute(select(t).where(t.c.id == key_id))).first()
        return rows.api_key(row) if row is not None else None

    async def list_keys(self, workspace_id: str | None = None) -> list[ApiKey]:
        t = schema.api_keys
        query = select(t).order_by(t.c.seq)
        if workspace_id is not None:
            query = query.where(t.c.workspace_id == workspace_id)
        return [rows.api_key(r) for r in await self.conn.execute(query)]

    async def revoke_key(self, key_id: str, at: int) -> bool:
        t = schema.api_keys
        query = update(t).where(t.c.id == key_id, t.c.revoked_at.is_(None)).values(revoked_at=at)
        return bool((await self.conn.execute(query)).rowcount)

    async def mark_bootstrap(self, key_id: str) -> None:
        t = schema.api_keys
        await self.conn.execute(update(t).where(t.c.id == key_id).values(bootstrap=True))

    async def workspace_contents(self, workspace_id: str) -> dict[str, int]:
        counts = {}
        for table in (schema.assistants, schema.threads, schema.files):
            query = select(func.count()).select_from(table)
            query = query.where(table.c.workspace_id == workspace_id)
            counts[table.name] = int((await self.conn.execute(query)).scalar_one())
        return counts

    async def delete_workspace(self, workspace_id: str) -> None:
        await SqlKnowledgeRepo(self.conn, workspace_id).purge_workspace()  # chunks' indexes
        # Every table whose rows belong to a workspace carries workspace_id.
        for table in reversed(schema.metadata.sorted_tables):
            if "workspace_id" in table.c:
                await self.conn.execute(delete(table).where(table.c.workspace_id == workspace_id))
        t = schema.workspaces
        await self.conn.execute(delete(t).where(t.c.id == workspace_id))


# _key_with_workspace through asyncpg itself (store/pg_driver.py): SQLAlchemy's execution
# was most of the lookup's time, and every request makes one.
_PG_KEY_WITH_WORKSPACE = (
    "SELECT k.id, k.workspace_id, k.prefix, k.name, k.admin, k.created_at, k.revoked_at, "
    "k.bootstrap, k.limits, w.name AS workspace_name, w.created_at AS workspace_created_at, "
    "w.limits AS workspace_limits FROM api_keys k JOIN workspaces w ON w.id = k.workspace_id "
    "WHERE k.key_hash = $1"
)


@cache
def _key_with_workspace() -> Select[Any]:
    """Every request's key lookup, built once (see repos.py)."""
    k, w = schema.api_keys, schema.workspaces
    columns = (
        w.c.name.label("workspace_name"), w.c.created_at.label("workspace_created_at"),
        w.c.limits.label("workspace_limits"),
    )  # fmt: skip
    query = select(k, *columns).join(w, w.c.id == k.c.workspace_id)
    return kept(query.where(k.c.key_hash == bindparam("k_hash")))


class SqlStore:
    """Shared by both databases; the dialect modules only build the engine."""

    def __init__(self, engine: AsyncEngine, reads: AsyncEngine | None = None) -> None:
        self.engine = engine
        self.reads = reads or engine  # read units' engine (PostgreSQL: autocommit)

    @property
    def parallel_reads(self) -> bool:
        """Whether one request gains from two read units at once: on PostgreSQL each is
        a server process of its own; SQLite's reader threads share this process and its
        GIL (a hybrid search with its two methods at once was slower, bench/README.md)."""
        return bool(self.engine.dialect.name == "postgresql")

    async def migrate(self) -> None:
        await upgrade(self.engine)

    def release_memory(self) -> None:
        """Gives back what the store's connections cache in this process, when idle
        (process_memory.MemorySettler); PostgreSQL's caches are the server's."""

    async def has_schema(self) -> bool:
        async with self.engine.connect() as conn:
            return await conn.run_sync(lambda c: inspect(c).has_table("alembic_version"))

    @asynccontextmanager
    async def _transaction(self, write: bool) -> AsyncIterator[AsyncConnection]:
        if not write:
            async with read_transaction(self.reads) as conn:
                yield conn
            return
        async with self.engine.connect() as conn:
            # Lets SQLite take its write lock up front (BEGIN IMMEDIATE), so a
            # transaction never fails half-way on a lock upgrade.
            await conn.execution_options(assistd_write=True)
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def workspace(
        self, workspace_id: str, *, write: bool = False, transaction: bool = False
    ) -> AsyncIterator[SqlWorkspaceUnit]:
        # A read asking for a transaction where reads run without one (PostgreSQL) gets
        # the writers' engine: there "write" only marks the connection for SQLite.
        in_transaction = write or (transaction and self.reads is not self.engine)
        recorded = None
        async with self._transaction(in_transaction) as conn:
            yield SqlWorkspaceUnit(conn, workspace_id)
            if write:  # the API call this change belongs to, recorded with it
                recorded = await audit.record_in(conn, self.insert_audit_row)
        if recorded is not None:
            recorded()

    @asynccontextmanager
    async def admin(self, *, write: bool = False) -> AsyncIterator[SqlAdminUnit]:
        recorded = None
        async with self._transaction(write) as conn:
            yield SqlAdminUnit(conn)
            if write:
                recorded = await audit.record_in(conn, self.insert_audit_row)
        if recorded is not None:
            recorded()

    async def insert_audit_row(self, conn: AsyncConnection, values: dict[str, Any]) -> int:
        """An audit log row in this transaction (store/audit.py); its seq."""
        return await audit.insert_row(conn, values)

    def connection(self, *, write: bool = False) -> AbstractAsyncContextManager[AsyncConnection]:
        """A transaction outside any unit (the audit log's own rows)."""
        return self._transaction(write)

    def writing(self) -> AbstractAsyncContextManager[AsyncConnection]:
        return self._transaction(True)

    async def runs_in(self, statuses: Sequence[str]) -> list[tuple[str, str, str]]:
        t = schema.runs
        query = select(t.c.workspace_id, t.c.thread_id, t.c.id).where(
            t.c.status.in_(list(statuses))
        )
        async with self._transaction(write=False) as conn:
            return [(r[0], r[1], r[2]) for r in await conn.execute(query.order_by(t.c.seq))]

    async def runs_expiring(self, now: int) -> list[tuple[str, str, str]]:
        t = schema.runs
        query = select(t.c.workspace_id, t.c.thread_id, t.c.id).where(
            t.c.status == "requires_action", t.c.expires_at < now
        )
        async with self._transaction(write=False) as conn:
            return [(r[0], r[1], r[2]) for r in await conn.execute(query)]

    async def files_ingesting(self) -> list[tuple[str, str, str]]:
        t = schema.vector_store_files
        query = select(t.c.workspace_id, t.c.vector_store_id, t.c.id).where(
            t.c.status == "in_progress"
        )
        async with self._transaction(write=False) as conn:
            return [(r[0], r[1], r[2]) for r in await conn.execute(query.order_by(t.c.seq))]

    async def close(self) -> None:
        await self.engine.dispose()
