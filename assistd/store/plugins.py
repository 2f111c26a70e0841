"""The plugins repository: a workspace's plugins, by their id within the workspace."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar

from sqlalchemy import Column, delete, select
from sqlalchemy.exc import IntegrityError

from assistd.core.objects import Page, PageRequest, Plugin
from assistd.errors import Conflict, echo
from assistd.store import audit, rows, schema
from assistd.store.paging import fetch_page
from assistd.store.repos import _Scoped


class SqlPluginRepo(_Scoped):
    t = schema.plugins
    # Lists leave out the document (it may be large) and the sealed credentials.
    listed: ClassVar[list[Column[Any]]] = [
        c for c in schema.plugins.c if c.name not in ("document", "sealed")
    ]

    async def insert(self, plugin: Plugin) -> None:
        values = {"id": plugin.id, "created_at": plugin.created_at, **rows.plugin_values(plugin)}
        try:
            async with self.conn.begin_nested():  # a duplicate fails this insert alone
                await self._insert(self.t, values)
        except IntegrityError as exc:
            raise Conflict(
                f"This workspace already has a plugin '{echo(plugin.id)}'; update or delete it."
            ) from exc
        audit.created(plugin.id)

    async def get(self, plugin_id: str) -> Plugin | None:
        row = await self._first(self.t, id=plugin_id)
        return rows.plugin(row) if row is not None else None

    async def page(self, page: PageRequest) -> Page[Plugin]:
        return await fetch_page(
            self.conn, self.t, self.scope(self.t), page, rows.plugin, columns=self.listed
        )

    async def replace(self, plugin: Plugin) -> None:
        await self._update(self.t, rows.plugin_values(plugin), id=plugin.id)

    async def delete(self, plugin_id: str) -> bool:
        result = await self.conn.execute(delete(self.t).where(*self.scope(self.t, id=plugin_id)))
        return bool(result.rowcount)

    async def existing_ids(self, plugin_ids: Sequence[str]) -> set[str]:
        if not plugin_ids:
            return set()
        query = select(self.t.c.id).where(*self.scope(self.t), self.t.c.id.in_(list(plugin_ids)))
        return set((await self.conn.execute(query)).scalars())

    async def revision(self, plugin_id: str) -> int | None:
        query = select(self.t.c.updated_at).where(*self.scope(self.t, id=plugin_id))
        found = (await self.conn.execute(query)).scalar_one_or_none()
        return int(found) if found is not None else None
