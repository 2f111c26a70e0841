"""SQL repositories shared by SQLite and PostgreSQL; each is bound to one workspace."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from functools import cache
from typing import Any, ClassVar

from sqlalchemy import (
    Column,
    ColumnElement,
    Delete,
    Insert,
    Select,
    Table,
    Update,
    bindparam,
    delete,
    exists,
    func,
    insert,
    literal_column,
    select,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.core.objects import (
    Assistant,
    AssistantFile,
    Message,
    Metadata,
    Page,
    PageRequest,
    Run,
    RunStep,
    StoredFile,
    Thread,
)
from assistd.core.ttl_rules import thread_ttl
from assistd.store import audit, rows, schema
from assistd.store.activity import touch_thread
from assistd.store.paging import fetch_page, first_page_by, page_of
from assistd.store.prepared import kept

# Columns a row keeps for life, left out of every UPDATE: SQLite rewrites the entries of
# each index on a column an UPDATE sets, changed or not (a run's unique id and its place in
# its thread, a step's in its run), and every page that touches goes to the log in full.
_FOR_LIFE = frozenset({"id", "workspace_id", "thread_id", "run_id", "assistant_id", "created_at"})

# Statuses of a run that is not finished (core.runs.ACTIVE, as plain strings for SQL).
ACTIVE_STATUSES = ("queued", "in_progress", "requires_action", "cancelling")


# The statements a run executes over and over are built once, with bound parameters:
# building one per call (its clauses, coerced values and cache key) costs SQLAlchemy
# several times what executing it does. `k_<column>` names the parameters of the WHERE
# clause, the workspace's being `k_ws`.


def _where(table: Table, keys: tuple[str, ...]) -> list[ColumnElement[bool]]:
    return [
        table.c.workspace_id == bindparam("k_ws"),
        *(table.c[k] == bindparam(f"k_{k}") for k in keys),
    ]


@cache
def select_by(table: Table, keys: tuple[str, ...]) -> Select[Any]:
    return kept(select(table).where(*_where(table, keys)))


@cache
def update_by(table: Table, keys: tuple[str, ...], columns: tuple[str, ...]) -> Update:
    values = {c: bindparam(c, type_=table.c[c].type) for c in columns}
    return kept(update(table).where(*_where(table, keys)).values(values))


@cache
def delete_by(table: Table, keys: tuple[str, ...]) -> Delete:
    return kept(delete(table).where(*_where(table, keys)))


@cache
def insert_into(table: Table) -> Insert:
    return kept(insert(table))


@cache
def in_order(query: Select[Any]) -> Select[Any]:
    """`query` (one of the statements above) in creation order."""
    table = query.get_final_froms()[0]
    return kept(query.order_by(table.c.seq))


@cache
def select_in(table: Table, column: str) -> Select[Any]:
    return select(table).where(
        table.c.workspace_id == bindparam("k_ws"),
        table.c[column].in_(bindparam("k_in", expanding=True)),
    )


class _Scoped:
    def __init__(self, conn: AsyncConnection, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    def scope(self, table: Table, **equals: str) -> list[ColumnElement[bool]]:
        """The workspace filter every statement carries, plus any column equalities."""
        return [table.c.workspace_id == self.ws, *(table.c[k] == v for k, v in equals.items())]

    def keys(self, **equals: Any) -> dict[str, Any]:
        """Parameters of the statements above: the workspace, plus column equalities."""
        return {"k_ws": self.ws, **{f"k_{k}": v for k, v in equals.items()}}

    async def _first(self, table: Table, **equals: str) -> Any:
        query = select_by(table, tuple(equals))
        return (await self.conn.execute(query, self.keys(**equals))).first()

    async def _insert(self, table: Table, values: dict[str, Any]) -> None:
        await self.conn.execute(insert_into(table), {**values, "workspace_id": self.ws})

    async def _update(self, table: Table, values: dict[str, Any], **equals: str) -> Any:
        values = {name: value for name, value in values.items() if name not in _FOR_LIFE}
        query = update_by(table, tuple(equals), tuple(values))
        return await self.conn.execute(query, {**values, **self.keys(**equals)})


class SqlAssistantRepo(_Scoped):
    t = schema.assistants
    f = schema.assistant_files

    async def insert(self, assistant: Assistant) -> None:
        values = rows.assistant_values(assistant)
        await self._insert(
            self.t, {"id": assistant.id, "created_at": assistant.created_at, **values}
        )
        audit.created(assistant.id)
        for file_id in assistant.file_ids:
            await self.add_file(assistant.id, file_id, assistant.created_at)

    async def _file_ids(self, assistant_ids: Sequence[str]) -> dict[str, list[str]]:
        found: dict[str, list[str]] = defaultdict(list)
        query = in_order(select_in(self.f, "assistant_id"))
        for row in await self.conn.execute(query, {**self.keys(), "k_in": list(assistant_ids)}):
            found[row.assistant_id].append(row.file_id)
        return found

    async def get(self, assistant_id: str) -> Assistant | None:
        row = await self._first(self.t, id=assistant_id)
        if row is None:
            return None
        # One assistant's files by equality: an IN list is rendered anew on every execution
        # (see _active_run), and every run reads its assistant.
        query = in_order(select_by(self.f, ("assistant_id",)))
        found = await self.conn.execute(query, self.keys(assistant_id=assistant_id))
        return rows.assistant(row, [r.file_id for r in found])

    async def page(self, page: PageRequest) -> Page[Any]:
        found = await fetch_page(self.conn, self.t, self.scope(self.t), page, lambda r: r)
        file_ids = await self._file_ids([r.id for r in found.items]) if found.items else {}
        return Page([rows.assistant(r, file_ids[r.id]) for r in found.items], found.has_more)

    async def replace(self, assistant: Assistant) -> None:
        await self._update(self.t, rows.assistant_values(assistant), id=assistant.id)
        current = (await self._file_ids([assistant.id]))[assistant.id]
        wanted = assistant.file_ids
        stale = [f for f in current if f not in wanted]
        if stale:
            await self.conn.execute(
                delete(self.f).where(
                    *self.scope(self.f, assistant_id=assistant.id), self.f.c.file_id.in_(stale)
                )
            )
        for file_id in wanted:
            if file_id not in current:
                await self.add_file(assistant.id, file_id, assistant.created_at)

    async def delete(self, assistant_id: str) -> bool:
        result = await self.conn.execute(delete(self.t).where(*self.scope(self.t, id=assistant_id)))
        await self.conn.execute(
            delete(self.f).where(*self.scope(self.f, assistant_id=assistant_id))
        )
        return bool(result.rowcount)

    async def add_file(self, assistant_id: str, file_id: str, created_at: int) -> None:
        await self.conn.execute(
            insert(self.f).values(
                workspace_id=self.ws,
                assistant_id=assistant_id,
                file_id=file_id,
                created_at=created_at,
            )
        )

    def _file_scope(self, assistant_id: str) -> list[ColumnElement[bool]]:
        return self.scope(self.f, assistant_id=assistant_id)

    async def get_file(self, assistant_id: str, file_id: str) -> AssistantFile | None:
        query = select(self.f).where(*self._file_scope(assistant_id), self.f.c.file_id == file_id)
        row = (await self.conn.execute(query)).first()
        return rows.assistant_file(row) if row is not None else None

    async def list_files(self, assistant_id: str, page: PageRequest) -> Page[AssistantFile]:
        # Cursors are file ids: the link table's public id is the file's.
        return await fetch_page(
            self.conn, self.f, self._file_scope(assistant_id), page, rows.assistant_file, "file_id"
        )

    async def remove_file(self, assistant_id: str, file_id: str) -> bool:
        result = await self.conn.execute(
            delete(self.f).where(*self._file_scope(assistant_id), self.f.c.file_id == file_id)
        )
        return bool(result.rowcount)

    async def count_files(self, assistant_id: str) -> int:
        query = select(func.count()).select_from(self.f).where(*self._file_scope(assistant_id))
        return int((await self.conn.execute(query)).scalar_one())


class SqlThreadRepo(_Scoped):
    t = schema.threads

    async def insert(self, thread: Thread) -> None:
        values = {"id": thread.id, "created_at": thread.created_at, **rows.thread_values(thread)}
        await self._insert(self.t, values)
        audit.created(thread.id)

    async def get(self, thread_id: str) -> Thread | None:
        row = await self._first(self.t, id=thread_id)
        return rows.thread(row) if row is not None else None

    async def lock(self, thread_id: str) -> Thread | None:
        row = (await self.conn.execute(_lock_thread(), self.keys(id=thread_id))).first()
        return rows.thread(row) if row is not None else None

    async def lock_for_run(self, thread_id: str) -> tuple[Thread, str | None] | None:
        found = await self.conn.execute(_lock_thread_for_run(), self.keys(id=thread_id))
        row = found.first()
        return (rows.thread(row), row.active_run_id) if row is not None else None

    async def set_metadata(self, thread_id: str, metadata: Metadata) -> None:
        await self.conn.execute(
            update(self.t)
            .where(*self.scope(self.t, id=thread_id))
            .values(metadata=metadata, ttl_s=thread_ttl(metadata))
        )

    async def replace(self, thread: Thread) -> None:
        await self._update(self.t, rows.thread_values(thread), id=thread.id)

    async def delete(self, thread_id: str) -> bool:
        result = await self.conn.execute(delete(self.t).where(*self.scope(self.t, id=thread_id)))
        if not result.rowcount:
            return False
        for child in (schema.messages, schema.runs, schema.run_steps):
            await self.conn.execute(delete(child).where(*self.scope(child, thread_id=thread_id)))
        return True


@cache
def _lock_thread() -> Select[Any]:
    return kept(select_by(schema.threads, ("id",)).with_for_update())


@cache
def _lock_thread_for_run() -> Select[Any]:
    """The thread, locked, and its newest unfinished run's id (two statements cost a new
    run 0.16 ms on SQLite, this one 0.07)."""
    t, r = schema.threads, schema.runs
    active = (
        select(r.c.id)
        .where(r.c.workspace_id == t.c.workspace_id, r.c.thread_id == t.c.id, _active(r))
        .order_by(r.c.seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    query = select_by(t, ("id",)).add_columns(active.label("active_run_id"))
    return kept(query.with_for_update(of=t))


class SqlMessageRepo(_Scoped):
    t = schema.messages

    async def insert_many(self, messages: Sequence[Message]) -> None:
        if messages:
            values = [{**rows.message_values(m), "workspace_id": self.ws} for m in messages]
            await self.conn.execute(insert_into(self.t), values)
            audit.created(*(m.id for m in messages))
            last = messages[-1]
            await touch_thread(self.conn, self.ws, last.thread_id, last.created_at)

    async def get(self, thread_id: str, message_id: str) -> Message | None:
        row = await self._first(self.t, thread_id=thread_id, id=message_id)
        return rows.message(row) if row is not None else None

    async def page(
        self, thread_id: str, page: PageRequest, run_id: str | None = None
    ) -> Page[Message]:
        if run_id is None and page.after is None and page.before is None:
            query = first_page_by(self.t, ("thread_id",), page.order == "desc", page.limit)
            found = (await self.conn.execute(query, self.keys(thread_id=thread_id))).all()
            return page_of(found, page.limit, rows.message)
        scope = self.scope(self.t, thread_id=thread_id)
        if run_id is not None:
            scope.append(self.t.c.run_id == run_id)
        return await fetch_page(self.conn, self.t, scope, page, rows.message)

    async def set_metadata(self, message_id: str, metadata: Metadata) -> None:
        await self.conn.execute(
            update(self.t).where(*self.scope(self.t, id=message_id)).values(metadata=metadata)
        )

    async def replace(self, message: Message) -> None:
        await self._update(self.t, rows.message_values(message), id=message.id)

    async def get_many(self, message_ids: Sequence[str]) -> dict[str, Message]:
        if not message_ids:
            return {}
        found = await self.conn.execute(
            select_in(self.t, "id"), {**self.keys(), "k_in": list(message_ids)}
        )
        return {row.id: rows.message(row) for row in found}

    async def delete(self, message_id: str, thread_id: str | None = None) -> bool:
        scope = self.scope(self.t, id=message_id)
        if thread_id is not None:
            scope.append(self.t.c.thread_id == thread_id)
        return bool((await self.conn.execute(delete(self.t).where(*scope))).rowcount)


class SqlFileRepo(_Scoped):
    t = schema.files
    # Every column but the content, which only `content()` reads.
    meta_columns: ClassVar[list[Column[Any]]] = [c for c in schema.files.c if c.name != "content"]

    async def insert(self, file: StoredFile, content: bytes) -> None:
        await self.conn.execute(
            insert(self.t).values(
                id=file.id,
                workspace_id=self.ws,
                created_at=file.created_at,
                filename=file.filename,
                bytes=file.bytes,
                purpose=file.purpose,
                description=file.description,
                md5=file.md5,
                content=content,
            )
        )
        audit.created(file.id)

    async def get(self, file_id: str) -> StoredFile | None:
        query = select(*self.meta_columns).where(*self.scope(self.t, id=file_id))
        row = (await self.conn.execute(query)).first()
        return rows.stored_file(row) if row is not None else None

    async def existing_ids(self, file_ids: Sequence[str]) -> set[str]:
        query = select(self.t.c.id).where(*self.scope(self.t), self.t.c.id.in_(list(file_ids)))
        return set((await self.conn.execute(query)).scalars())

    async def content(self, file_id: str) -> bytes | None:
        query = select(self.t.c.content).where(*self.scope(self.t, id=file_id))
        data = (await self.conn.execute(query)).scalar_one_or_none()
        return bytes(data) if data is not None else None

    async def page(self, page: PageRequest, purpose: str | None = None) -> Page[StoredFile]:
        scope = self.scope(self.t) if purpose is None else self.scope(self.t, purpose=purpose)
        return await fetch_page(
            self.conn, self.t, scope, page, rows.stored_file, columns=self.meta_columns
        )

    async def window(self, offset: int, limit: int) -> list[StoredFile]:
        """Newest first, by position: DashScope's File API pages by page number."""
        query = (
            select(*self.meta_columns)
            .where(*self.scope(self.t))
            .order_by(self.t.c.seq.desc())
            .offset(offset)
            .limit(limit)
        )
        return [rows.stored_file(r) for r in await self.conn.execute(query)]

    async def count(self) -> int:
        query = select(func.count()).select_from(self.t).where(*self.scope(self.t))
        return int((await self.conn.execute(query)).scalar_one())

    async def delete(self, file_id: str) -> bool:
        result = await self.conn.execute(delete(self.t).where(*self.scope(self.t, id=file_id)))
        links = schema.assistant_files
        await self.conn.execute(delete(links).where(*self.scope(links, file_id=file_id)))
        if result.rowcount:  # out of every vector store too, with its chunks and vectors
            from assistd.store.knowledge import SqlKnowledgeRepo

            await SqlKnowledgeRepo(self.conn, self.ws).forget_file(file_id)
        return bool(result.rowcount)


