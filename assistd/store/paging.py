"""Cursor pagination over `seq`, OpenAI semantics: `after`/`before` are exclusive ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cache
from typing import Any, TypeVar

from sqlalchemy import (
    BinaryExpression,
    Boolean,
    Column,
    ColumnElement,
    Row,
    Select,
    Table,
    bindparam,
    select,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

from assistd.core.objects import Page, PageRequest
from assistd.errors import InvalidRequest, echo
from assistd.store.prepared import kept

T = TypeVar("T")


class _within(FunctionElement[bool]):
    """`column = value`, for the column that leads an index on `(column, seq)`.

    PostgreSQL gets `column >= value AND column <= value` instead: the same rows, but the
    planner can no longer treat `column` as a constant, so `ORDER BY column, seq` is an
    order only that index gives. Given `=`, it may walk the primary key on `seq` backwards
    and filter, betting that the thread's rows are spread evenly over `seq`: for a thread
    older than the rows written since, that reads every newer row of every other thread
    (37 ms, not 0.1 ms, for 21 messages of a 10k-message thread behind 100k newer rows).
    SQLite keeps `=`, which lets it seek to a cursor's `seq` inside the index.
    """

    type = Boolean()
    inherit_cache = True  # a function: its column and bound value are in its cache key
    _is_implicitly_boolean = True  # a comparison: no `= 1` after it where booleans are ints


@compiles(_within)
def _within_equals(element: _within, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"{column} = {value}"


@compiles(_within, "postgresql")
def _within_range(element: _within, compiler: SQLCompiler, **kw: Any) -> str:
    column, value = (compiler.process(c, **kw) for c in element.clauses)
    return f"({column} >= {value} AND {column} <= {value})"


def _index_led(
    table: Table, scope: Sequence[ColumnElement[bool]]
) -> tuple[list[ColumnElement[bool]], list[Column[Any]]]:
    """`scope`, with the equality on the column that leads a `(column, seq)` index of
    `table` (a thread's messages, a workspace's assistants) made a `_within`; and that
    column, to order by before `seq`."""
    leaders = {
        i.columns[0].name for i in table.indexes if [c.name for c in i.columns][1:] == ["seq"]
    }
    conditions: list[ColumnElement[bool]] = []
    leading: list[Column[Any]] = []
    for condition in scope:
        column = condition.left if isinstance(condition, BinaryExpression) else None
        if (
            not leading
            and isinstance(column, Column)
            and column.table is table
            and column.name in leaders
            and condition.operator is operators.eq
        ):
            conditions.append(_within(column, condition.right))
            leading.append(column)
        else:
            conditions.append(condition)
    return conditions, leading


async def _cursor_seq(
    conn: AsyncConnection,
    table: Table,
    scope: Sequence[ColumnElement[bool]],
    name: str,
    cursor: str,
    id_column: str,
) -> int:
    query = select(table.c.seq).where(*scope, table.c[id_column] == cursor)
    seq = (await conn.execute(query)).scalar_one_or_none()
    if seq is None:
        raise InvalidRequest(
            f"'{name}' names '{echo(cursor)}', which is not in this list.", field=name
        )
    return int(seq)


async def fetch_page(
    conn: AsyncConnection,
    table: Table,
    scope: Sequence[ColumnElement[bool]],
    page: PageRequest,
    to_object: Callable[[Row[Any]], T],
    id_column: str = "id",
    columns: Sequence[Any] | None = None,
) -> Page[T]:
    """One page of `table` rows matching `scope`, ordered by creation.

    `has_more` tells whether more items lie further in the direction being paged:
    past the last item for `after` (or no cursor), before the first item for `before`.
    """
    conditions, leading = _index_led(table, scope)
    descending = page.order == "desc"
    if page.after is not None:
        seq = await _cursor_seq(conn, table, scope, "after", page.after, id_column)
        conditions.append(table.c.seq < seq if descending else table.c.seq > seq)
    backwards = page.before is not None
    if page.before is not None:
        seq = await _cursor_seq(conn, table, scope, "before", page.before, id_column)
        conditions.append(table.c.seq > seq if descending else table.c.seq < seq)
    # Paging backwards walks away from the cursor in the opposite order, then flips.
    walk_descending = descending != backwards
    order = [c.desc() if walk_descending else c.asc() for c in [*leading, table.c.seq]]
    query = select(*(columns or [table])).where(*conditions)
    rows = (await conn.execute(query.order_by(*order).limit(page.limit + 1))).all()
    return page_of(rows, page.limit, to_object, backwards)


def page_of(
    rows: Sequence[Row[Any]], limit: int, to_object: Callable[[Row[Any]], T], flip: bool = False
) -> Page[T]:
    """The page of `limit` items in `rows` (fetched `limit + 1`, the extra one telling
    whether there are more), flipped when they were walked backwards."""
    items = list(rows[:limit])
    if flip:
        items.reverse()
    return Page(items=[to_object(row) for row in items], has_more=len(rows) > limit)


# Unbounded, as every kept statement's cache must be (store/prepared.py: one evicted and
# built again would be kept twice): a page's limit is 1-100, so two orders make 200 at most.
@cache
def first_page_by(table: Table, keys: tuple[str, ...], descending: bool, limit: int) -> Select[Any]:
    """`fetch_page`'s statement for a first page (no cursor) of the rows whose `keys`
    columns equal the parameters `k_<key>` (and workspace_id `k_ws`), built once: a run
    reads its thread's first page for the model's context, and building the statement
    costs more than running it."""
    scope = [table.c.workspace_id == bindparam("k_ws")]
    scope += [table.c[k] == bindparam(f"k_{k}") for k in keys]
    conditions, leading = _index_led(table, scope)
    order = [c.desc() if descending else c.asc() for c in [*leading, table.c.seq]]
    return kept(select(table).where(*conditions).order_by(*order).limit(limit + 1))
