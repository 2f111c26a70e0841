"""The only writer of run, step and message state: commit, then publish the event.

A change is written inside an `Entry` (one transaction); its events are published only
once that transaction has committed, so no reader ever sees an event of a state the
database does not hold. A run's status moves by compare-and-set (`RunRepo.move`): of two
movers of one run (a worker, a cancel, the expiry sweep, recovery) exactly one moves it,
and the other reads the run again and decides afresh. Which moves are allowed is
`core/runs.py`'s to say.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import fields, replace
from typing import Any

from assistd.core import runs as rs
from assistd.core import usage
from assistd.core.events import FINAL_EVENTS, EventBus, run_event_name
from assistd.core.ids import now_ms
from assistd.core.objects import (
    JsonDict,
    Message,
    MessageCreationDetails,
    Run,
    RunStep,
    ToolCallsDetails,
)
from assistd.observability import Telemetry
from assistd.store.base import Store, WorkspaceUnit

_STEP_STAMPS = {"cancelled": "cancelled_at", "expired": "expired_at", "failed": "failed_at"}
# How an open tool step ends with its run, where steps have no status of the run's name:
# a call a token cap cut off (the run `incomplete`) ends cancelled.
_STEP_ENDS = {"incomplete": "cancelled"}


class Entry:
    """One transaction of state changes, with the events to publish once it commits."""

    def __init__(self, unit: WorkspaceUnit) -> None:
        self.unit = unit  # for reads; writes go through the methods below
        self.events: list[tuple[str, str, Any]] = []

    def emit(self, run_id: str, name: str, data: Any) -> None:
        """An event to publish after the commit (a copy of `data` as it is then)."""
        self.events.append((run_id, name, data))

    async def move(
        self,
        run: Run,
        target: rs.RunStatus,
        *,
        last_error: JsonDict | None = None,
        announce: bool = True,
        **changes: Any,
    ) -> bool:
        """Moves `run` from the status it holds to `target` if the stored run still has
        that status; on success `run` is updated (with `changes` applied) and its event
        is emitted. Returns False, leaving `run` as it was, when another mover came first.
        Raises Conflict when `core/runs.py` does not allow the move."""
        moved, now = replace(run), now_ms()
        rs.transition(moved, target, now, last_error=last_error)
        for name, value in changes.items():
            setattr(moved, name, value)
        if not await self.unit.runs.move(moved, run.status):
            return False
        if rs.is_terminal(target):  # its usage is final: counted in this transaction
            await usage.record(self.unit, moved, now)
        for f in fields(Run):
            setattr(run, f.name, getattr(moved, f.name))
        if announce:
            self.emit(run.id, run_event_name(run), run)
        return True

    async def stop(
        self,
        run: Run,
        target: rs.RunStatus,
        last_error: JsonDict | None = None,
        *,
        step_error: JsonDict | None = None,
        live: Sequence[RunStep | Message] = (),
        closed: bool = False,
    ) -> bool:
        """`move`, and when `target` ends the run, its open steps and message are closed
        (`close_open`) before the run's own event goes out; `closed`: the caller knows
        none is open, and they are not looked for."""
        ending = rs.is_terminal(target)
        if not await self.move(run, target, last_error=last_error, announce=not ending):
            return False
        if ending:
            if not closed:
                await self.close_open(run, target.value, step_error, live)
            self.emit(run.id, run_event_name(run), run)
        return True

    async def save_run(self, run: Run) -> bool:
        """Writes a change of the run other than its status (metadata, usage), unless its
        status changed meanwhile; returns whether it was written."""
        return await self.unit.runs.move(run, run.status)

    async def open_run(self, run: Run) -> None:
        await self.unit.runs.insert(run)
        self.emit(run.id, "thread.run.created", run)
        self.emit(run.id, "thread.run.queued", run)

    async def open_step(self, run: Run, step: RunStep) -> None:
        await self.unit.steps.insert(step)
        self.emit(run.id, "thread.run.step.created", step)
        self.emit(run.id, "thread.run.step.in_progress", step)

    async def open_message(self, run: Run, message: Message) -> None:
        await self.unit.messages.insert_many([message])
        self.emit(run.id, "thread.message.created", message)
        self.emit(run.id, "thread.message.in_progress", message)

    async def save_step(self, run: Run, step: RunStep, announce: bool = True) -> None:
        await self.unit.steps.replace(step)
        if announce:
            self.emit(run.id, f"thread.run.step.{step.status}", step)

    async def save_message(self, run: Run, message: Message) -> None:
        await self.unit.messages.replace(message)
        done = message.status == "completed"
        self.emit(run.id, f"thread.message.{'completed' if done else 'incomplete'}", message)

    async def close_open(
        self,
        run: Run,
        status: str,
        last_error: JsonDict | None = None,
        live: Sequence[RunStep | Message] = (),
    ) -> None:
        """The one way a run's unfinished steps end when the run stops early (cancelled,
        failed, expired): each open step ends `status` (a reply's step `cancelled` unless
        the run expired), and a half-written message ends incomplete. `live` holds the
        executor's newer copies of steps and messages (their text, their calls)."""
        now = now_ms()
        newer: Mapping[str, RunStep | Message] = {item.id: item for item in live}
        for stored in await self.unit.steps.all_of(run.id):
            step = newer.get(stored.id, stored)
            assert isinstance(step, RunStep)
            if step.status != "in_progress":
                continue
            details = step.step_details
            if isinstance(details, MessageCreationDetails):
                await self._close_message(run, details.message_id, newer)
                step.status = "expired" if status == "expired" else "cancelled"
            else:
                step.status = _STEP_ENDS.get(status, status)
                step.last_error = last_error or step.last_error
            setattr(step, _STEP_STAMPS.get(step.status, "failed_at"), now)
            await self.save_step(run, step)

    async def discard_cut_turn(self, run: Run) -> None:
        """Takes back the model turn that a worker which stopped (a crash, a kill) left
        half-done, so that the worker taking the run over asks the model again: its reply
        step and message (whose text was only ever published as deltas, never written)
        and a tool-call step whose calls were never recorded are deleted.

        Deleted rather than rewritten under the same ids: readers of the run's stream
        already saw part of that reply as deltas of its message id, and a second text
        under that id would read as doubled text. They are told the partial message
        ended (`thread.message.incomplete`, its step `cancelled`) before the new turn
        opens a message of its own, which is the order both SDKs need (one message
        finished before the next is created); the thread keeps exactly one reply.
        A tool-call step with recorded calls stays: its finished calls are not run again.
        """
        now = now_ms()
        for step in await self.unit.steps.all_of(run.id):
            details = step.step_details
            if step.status != "in_progress" or (
                isinstance(details, ToolCallsDetails) and details.tool_calls
            ):
                continue
            if isinstance(details, MessageCreationDetails):
                await self._discard_message(run, details.message_id)
            await self.unit.steps.delete(step.id)
            step.status, step.cancelled_at = "cancelled", now
            self.emit(run.id, "thread.run.step.cancelled", step)

    async def _discard_message(self, run: Run, message_id: str) -> None:
        message = (await self.unit.messages.get_many([message_id])).get(message_id)
        if message is None:
            return
        await self.unit.messages.delete(message_id)
        message.status = "incomplete"
        self.emit(run.id, "thread.message.incomplete", message)

    async def _close_message(
        self, run: Run, message_id: str, newer: Mapping[str, RunStep | Message]
    ) -> None:
        message = newer.get(message_id)
        if message is None:
            message = (await self.unit.messages.get_many([message_id])).get(message_id)
        if isinstance(message, Message) and message.status == "in_progress":
            message.status, message.completed_at = "incomplete", None
            await self.save_message(run, message)