class SqlRunRepo(_Scoped):
    t = schema.runs

    async def insert(self, run: Run) -> None:
        await self._insert(self.t, rows.run_values(run))
        audit.created(run.id)
        await touch_thread(self.conn, self.ws, run.thread_id, run.created_at)

    async def get(self, thread_id: str, run_id: str) -> Run | None:
        row = await self._first(self.t, thread_id=thread_id, id=run_id)
        return rows.run(row) if row is not None else None

    async def get_at_start(self, thread_id: str, run_id: str) -> tuple[Run, bool] | None:
        query, keys = _run_with_steps_flag(), self.keys(thread_id=thread_id, id=run_id)
        row = (await self.conn.execute(query, keys)).first()
        return (rows.run(row), bool(row.has_steps)) if row is not None else None

    async def page(self, thread_id: str, page: PageRequest) -> Page[Run]:
        scope = self.scope(self.t, thread_id=thread_id)
        return await fetch_page(self.conn, self.t, scope, page, rows.run)

    async def replace(self, run: Run) -> None:
        await self._update(self.t, rows.run_values(run), id=run.id)

    async def move(self, run: Run, expected: str) -> bool:
        # Compare-and-set: the row changes only if its status is still `expected`, so of
        # two processes moving one run, exactly one moves it.
        result = await self._update(self.t, rows.run_values(run), id=run.id, status=expected)
        return bool(result.rowcount == 1)

    async def active(self, thread_id: str) -> Run | None:
        row = (await self.conn.execute(_active_run(), self.keys(thread_id=thread_id))).first()
        return rows.run(row) if row is not None else None


