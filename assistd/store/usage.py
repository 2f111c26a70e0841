"""The SQL of usage and quotas: the daily usage rows (written in the transaction that ends
a run), the usage report, a day's tokens for the tokens-per-day limit, and the limits
kept on API keys and workspaces."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from assistd.core.objects import JsonDict
from assistd.store import schema
from assistd.store.prepared import kept
from assistd.store.transactions import Writing, read_transaction

GROUPS = ("workspace", "key", "model", "day")
COLUMNS = {"workspace": "workspace_id", "key": "key_id", "model": "model", "day": "day"}
COUNTS = ("runs", "prompt_tokens", "completion_tokens", "total_tokens")


@dataclass(frozen=True, slots=True)
class UsageFilter:
    workspace_id: str | None = None
    key_id: str | None = None
    model: str | None = None
    since: str | None = None  # first day, "YYYY-MM-DD", included
    until: str | None = None  # last day, included
    group_by: Sequence[str] = GROUPS


class SqlUsageRepo:
    """A workspace unit's usage rows: one upsert per ended run."""

    def __init__(self, conn: AsyncConnection, workspace_id: str) -> None:
        self.conn = conn
        self.ws = workspace_id

    async def add(self, key_id: str, model: str, day: str, tokens: Sequence[int]) -> None:
        """Counts one run and its (prompt, completion, total) tokens into its day's row."""
        values = {
            "workspace_id": self.ws, "key_id": key_id, "model": model, "day": day, "runs": 1,
            "prompt_tokens": tokens[0], "completion_tokens": tokens[1], "total_tokens": tokens[2],
        }  # fmt: skip
        dialect = self.conn.sync_connection.dialect.name  # type: ignore[union-attr]
        await self.conn.execute(_add_upsert(dialect), values)


@cache
def _add_upsert(dialect_name: str) -> Any:
    """Built once per database, its values bound at execution: made with its values, it
    was coerced and compiled again for every run (about 0.9 ms of each run's last
    transaction)."""
    t = schema.usage_daily
    stmt = (postgresql if dialect_name == "postgresql" else sqlite).insert(t)
    added = {name: t.c[name] + stmt.excluded[name] for name in COUNTS}
    keys = [t.c.workspace_id, t.c.key_id, t.c.model, t.c.day]
    return kept(stmt.on_conflict_do_update(index_elements=keys, set_=added))


async def report(engine: AsyncEngine, where: UsageFilter) -> list[JsonDict]:
    """Usage rows summed over what `group_by` leaves out, newest day first."""
    t = schema.usage_daily
    groups = [t.c[COLUMNS[g]] for g in GROUPS if g in where.group_by]
    sums = [func.sum(t.c[name]).label(name) for name in COUNTS]
    query = select(*groups, *sums)
    for column, value in (
        (t.c.workspace_id, where.workspace_id), (t.c.key_id, where.key_id),
        (t.c.model, where.model),
    ):  # fmt: skip
        if value is not None:
            query = query.where(column == value)
    if where.since is not None:
        query = query.where(t.c.day >= where.since)
    if where.until is not None:
        query = query.where(t.c.day <= where.until)
    if groups:
        order = [c.desc() if c.name == "day" else c for c in groups]
        query = query.group_by(*groups).order_by(*order)
    async with read_transaction(engine) as conn:
        found = (await conn.execute(query)).mappings().all()
    return [_row(dict(r)) for r in found if r["runs"] is not None]


def _row(values: dict[str, Any]) -> JsonDict:
    row = {k: int(v) if k in COUNTS else v for k, v in values.items()}
    if "key_id" in row:
        row["key_id"] = row["key_id"] or None  # '': a run made before keys were kept
    return row


async def tokens_on(
    engine: AsyncEngine, day: str, workspace_id: str, key_id: str
) -> tuple[int, int]:
    """The tokens of `day` used in the workspace, and by the key (in any workspace)."""
    t = schema.usage_daily
    in_ws, of_key = t.c.workspace_id == workspace_id, t.c.key_id == key_id
    total = func.sum(t.c.total_tokens)
    query = select(total.filter(in_ws), total.filter(of_key))
    query = query.where(t.c.day == day, or_(in_ws, of_key))
    async with read_transaction(engine) as conn:
        row = (await conn.execute(query)).one()
    return int(row[0] or 0), int(row[1] or 0)


async def set_limits(writing: Writing, table: str, object_id: str, limits: JsonDict | None) -> None:
    """Stores the limits of an API key ("api_keys") or workspace ("workspaces")."""
    t = schema.api_keys if table == "api_keys" else schema.workspaces
    async with writing() as conn:
        await conn.execute(update(t).where(t.c.id == object_id).values(limits=limits))
