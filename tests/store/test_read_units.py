"""What a worker starting a run reads (the run and whether it has steps, in one statement),
on both backends; and PostgreSQL's read units, which run in autocommit: a write in one is
refused rather than committed without the atomicity a transaction gives.

Real stores (a SQLite file, a PostgreSQL database)."""

from __future__ import annotations

import pytest

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import MessageCreationDetails, Run, RunStep, Thread
from assistd.settings import Settings
from assistd.store.sql import SqlStore
from tests.support.store import new_workspace


async def _queued_run(store: SqlStore) -> tuple[str, Run]:
    workspace_id = await new_workspace(store)
    thread = Thread(new_id("thread"), now_ms())
    run = Run(new_id("run"), thread.id, new_id("asst"), now_ms(), "queued", "m")
    async with store.workspace(workspace_id, write=True) as unit:
        await unit.threads.insert(thread)
        await unit.runs.insert(run)
    return workspace_id, run


async def test_a_run_read_at_start_says_whether_it_has_steps(store: SqlStore) -> None:
    ws, run = await _queued_run(store)
    _, other = await _queued_run(store)
    async with store.workspace(ws) as unit:
        found = await unit.runs.get_at_start(run.thread_id, run.id)
    assert found is not None and found[0].id == run.id and found[1] is False
    step = RunStep(
        new_id("step"), run.id, run.thread_id, run.assistant_id, now_ms(), "message_creation",
        "in_progress", MessageCreationDetails(new_id("msg")),
    )  # fmt: skip
    async with store.workspace(ws, write=True) as unit:
        await unit.steps.insert(step)
    async with store.workspace(ws) as unit:
        found = await unit.runs.get_at_start(run.thread_id, run.id)
        missing = await unit.runs.get_at_start(other.thread_id, other.id)  # another workspace's
    assert found is not None and found[1] is True
    assert missing is None


async def test_a_postgres_read_unit_refuses_to_write(store: SqlStore, settings: Settings) -> None:
    if not settings.database_url:
        pytest.skip("SQLite read units are transactions: nothing to refuse")
    ws, run = await _queued_run(store)
    with pytest.raises(RuntimeError, match="read unit of work wrote"):
        async with store.workspace(ws) as unit:
            await unit.threads.set_metadata(run.thread_id, {"k": "v"})
    async with store.workspace(ws) as unit:
        thread = await unit.threads.get(run.thread_id)
    assert thread is not None and thread.metadata == {}
