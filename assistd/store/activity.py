"""A thread's last activity, kept for its time-to-live (core/thread_ttl.py): one indexed
UPDATE beside each message or run insert, in the same transaction."""

from __future__ import annotations

from functools import cache

from sqlalchemy import Update, bindparam, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import schema


@cache
def _touch() -> Update:
    t = schema.threads
    query = update(t).where(t.c.workspace_id == bindparam("k_ws"), t.c.id == bindparam("k_id"))
    return query.values(last_active_at=bindparam("at"))


async def touch_thread(conn: AsyncConnection, workspace_id: str, thread_id: str, at: int) -> None:
    await conn.execute(_touch(), {"k_ws": workspace_id, "k_id": thread_id, "at": at})
