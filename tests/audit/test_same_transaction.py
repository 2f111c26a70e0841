"""A call's audit record commits or rolls back with its change: the store's write units
write the open entry's row in their own transaction. Real stores (a SQLite file, a
PostgreSQL database), driven as a request drives them."""

from __future__ import annotations

import secrets

import pytest
from sqlalchemy import select

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import Thread
from assistd.store import audit, schema
from assistd.store.audit import AuditEntry
from assistd.store.sql import SqlStore
from tests.support.store import new_workspace


class Refused(Exception):
    pass


async def _rows(store: SqlStore, request_id: str) -> list[dict[str, object]]:
    t = schema.audit_log
    async with store.connection() as conn:
        found = await conn.execute(select(t).where(t.c.request_id == request_id))
        return [dict(r._mapping) for r in found]


def _entry() -> AuditEntry:
    return AuditEntry(
        at=now_ms(), method="POST", path="/v1/threads", route="/v1/threads",
        request_id=secrets.token_hex(8), key_id="key_x", workspace="ws_x",
    )  # fmt: skip


async def test_a_rolled_back_change_takes_its_record_with_it(store: SqlStore) -> None:
    ws = await new_workspace(store)
    entry = _entry()
    token = audit.current.set(entry)
    try:
        with pytest.raises(Refused):
            async with store.workspace(ws, write=True) as unit:
                await unit.threads.insert(Thread(new_id("thread"), now_ms()))
                raise Refused
    finally:
        audit.current.reset(token)
    assert await _rows(store, str(entry.request_id)) == []
    assert entry.seq is None  # so the call's end writes its failure in a row of its own
    await audit.finish(store.writing, entry, 400, "invalid_request_error")
    (row,) = await _rows(store, str(entry.request_id))
    assert (row["status"], row["error_code"]) == (400, "invalid_request_error")


async def test_a_committed_change_has_its_record_in_the_same_commit(store: SqlStore) -> None:
    ws = await new_workspace(store)
    entry = _entry()
    thread = Thread(new_id("thread"), now_ms())
    token = audit.current.set(entry)
    try:
        async with store.workspace(ws, write=True) as unit:
            await unit.threads.insert(thread)
            assert await _rows(store, str(entry.request_id)) == []  # not before the commit
        async with store.workspace(ws, write=True) as unit:  # a second unit: no second row
            await unit.threads.set_metadata(thread.id, {"k": "v"})
    finally:
        audit.current.reset(token)
    (row,) = await _rows(store, str(entry.request_id))
    assert row["seq"] == entry.seq
    assert (row["status"], row["object_ids"]) == (200, f" {thread.id} ")
    await audit.finish(store.writing, entry, 200, None)  # nothing more to say
    assert await _rows(store, str(entry.request_id)) == [row]
    await audit.finish(store.writing, entry, 500, "internal")  # a later step failed
    (failed,) = await _rows(store, str(entry.request_id))
    assert (failed["status"], failed["error_code"]) == (500, "internal")


async def test_units_outside_a_call_write_no_record(store: SqlStore) -> None:
    ws = await new_workspace(store)
    t = schema.audit_log
    async with store.connection() as conn:
        before = len((await conn.execute(select(t.c.seq))).all())
    async with store.workspace(ws, write=True) as unit:
        await unit.threads.insert(Thread(new_id("thread"), now_ms()))
    async with store.connection() as conn:
        assert len((await conn.execute(select(t.c.seq))).all()) == before