@cache
def _run_with_steps_flag() -> Select[Any]:
    t, steps = schema.runs, schema.run_steps
    has_steps = exists().where(steps.c.workspace_id == t.c.workspace_id, steps.c.run_id == t.c.id)
    return kept(select_by(t, ("thread_id", "id")).add_columns(has_steps.label("has_steps")))


@cache
def _active_run() -> Select[Any]:
    t = schema.runs
    query = select_by(t, ("thread_id",)).where(_active(t))
    return kept(query.order_by(t.c.seq.desc()).limit(1))


def _active(runs: Table) -> ColumnElement[bool]:
    # The statuses written into the SQL itself: a list of bound values is an "expanding"
    # parameter, which SQLAlchemy renders anew on every execution (a third of this query's
    # cost, on every run created).
    statuses: list[ColumnElement[Any]] = [
        literal_column(f"'{status}'") for status in ACTIVE_STATUSES
    ]
    return runs.c.status.in_(statuses)


class SqlStepRepo(_Scoped):
    t = schema.run_steps

    async def insert(self, step: RunStep) -> None:
        await self._insert(self.t, rows.step_values(step))

    async def get(self, run_id: str, step_id: str) -> RunStep | None:
        row = await self._first(self.t, run_id=run_id, id=step_id)
        return rows.step(row) if row is not None else None

    async def page(self, run_id: str, page: PageRequest) -> Page[RunStep]:
        return await fetch_page(
            self.conn, self.t, self.scope(self.t, run_id=run_id), page, rows.step
        )

    async def replace(self, step: RunStep) -> None:
        await self._update(self.t, rows.step_values(step), id=step.id)

    async def delete(self, step_id: str) -> None:
        await self.conn.execute(delete(self.t).where(*self.scope(self.t, id=step_id)))

    async def all_of(self, run_id: str) -> list[RunStep]:
        query = in_order(select_by(self.t, ("run_id",)))
        return [rows.step(row) for row in await self.conn.execute(query, self.keys(run_id=run_id))]
