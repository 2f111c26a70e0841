"""A run's status moves by compare-and-set: of two movers that read the same run (a
cancel and the expiry sweep, two workers), exactly one moves it, on both backends; the
loser writes nothing and publishes nothing.

Real stores (a SQLite file, a PostgreSQL database) and the real in-process event bus."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from assistd.core import runs as rs
from assistd.core.ids import new_id, now_ms
from assistd.core.journal import Journal
from assistd.core.objects import Run, Thread
from assistd.queue.memory import MemoryEventBus
from assistd.store.sql import SqlStore
from tests.support.store import new_workspace

BACKENDS = ["sqlite", "postgres"]


async def _waiting_run(store: SqlStore) -> tuple[str, Run]:
    """A new workspace with one run waiting for tool outputs."""
    workspace_id = await new_workspace(store)
    thread = Thread(new_id("thread"), now_ms())
    run = Run(new_id("run"), thread.id, new_id("asst"), now_ms(), "requires_action", "m")
    async with store.workspace(workspace_id, write=True) as unit:
        await unit.threads.insert(thread)
        await unit.runs.insert(run)
    return workspace_id, run


async def _stored(store: SqlStore, ws: str, run: Run) -> Run:
    async with store.workspace(ws) as unit:
        found = await unit.runs.get(run.thread_id, run.id)
    assert found is not None
    return found


async def test_two_movers_of_one_run_exactly_one_moves(store: SqlStore) -> None:
    ws, run = await _waiting_run(store)

    async def mover(target: rs.RunStatus) -> bool:
        moved = rs.transition(replace(run), target, now_ms())  # both read the same run
        async with store.workspace(ws, write=True) as unit:
            return await unit.runs.move(moved, "requires_action")

    outcomes = await asyncio.gather(
        mover(rs.RunStatus.CANCELLED), mover(rs.RunStatus.EXPIRED), mover(rs.RunStatus.QUEUED)
    )
    assert sorted(outcomes) == [False, False, True]
    winner = [rs.RunStatus.CANCELLED, rs.RunStatus.EXPIRED, rs.RunStatus.QUEUED][
        outcomes.index(True)
    ]
    assert (await _stored(store, ws, run)).status == winner


async def test_a_cancel_racing_the_expiry_sweep_ends_the_run_once(store: SqlStore) -> None:
    ws, run = await _waiting_run(store)
    bus = MemoryEventBus(60.0, 1 << 20)
    journal = Journal(store, bus)

    async def mover(target: rs.RunStatus) -> bool:
        mine = replace(run)  # each read the run waiting for outputs
        async with journal.entry(ws) as entry:
            return await entry.stop(mine, target)

    outcomes = await asyncio.gather(mover(rs.RunStatus.CANCELLED), mover(rs.RunStatus.EXPIRED))
    assert sorted(outcomes) == [False, True]
    events = await bus.read(run.id, 0, timeout_s=0.1)
    assert [e.name for e in events] == [f"thread.run.{(await _stored(store, ws, run)).status}"]
    await bus.close()


async def test_a_move_from_a_status_the_run_left_writes_nothing(store: SqlStore) -> None:
    ws, run = await _waiting_run(store)
    stale = replace(run, status="in_progress", metadata={"k": "v"})
    async with store.workspace(ws, write=True) as unit:
        assert not await unit.runs.move(stale, "in_progress")
    stored = await _stored(store, ws, run)
    assert (stored.status, stored.metadata) == ("requires_action", {})
