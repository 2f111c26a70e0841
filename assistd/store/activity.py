"""A thread's last activity, kept for its time-to-live (core/thread_ttl.py): one indexed
UPDATE beside each message or run insert, in the same transaction."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Update, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.errors import NotFound
from assistd.store import schema
from assistd.store.prepared import kept


@cache
def _touch() -> Update:
    t = schema.threads
    query = update(t).where(t.c.workspace_id == bindparam("k_ws"), t.c.id == bindparam("k_id"))
    return kept(query.values(last_active_at=bindparam("at")))


async def touch_thread(conn: AsyncConnection, workspace_id: str, thread_id: str, at: int) -> None:
    """NotFound when the thread is gone: the TTL sweep deleted it after the caller read it
    (on PostgreSQL this UPDATE waited for the sweep's row lock), so nothing is added to a
    thread that no longer exists."""
    params = {"k_ws": workspace_id, "k_id": thread_id, "at": at}
    if not (await conn.execute(_touch(), params)).rowcount:
        raise NotFound.of("thread", thread_id)
