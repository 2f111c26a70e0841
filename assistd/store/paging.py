"""Cursor pagination over `seq`, OpenAI semantics: `after`/`before` are exclusive ids."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Row, Table, select
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.core.objects import Page, PageRequest
from assistd.errors import InvalidRequest

T = TypeVar("T")


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
        raise InvalidRequest(f"'{name}' names '{cursor}', which is not in this list.", field=name)
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
    conditions = list(scope)
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
    order = table.c.seq.desc() if walk_descending else table.c.seq.asc()
    query = select(*(columns or [table])).where(*conditions)
    rows = (await conn.execute(query.order_by(order).limit(page.limit + 1))).all()
    has_more = len(rows) > page.limit
    rows = list(rows[: page.limit])
    if backwards:
        rows.reverse()
    return Page(items=[to_object(row) for row in rows], has_more=has_more)
