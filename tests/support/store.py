"""Objects made straight in a store, for the tests that drive the store itself."""

from __future__ import annotations

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import Workspace
from assistd.store.sql import SqlStore


async def new_workspace(store: SqlStore) -> str:
    """A new workspace's id."""
    workspace = Workspace(new_id("ws"), new_id("w"), now_ms())
    async with store.admin(write=True) as admin:
        await admin.insert_workspace(workspace)
    return workspace.id