# Events of a run queued on the bus and not yet known to be in its log; a run with more
# waits for the oldest (so a stalled transport holds the model stream back).
MAX_UNSETTLED = 256


class Journal:
    def __init__(self, store: Store, bus: EventBus, telemetry: Telemetry | None = None) -> None:
        self.store = store
        self.bus = bus
        # Counts each status a run enters (here: every mover's change passes through).
        self.telemetry = telemetry or Telemetry()
        self._unsettled: dict[str, deque[Awaitable[Any]]] = {}  # by run

    @asynccontextmanager
    async def entry(self, workspace_id: str) -> AsyncIterator[Entry]:
        """A write transaction; its events are published after it commits (and dropped
        if it rolls back)."""
        async with self.store.workspace(workspace_id, write=True) as unit:
            entry = Entry(unit)
            yield entry
        runs = dict.fromkeys(r for r, _, _ in entry.events)
        await self.bus.publish_many([(r, name, replace(data)) for r, name, data in entry.events])
        for _, name, data in entry.events:
            if isinstance(data, Run) and name == run_event_name(data):
                self.telemetry.run_entered(data.status)
        for run_id in runs:  # queued ahead of the events above: in the log by now
            await self._settle(run_id)

    async def publish(self, run_id: str, name: str, data: Any) -> None:
        """An event that changes no state (token and call deltas, a deleted run's end).
        A delta is queued without waiting for the transport (one round trip a delta
        would pace the model stream at the bus's latency); the run's next state change,
        its final event or a backlog of MAX_UNSETTLED waits for it, and a failure to
        publish it is raised there or by the run's next delta."""
        if name in FINAL_EVENTS:
            await self.bus.publish(run_id, name, data)
            await self._settle(run_id)
            return
        while not self.publish_now(run_id, name, data):
            await self._unsettled[run_id].popleft()  # raises its error, or makes room

    def publish_now(self, run_id: str, name: str, data: Any) -> bool:
        """`publish` of a delta where it need not wait: False (nothing published) where
        it would, for an earlier event of the run that failed or for room among those
        queued, and for a final event."""
        if name in FINAL_EVENTS:
            return False
        queued = self._unsettled.get(run_id)
        while queued and _settled_well(queued[0]):
            queued.popleft()
        if queued and (_settled(queued[0]) or len(queued) >= MAX_UNSETTLED):
            return False  # `publish` raises a failed one's error, or waits for room
        future = self.bus.publish_soon(run_id, name, data)
        if future is None:  # an in-process bus: in the log already
            return True
        if isinstance(future, asyncio.Future):  # its error is raised later, not logged
            future.add_done_callback(_retrieve)
        if queued is None:
            queued = self._unsettled[run_id] = deque()
        queued.append(future)
        return True

    def forget(self, run_id: str) -> None:
        """Stops keeping the run's queued events (its execution ended): they still go
        out, and a failure of theirs is dropped (the run's state is in the store)."""
        self._unsettled.pop(run_id, None)

    async def _settle(self, run_id: str) -> None:
        """Waits for the run's queued events to be in its log."""
        queued = self._unsettled.pop(run_id, None)
        while queued:
            await queued.popleft()


def _settled(pending: Awaitable[Any]) -> bool:
    return isinstance(pending, asyncio.Future) and pending.done()


def _settled_well(pending: Awaitable[Any]) -> bool:
    """In the log, without a failure to raise."""
    return (
        isinstance(pending, asyncio.Future)
        and pending.done()
        and not pending.cancelled()
        and pending.exception() is None
    )


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
