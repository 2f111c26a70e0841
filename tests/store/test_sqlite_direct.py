"""Kept statements on SQLite run on the driver (store/sqlite_direct.py): what they write
and read is what SQLAlchemy's execution of the same statements writes and reads, their
errors are SQLAlchemy's, and a statement that needs more of SQLAlchemy still gets it.

A real SQLite store; each comparison runs the same statement both ways on it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import Message, Run, Thread
from assistd.settings import Settings
from assistd.store import rows, schema, sqlite_direct
from assistd.store.factory import open_store
from assistd.store.paging import first_page_by
from assistd.store.repos import insert_into, select_by
from assistd.store.sql import SqlStore
from tests.support.store import new_workspace


@pytest_asyncio.fixture
async def sqlite(tmp_path: Path) -> AsyncIterator[SqlStore]:
    opened = open_store(Settings(data_dir=tmp_path))
    try:
        await opened.migrate()
        yield opened
    finally:
        await opened.close()


def _run_values(ws: str, thread_id: str) -> dict[str, Any]:
    run = Run(new_id("run"), thread_id, new_id("asst"), now_ms(), "queued", "m")
    run.tools = [{"type": "function", "function": {"name": "f", "parameters": {}}}]
    return {**rows.run_values(run), "id": run.id, "thread_id": thread_id, "workspace_id": ws,
            "assistant_id": run.assistant_id, "created_at": run.created_at}  # fmt: skip


async def _thread(store: SqlStore, ws: str) -> str:
    thread = Thread(new_id("thread"), now_ms())
    async with store.workspace(ws, write=True) as unit:
        await unit.threads.insert(thread)
    return thread.id


def _messages(thread_id: str, count: int) -> list[Message]:
    return [
        Message(new_id("msg"), thread_id, now_ms(), "user", [{"type": "text", "text": str(i)}])
        for i in range(count)
    ]


def _direct(conn: Any, statement: Any, values: Any) -> bool:
    many = values if isinstance(values, list) else [values]
    return sqlite_direct.plan_for(statement, many, conn.sync_connection.dialect) is not None


async def _stored(store: SqlStore, table: str, ids: list[str]) -> list[tuple[Any, ...]]:
    """The rows as SQLite holds them (JSON as its text), without their ids and seq."""
    async with store.connection() as conn:
        driver = conn.sync_connection.connection.driver_connection  # type: ignore[union-attr]
        marks = ", ".join("?" * len(ids))
        cursor = driver.execute(f"SELECT * FROM {table} WHERE id IN ({marks}) ORDER BY seq", ids)
        names = [d[0] for d in cursor.description]
        return [
            tuple(v for n, v in zip(names, row, strict=True) if n not in ("seq", "id"))
            for row in cursor.fetchall()
        ]


async def test_a_kept_insert_writes_what_sqlalchemy_writes(sqlite: SqlStore) -> None:
    ws = await new_workspace(sqlite)
    thread_id = await _thread(sqlite, ws)
    direct, through = _run_values(ws, thread_id), _run_values(ws, thread_id)
    through.update(created_at=direct["created_at"], assistant_id=direct["assistant_id"])
    assert direct["required_action"] is None and direct["last_error"] is None  # JSON nulls
    statement = insert_into(schema.runs)
    async with sqlite.connection(write=True) as conn:
        assert _direct(conn, statement, direct)
        await conn.execute(statement, direct)
        conn.sync_connection.execute(statement, through)  # type: ignore[union-attr]
    written = await _stored(sqlite, "runs", [direct["id"], through["id"]])
    assert len(written) == 2 and written[0] == written[1]


async def test_a_kept_select_reads_what_sqlalchemy_reads(sqlite: SqlStore) -> None:
    ws = await new_workspace(sqlite)
    thread_id = await _thread(sqlite, ws)
    values = _run_values(ws, thread_id)
    async with sqlite.connection(write=True) as conn:
        await conn.execute(insert_into(schema.runs), values)
    statement = select_by(schema.runs, ("thread_id", "id"))
    keys = {"k_ws": ws, "k_thread_id": thread_id, "k_id": values["id"]}
    async with sqlite.connection() as conn:
        assert _direct(conn, statement, keys)
        direct = (await conn.execute(statement, keys)).first()
        through = conn.sync_connection.execute(statement, keys).first()  # type: ignore[union-attr]
    assert direct is not None and through is not None
    assert direct._mapping == dict(through._mapping)
    assert direct.tools == values["tools"] and direct.required_action is None
    assert rows.run(direct) == rows.run(through)


async def test_a_duplicate_is_sqlalchemys_integrity_error(sqlite: SqlStore) -> None:
    ws = await new_workspace(sqlite)
    thread_id = await _thread(sqlite, ws)
    values = _run_values(ws, thread_id)
    statement = insert_into(schema.runs)
    async with sqlite.connection(write=True) as conn:
        await conn.execute(statement, values)
    with pytest.raises(IntegrityError):
        async with sqlite.connection(write=True) as conn:
            assert _direct(conn, statement, values)
            await conn.execute(statement, values)
    assert len(await _stored(sqlite, "runs", [values["id"]])) == 1


async def test_rows_inserted_at_once_are_all_written(sqlite: SqlStore) -> None:
    ws = await new_workspace(sqlite)
    thread_id = await _thread(sqlite, ws)
    messages = _messages(thread_id, 3)
    async with sqlite.workspace(ws, write=True) as unit:
        values = [{**rows.message_values(m), "workspace_id": ws} for m in messages]
        assert _direct(unit.messages.conn, insert_into(schema.messages), values)  # type: ignore[attr-defined]
        await unit.messages.insert_many(messages)
    async with sqlite.workspace(ws) as unit:
        stored = [await unit.messages.get(thread_id, m.id) for m in messages]
    assert [m.content if m else None for m in stored] == [m.content for m in messages]


async def test_a_statement_needing_sqlalchemy_still_gets_it(sqlite: SqlStore) -> None:
    """An API key's name has a default that SQLAlchemy fills in: not run on the driver."""
    ws = await new_workspace(sqlite)
    values = {"id": new_id("key"), "workspace_id": ws, "key_hash": new_id("h"),
              "prefix": "sk-", "admin": False, "created_at": now_ms()}  # fmt: skip
    statement = insert_into(schema.api_keys)
    async with sqlite.connection(write=True) as conn:
        assert not _direct(conn, statement, values)
        await conn.execute(statement, values)
    async with sqlite.connection() as conn:
        query = select(schema.api_keys.c.name).where(schema.api_keys.c.id == values["id"])
        assert (await conn.execute(query)).scalar_one() == ""


