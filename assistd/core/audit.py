"""The audit log's retention: records older than `audit_retention_days` are deleted by
the worker's periodic sweep (WorkerPool, next to the thread time-to-live sweep) and by
`assistd audit prune`. Rows are written by the store (store/audit.py) for the API's
middleware (api/audit.py)."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from assistd.core.ids import now_ms
from assistd.errors import InvalidRequest
from assistd.store import audit as sql
from assistd.store.sql import SqlStore

log = logging.getLogger("assistd.audit")
DAY_MS = 86_400_000


class AuditRetention:
    def __init__(self, store: SqlStore, days: int) -> None:
        self.store = store
        self.days = days  # 0: records are kept for ever

    async def prune(self) -> int:
        """Deletes the records past their retention; how many went."""
        if not self.days:
            return 0
        removed = await sql.prune(self.store.writing, now_ms() - self.days * DAY_MS)
        if removed:
            log.info("deleted %d audit records older than %d days", removed, self.days)
        return removed


_UNITS_MS = {"s": 1000, "m": 60_000, "h": 3_600_000, "d": DAY_MS}


def parse_time(value: str, name: str, now: int | None = None) -> int:
    """A time filter as ms since the epoch: ms digits, an ISO 8601 time (UTC unless it
    says otherwise), or an age such as `30m`, `12h`, `7d` (that long before now)."""
    text = value.strip()
    if text.isdigit():
        return int(text)
    if len(text) > 1 and text[:-1].isdigit() and text[-1] in _UNITS_MS:
        return (now if now is not None else now_ms()) - int(text[:-1]) * _UNITS_MS[text[-1]]
    try:
        when = dt.datetime.fromisoformat(text)
    except ValueError:
        raise InvalidRequest(
            f"'{name}' is not a time: give milliseconds since the epoch, an ISO 8601 time "
            "or an age such as 30m, 12h or 7d.",
            name,
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


async def query(store: SqlStore, q: sql.AuditQuery) -> tuple[list[dict[str, Any]], bool]:
    """A page of records, newest first, and whether more follow."""
    async with store.connection() as conn:
        found, more = await sql.page(conn, q)
    return sql.listed(found), more
