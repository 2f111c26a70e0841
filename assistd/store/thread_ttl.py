"""The SQL of thread time-to-live: which threads are idle past their TTL, deleting one with
the files only it used, the workspaces' TTLs, and the sweepers' lock.

A thread's TTL is its own (`threads.ttl_s`), else its workspace's (`workspaces.thread_ttl_s`),
else the server's; 0 or none at all: it never expires. Idle since `last_active_at`, or
`created_at` while nothing was added to it. A thread with an unfinished run never expires.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    BigInteger,
    ColumnElement,
    Text,
    cast,
    exists,
    func,
    literal,
    not_,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from assistd.store import schema
from assistd.store.repos import ACTIVE_STATUSES, SqlFileRepo, SqlThreadRepo
from assistd.store.transactions import Writing, read_transaction

LOCK_KEY = 0x6A55_7717  # the PostgreSQL advisory lock of the thread sweep


@dataclass(frozen=True, slots=True)
class IdleThread:
    workspace_id: str
    thread_id: str
    last_active_at: int  # ms
    ttl_s: int


def _idle_query(now_ms: int, server_ttl: int | None) -> Any:
    t, w, r = schema.threads, schema.workspaces, schema.runs
    ttl = func.coalesce(t.c.ttl_s, w.c.thread_ttl_s, literal(server_ttl, BigInteger))
    since = func.coalesce(t.c.last_active_at, t.c.created_at)
    active = exists().where(
        r.c.workspace_id == t.c.workspace_id, r.c.thread_id == t.c.id,
        r.c.status.in_(ACTIVE_STATUSES),
    )  # fmt: skip
    query = select(t.c.workspace_id, t.c.id, since.label("since"), ttl.label("ttl"))
    query = query.join(w, w.c.id == t.c.workspace_id)
    return query.where(ttl > 0, since + ttl * 1000 <= now_ms, not_(active))


async def idle_threads(
    engine: AsyncEngine, now_ms: int, server_ttl: int | None, limit: int,
    workspace_id: str | None = None,
) -> list[IdleThread]:  # fmt: skip
    """Up to `limit` threads idle past their TTL, the longest idle first."""
    query = _idle_query(now_ms, server_ttl)
    if workspace_id is not None:
        query = query.where(schema.threads.c.workspace_id == workspace_id)
    query = query.order_by(text("since"), schema.threads.c.seq).limit(limit)
    async with read_transaction(engine) as conn:
        found = await conn.execute(query)
        return [IdleThread(r[0], r[1], int(r[2]), int(r[3])) for r in found]


async def expire_thread(
    writing: Writing, idle: IdleThread, now_ms: int, server_ttl: int | None
) -> list[str] | None:
    """Deletes the thread if it is still idle past its TTL (checked again under the
    write lock: a message or run may have come since it was listed), with its messages,
    runs and steps, and the files nothing else uses. The files' ids, or None if kept."""
    ws, thread_id = idle.workspace_id, idle.thread_id
    async with writing() as conn:
        threads = SqlThreadRepo(conn, ws)
        if await threads.lock(thread_id) is None:
            return None
        still = _idle_query(now_ms, server_ttl).where(schema.threads.c.id == thread_id)
        if (await conn.execute(still.where(schema.threads.c.workspace_id == ws))).first() is None:
            return None
        files = await _files_of(conn, ws, thread_id)
        await threads.delete(thread_id)
        gone = [f for f in sorted(files) if not await _used(conn, ws, f)]
        repo = SqlFileRepo(conn, ws)
        for file_id in gone:
            await repo.delete(file_id)
        return gone


async def _files_of(conn: AsyncConnection, ws: str, thread_id: str) -> set[str]:
    """Every file the thread names: its own, its messages' (attachments and files in
    their content, such as a code interpreter's images) and those in its runs' steps."""
    t, m, s = schema.threads, schema.messages, schema.run_steps
    found: set[str] = set()
    own = await conn.execute(
        select(t.c.file_ids).where(t.c.workspace_id == ws, t.c.id == thread_id)
    )
    for (ids,) in own:
        found.update(ids or [])
    columns = (m.c.file_ids, m.c.content)
    for ids, content in await conn.execute(
        select(*columns).where(m.c.workspace_id == ws, m.c.thread_id == thread_id)
    ):
        found.update(ids or [])
        found.update(_named_files(content))
    for (details,) in await conn.execute(
        select(s.c.step_details).where(s.c.workspace_id == ws, s.c.thread_id == thread_id)
    ):
        found.update(_named_files(details))
    return found


def _named_files(value: Any) -> Iterable[str]:
    """The values of every `file_id` key in a JSON document."""
    if isinstance(value, dict):
        for key, item in value.items():
            if key == "file_id" and isinstance(item, str):
                yield item
            else:
                yield from _named_files(item)
    elif isinstance(value, list):
        for item in value:
            yield from _named_files(item)


def _mentions(column: Any, file_id: str) -> ColumnElement[bool]:
    # A JSON document naming the file holds it as a quoted string; `_` in an id is a LIKE
    # wildcard, which can only make a file look used (kept), never unused.
    return cast(column, Text).like(f'%"{file_id}"%')


async def _used(conn: AsyncConnection, ws: str, file_id: str) -> bool:
    """Whether anything left in the workspace uses the file: an assistant, a vector store,
    another thread, message, run or step."""
    a, vs = schema.assistant_files, schema.vector_store_files
    t, m, r, s = schema.threads, schema.messages, schema.runs, schema.run_steps
    uses = [
        exists().where(a.c.workspace_id == ws, a.c.file_id == file_id),
        exists().where(vs.c.workspace_id == ws, vs.c.id == file_id),
        exists().where(t.c.workspace_id == ws, _mentions(t.c.file_ids, file_id)),
        exists().where(
            m.c.workspace_id == ws,
            or_(_mentions(m.c.file_ids, file_id), _mentions(m.c.content, file_id)),
        ),
        exists().where(r.c.workspace_id == ws, _mentions(r.c.file_ids, file_id)),
        exists().where(s.c.workspace_id == ws, _mentions(s.c.step_details, file_id)),
    ]
    return bool((await conn.execute(select(or_(*uses)))).scalar())


async def workspace_ttl(engine: AsyncEngine, workspace_id: str) -> int | None:
    w = schema.workspaces
    async with read_transaction(engine) as conn:
        query = select(w.c.thread_ttl_s).where(w.c.id == workspace_id)
        value = (await conn.execute(query)).scalar()
        return int(value) if value is not None else None


async def set_workspace_ttl(writing: Writing, workspace_id: str, ttl_s: int | None) -> None:
    w = schema.workspaces
    async with writing() as conn:
        await conn.execute(update(w).where(w.c.id == workspace_id).values(thread_ttl_s=ttl_s))


@asynccontextmanager
async def sweep_lock(engine: AsyncEngine) -> AsyncIterator[bool]:
    """Whether this process may sweep now. On PostgreSQL a session advisory lock, held on
    a connection outside any transaction, so that of several processes (replicas,
    workers, the CLI) one sweeps at a time; SQLite has one server process, and each
    deletion is checked again under the database's write lock anyway."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    async with engine.connect() as conn:
        await conn.execution_options(isolation_level="AUTOCOMMIT")
        got = bool((await conn.execute(select(func.pg_try_advisory_lock(LOCK_KEY)))).scalar())
        try:
            yield got
        finally:
            if got:
                await conn.execute(select(func.pg_advisory_unlock(LOCK_KEY)))