async def test_a_kept_connection_starts_each_transaction_afresh(
    sqlite: SqlStore, tmp_path: Path
) -> None:
    """Connections are kept between transactions: one that failed or was cancelled
    half-way leaves nothing written and the next transaction on it commits normally."""
    ws = await new_workspace(sqlite)
    thread_id = await _thread(sqlite, ws)
    failed, cancelled, kept = (_run_values(ws, thread_id) for _ in range(3))
    statement = insert_into(schema.runs)
    with pytest.raises(IntegrityError):
        async with sqlite.connection(write=True) as conn:
            await conn.execute(statement, failed)
            await conn.execute(statement, failed)
    started = asyncio.Event()

    async def cut_off() -> None:
        async with sqlite.connection(write=True) as conn:
            await conn.execute(statement, cancelled)
            started.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(cut_off())
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with sqlite.connection(write=True) as conn:
        await conn.execute(statement, kept)
    other = open_store(Settings(data_dir=tmp_path))  # its own connections
    try:
        found = await _stored(other, "runs", [failed["id"], cancelled["id"], kept["id"]])
    finally:
        await other.close()
    assert len(found) == 1 and found[0][2] == kept["assistant_id"]


async def test_a_statement_holding_a_value_of_its_own_binds_it(sqlite: SqlStore) -> None:
    """A first page's LIMIT is a value of the statement, not the caller's: it is bound
    with the caller's parameters (the other statements take theirs as they come)."""
    ws = await new_workspace(sqlite)
    thread_id = await _thread(sqlite, ws)
    messages = _messages(thread_id, 5)
    async with sqlite.workspace(ws, write=True) as unit:
        await unit.messages.insert_many(messages)
    statement = first_page_by(schema.messages, ("thread_id",), True, 2)
    keys = {"k_ws": ws, "k_thread_id": thread_id}
    async with sqlite.connection() as conn:
        plan = sqlite_direct.plan_for(statement, [keys], conn.sync_connection.dialect)
        assert plan is not None and not plan.given
        found = (await conn.execute(statement, keys)).all()
    assert [row.id for row in found] == [m.id for m in reversed(messages)][:3]  # limit + 1
