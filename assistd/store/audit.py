"""The audit log's rows: who called what on which object, and how it ended.

A mutating API call opens an `AuditEntry` (api/audit.py) in a context variable. A write
unit of work that commits while it is open writes the entry's row in its own transaction,
just before COMMIT (`record_in`, called by the store's units): the change and its record
commit or roll back together, for the one extra INSERT. Once the call has its answer
(before the answer's last byte is sent), `finish` writes what only the answer tells: a
call whose change committed and that answered 200 needs nothing more; one that failed,
or committed nothing (a rolled-back unit takes its row with it), gets its row then, in a
transaction of its own; the rare call whose outcome differs from the row (a later step
failed, a second unit created more objects) gets it updated.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from sqlalchemy import Insert, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import schema

COMMITTED_STATUS = 200  # what a row written with its change says until the call ends
MAX_IDS = 20  # object ids kept per call (a thread created with many messages)
MAX_ID_CHARS = 128
PRUNE_BATCH = 5000

current: ContextVar[AuditEntry | None] = ContextVar("assistd_audit", default=None)


@dataclass(slots=True)
class AuditEntry:
    at: int  # ms
    method: str
    path: str
    prefix: str = ""  # the API called: /api/v1, /v1 or /admin/v1
    request_id: str | None = None
    key_id: str | None = None
    workspace: str | None = None
    route: str | None = None
    path_ids: list[str] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    body: str | None = None
    seq: int | None = None  # the row, once a committed unit wrote it
    written_ids: str = ""  # object_ids as that row has them
    closed: bool = False  # the call has ended: units of tasks it started write nothing

    def object_ids(self) -> str:
        ids: list[str] = []
        for value in (*self.path_ids, *self.created):
            if value and value not in ids and len(ids) < MAX_IDS:
                ids.append(value[:MAX_ID_CHARS].replace(" ", "_").replace("\x00", ""))
        return f" {' '.join(ids)} " if ids else ""

    def values(self, status: int, error_code: str | None) -> dict[str, Any]:
        return {
            "at": self.at, "request_id": self.request_id, "key_id": self.key_id,
            "workspace": self.workspace, "method": self.method, "route": self.route,
            "path": self.path, "object_ids": self.object_ids(), "status": status,
            "error_code": error_code, "body": self.body,
        }  # fmt: skip


# The columns a row's values fill: all but its seq, in the table's order.
COLUMNS = tuple(c.name for c in schema.audit_log.c if c.name != "seq")
# Writes a row's values in a transaction; its seq. Each store has one on its driver
# (every mutating call writes a row: SQLAlchemy's execution costs more than the INSERT).
InsertRow = Callable[[AsyncConnection, dict[str, Any]], Awaitable[int]]


def driver_insert(marks: Sequence[str], returning: str = "") -> str:
    """The row's INSERT for a driver, its parameters written as `marks` (one a column)."""
    return f"INSERT INTO audit_log ({', '.join(COLUMNS)}) VALUES ({', '.join(marks)}){returning}"


def driver_args(values: dict[str, Any]) -> list[Any]:
    """`values` in COLUMNS' order, for driver_insert's statement."""
    return [values[c] for c in COLUMNS]


@cache
def _insert() -> Insert:
    """Built once: a statement made with its values is coerced and compiled each time
    (milliseconds), where parameters are bound to the cached one."""
    return insert(schema.audit_log)


async def insert_row(conn: AsyncConnection, values: dict[str, Any]) -> int:
    """Through SQLAlchemy, on any database."""
    key = (await conn.execute(_insert(), values)).inserted_primary_key
    assert key is not None
    return int(key[0])


def created(*object_ids: str) -> None:
    """Notes objects this call creates (the store's inserts call it)."""
    entry = current.get()
    if entry is not None and not entry.closed:
        entry.created.extend(object_ids)


async def record_in(
    conn: AsyncConnection, insert: InsertRow = insert_row
) -> Callable[[], None] | None:
    """Writes the open call's row in this transaction, if no committed one has yet; what
    it returns is to be called once the transaction has committed."""
    entry = current.get()
    if entry is None or entry.closed or entry.seq is not None:
        return None
    values = entry.values(COMMITTED_STATUS, None)
    seq = await insert(conn, values)

    def committed() -> None:
        entry.seq, entry.written_ids = seq, values["object_ids"]

    return committed


async def finish(
    conn_of: Callable[[], Any],
    entry: AuditEntry,
    status: int,
    error_code: str | None,
    insert: InsertRow = insert_row,
) -> None:
    """Once the call has answered: its row, where no unit wrote it, or brought up to date
    where it tells more than that row. `conn_of()` opens a write transaction."""
    entry.closed = True
    t = schema.audit_log
    if entry.seq is None:
        async with conn_of() as conn:
            await insert(conn, entry.values(status, error_code))
        return
    ids = entry.object_ids()
    if status == COMMITTED_STATUS and error_code is None and ids == entry.written_ids:
        return
    changes = {"status": status, "error_code": error_code, "object_ids": ids}
    async with conn_of() as conn:
        await conn.execute(update(t).where(t.c.seq == entry.seq).values(changes))


@dataclass(frozen=True, slots=True)
class AuditQuery:
    since: int | None = None  # ms, inclusive
    until: int | None = None  # ms, exclusive
    workspace: str | None = None
    key_id: str | None = None
    object_id: str | None = None
    method: str | None = None
    before: int | None = None  # seq: the page after the entry of this id
    limit: int = 20


def _where(q: AuditQuery) -> list[Any]:
    t = schema.audit_log
    conditions: list[Any] = []
    if q.since is not None:
        conditions.append(t.c.at >= q.since)
    if q.until is not None:
        conditions.append(t.c.at < q.until)
    if q.workspace is not None:
        conditions.append(t.c.workspace == q.workspace)
    if q.key_id is not None:
        conditions.append(t.c.key_id == q.key_id)
    if q.object_id is not None:
        conditions.append(t.c.object_ids.contains(f" {q.object_id} ", autoescape=True))
    if q.method is not None:
        conditions.append(t.c.method == q.method.upper())
    if q.before is not None:
        conditions.append(t.c.seq < q.before)
    return conditions


async def page(conn: AsyncConnection, q: AuditQuery) -> tuple[list[dict[str, Any]], bool]:
    """The matching rows, newest first, and whether there are more."""
    t = schema.audit_log
    query = select(t).where(*_where(q)).order_by(t.c.seq.desc()).limit(q.limit + 1)
    found = [dict(row._mapping) for row in await conn.execute(query)]
    return found[: q.limit], len(found) > q.limit


def split_ids(object_ids: str) -> list[str]:
    return object_ids.split()


async def prune(conn_of: Callable[[], Any], older_than: int) -> int:
    """Deletes the rows from before `older_than` (ms), a batch per transaction."""
    t = schema.audit_log
    removed = 0
    while True:
        oldest = select(t.c.seq).where(t.c.at < older_than).limit(PRUNE_BATCH)
        async with conn_of() as conn:
            count = (await conn.execute(delete(t).where(t.c.seq.in_(oldest)))).rowcount
        removed += int(count or 0)
        if not count or count < PRUNE_BATCH:
            return removed


def listed(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{**r, "object_ids": split_ids(r["object_ids"])} for r in rows]
