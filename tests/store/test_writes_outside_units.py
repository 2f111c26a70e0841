"""Writes outside a workspace unit (a workspace's thread TTL and limits, the thread sweep)
take the store's writer turn: on SQLite, while another writer of the process holds its
transaction open, they wait for it and then succeed, where a bare BEGIN IMMEDIATE on the
engine failed at once with "database is locked" (a 500 seen in CI)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from assistd.settings import Settings
from assistd.store import thread_ttl, usage
from assistd.store.factory import open_store
from tests.support.store import new_workspace


def test_ttl_and_limits_wait_for_the_writer_ahead(tmp_path: Path) -> None:
    async def main() -> tuple[int | None, list[str]]:
        store = open_store(Settings(data_dir=tmp_path))
        await store.migrate()
        try:
            ws = await new_workspace(store)
            order: list[str] = []
            holding, release = asyncio.Event(), asyncio.Event()

            async def writer_ahead() -> None:
                async with store.workspace(ws, write=True):
                    holding.set()
                    await release.wait()
                    order.append("ahead")

            async def settings_writes() -> None:
                await holding.wait()
                await thread_ttl.set_workspace_ttl(store.writing, ws, 3600)
                await usage.set_limits(store.writing, "workspaces", ws, {"runs_per_minute": 5})
                order.append("settings")

            ahead = asyncio.create_task(writer_ahead())
            writes = asyncio.create_task(settings_writes())
            await holding.wait()
            await asyncio.sleep(0.2)  # the settings' writes are waiting, not failed
            assert not writes.done()
            release.set()
            await asyncio.gather(ahead, writes)
            return await thread_ttl.workspace_ttl(store.engine, ws), order
        finally:
            await store.close()

    ttl, order = asyncio.run(main())
    assert ttl == 3600
    assert order == ["ahead", "settings"]
