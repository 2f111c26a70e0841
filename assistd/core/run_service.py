"""Use-cases for runs and run steps: create, read, update, cancel, submit tool outputs.

Each changes state in one transaction, then publishes the matching events, then (when
the run should move on) queues the job for a worker.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from typing import Any

from assistd.core import run_options as ro
from assistd.core import runs as rs
from assistd.core import validation as v
from assistd.core.events import EventBus, run_event_name
from assistd.core.ids import new_id, now_ms
from assistd.core.journal import Journal
from assistd.core.objects import (
    Assistant,
    JsonDict,
    Page,
    PageRequest,
    Run,
    RunOptions,
    RunStep,
    SamplingParams,
    Thread,
)
from assistd.core.search_stores import StoresSpec
from assistd.core.service import MessageSpec, Service, add_messages, busy_thread
from assistd.core.tool_outputs import ToolOutput as ToolOutput  # the surfaces' import
from assistd.core.tool_outputs import fill_outputs, match_outputs
from assistd.core.usage import CALLER_KEY
from assistd.errors import Conflict, NotFound
from assistd.queue.base import CancelChannel, LeasedRunQueue, RunJob
from assistd.store.base import WorkspaceUnit

log = logging.getLogger("assistd.runs")
_ADDED = "additional_messages"


@dataclass(slots=True)
class RunSpec:
    assistant_id: str
    model: str | None = None
    instructions: str | None = None
    additional_instructions: str | None = None
    tools: Any = None
    metadata: Any = None
    sampling: SamplingParams = field(default_factory=SamplingParams)
    options: RunOptions = field(default_factory=RunOptions)
    # None: the assistant's; "auto" or an object (as `check_response_format` takes):
    # this run's, which `_checked` turns into the checked object (None for "auto").
    response_format: Any = None
    given_format: bool = False  # set by `_checked`: the run gave its own format
    additional_messages: list[MessageSpec] = field(default_factory=list)


class RunService:
    def __init__(
        self, objects: Service, journal: Journal, queue: LeasedRunQueue, cancels: CancelChannel
    ) -> None:
        self.objects = objects
        self.store = objects.store
        self.settings = objects.settings
        self.journal = journal
        self.bus: EventBus = journal.bus  # the streams read it
        self.queue = queue
        self.cancels = cancels

    # ---- create -------------------------------------------------------------------------

    def _checked(self, spec: RunSpec) -> RunSpec:
        """The spec with every field checked, before anything is read or written."""
        _check_run_text(spec)
        return replace(
            spec,
            metadata=v.check_metadata(spec.metadata),
            sampling=v.check_sampling(spec.sampling),
            options=ro.check_run_options(spec.options),
            response_format=v.check_response_format(spec.response_format),
            given_format=spec.response_format is not None,
        )

    async def _new_run(self, unit: WorkspaceUnit, thread_id: str, spec: RunSpec) -> Run:
        """A run of a checked spec (see `_checked`) on the assistant's defaults. The
        run's own tools are checked here, against the workspace's plugins."""
        if spec.tools:
            spec = replace(spec, tools=await self.objects.checked_tools(unit, spec.tools))
        assistant = await unit.assistants.get(spec.assistant_id)
        if assistant is None:
            raise NotFound.of("assistant", spec.assistant_id)
        instructions = (
            spec.instructions if spec.instructions is not None else assistant.instructions
        )
        if spec.additional_instructions:
            instructions = (
                f"{instructions}\n\n{spec.additional_instructions}"
                if instructions
                else spec.additional_instructions
            )
        tools = spec.tools or assistant.tools
        ro.check_tool_choice(spec.options.tool_choice, tools)
        return Run(
            id=new_id("run"),
            thread_id=thread_id,
            assistant_id=assistant.id,
            created_at=now_ms(),
            status=rs.RunStatus.QUEUED.value,
            model=spec.model or assistant.model,
            instructions=instructions,
            tools=tools,
            file_ids=assistant.file_ids,
            metadata=spec.metadata,
            sampling=SamplingParams(
                **{
                    name: getattr(spec.sampling, name)
                    if getattr(spec.sampling, name) is not None
                    else getattr(assistant.sampling, name)
                    for name in ("temperature", "top_p", "top_k", "max_tokens")
                }
            ),
            options=replace(spec.options, response_format=_response_format(spec, assistant)),
            key_id=CALLER_KEY.get(),
        )

    async def create_run(self, ws: str, thread_id: str, spec: RunSpec) -> Run:
        checked = self._checked(spec)
        async with self.journal.entry(ws) as entry:
            locked = await entry.unit.threads.lock_for_run(thread_id)
            if locked is None:
                raise NotFound.of("thread", thread_id)
            if (active_id := locked[1]) is not None:
                active = await entry.unit.runs.get(thread_id, active_id)
                assert active is not None  # read in this transaction, under the thread's lock
                raise busy_thread(thread_id, active)
            run = await self._new_run(entry.unit, thread_id, checked)
            await add_messages(entry.unit, thread_id, checked.additional_messages, _ADDED)
            await entry.open_run(run)
        try:  # before the run starts, so that its searches find the files
            await self.objects.add_to_thread_store(ws, thread_id, checked.additional_messages)
        finally:  # the run is made: it runs whatever happened to the store
            await self._start(ws, run)
        return run

    async def create_thread_and_run(
        self,
        ws: str,
        messages: list[MessageSpec],
        metadata: Any,
        spec: RunSpec,
        file_ids: Any = None,
        stores: StoresSpec | None = None,
    ) -> tuple[Thread, Run]:
        """One transaction: a request that fails leaves no thread behind. `file_ids`:
        the code interpreter's files of the new thread; `stores` its file_search stores
        (made, when asked, before the transaction: the run must find them)."""
        checked = self._checked(spec)
        thread, built = self.objects.new_thread(messages, metadata, "thread.", file_ids)
        await self.objects.thread_stores(ws, thread, messages, stores, "thread.")
        async with self.journal.entry(ws) as entry:
            run = await self._new_run(entry.unit, thread.id, checked)
            await self.objects.insert_thread(entry.unit, thread, built)
            await entry.open_run(run)
        await self._start(ws, run)
        return thread, run

    async def _start(self, ws: str, run: Run) -> None:
        trace = self.journal.telemetry.traceparent()
        await self.queue.enqueue(RunJob(ws, run.thread_id, run.id, run.leg, trace))

    # ---- read ---------------------------------------------------------------------------

    async def get_run(self, ws: str, thread_id: str, run_id: str) -> Run:
        async with self.store.workspace(ws) as unit:
            run = await _run(unit, thread_id, run_id)
        if _overdue(run):
            return await self._expire(RunJob(ws, thread_id, run_id))
        return run

    async def stored_run(self, ws: str, thread_id: str, run_id: str) -> Run | None:
        """The run as stored, or None if it no longer exists (for streams checking on it)."""
        async with self.store.workspace(ws) as unit:
            return await unit.runs.get(thread_id, run_id)

    async def list_runs(self, ws: str, thread_id: str, page: PageRequest) -> Page[Run]:
        async with self.store.workspace(ws) as unit:
            found = await unit.runs.page(thread_id, page)
            if not found.items and await unit.threads.get(thread_id) is None:
                raise NotFound.of("thread", thread_id)
            return found

    async def update_run(self, ws: str, thread_id: str, run_id: str, metadata: Any) -> Run:
        checked = v.check_metadata(metadata) if metadata is not None else None
        while True:
            async with self.journal.entry(ws) as entry:
                run = await _run(entry.unit, thread_id, run_id)
                if checked is None:
                    return run
                run.metadata = checked
                if await entry.save_run(run):
                    return run
            # its status moved between the read and the write: read it again

    async def get_step(self, ws: str, thread_id: str, run_id: str, step_id: str) -> RunStep:
        async with self.store.workspace(ws) as unit:
            await _run(unit, thread_id, run_id)
            step = await unit.steps.get(run_id, step_id)
        if step is None:
            raise NotFound.of("run step", step_id)
        return step

    async def list_steps(
        self, ws: str, thread_id: str, run_id: str, page: PageRequest
    ) -> Page[RunStep]:
        async with self.store.workspace(ws) as unit:
            await _run(unit, thread_id, run_id)
            return await unit.steps.page(run_id, page)

    async def delete_thread(self, ws: str, thread_id: str) -> None:
        """Deletes the thread with everything in it; a run still going on it ends cancelled,
        so its streams end too."""
        async with self.store.workspace(ws, write=True) as unit:
            active = await unit.runs.active(thread_id)
            if not await unit.threads.delete(thread_id):
                raise NotFound.of("thread", thread_id)
        if active is None:
            return
        if active.status != rs.RunStatus.REQUIRES_ACTION:
            # A worker holds it, or may have taken it just now: it ends the run itself.
            await self.cancels.cancel(active.id)
        if active.status in (rs.RunStatus.QUEUED, rs.RunStatus.REQUIRES_ACTION):
            # No worker holds it: its end is announced here (the row is gone).
            rs.transition(active, rs.RunStatus.CANCELLED, now_ms())
            await self.journal.publish(active.id, run_event_name(active), replace(active))
            _log_ended(ws, active, "its thread was deleted")

    # ---- cancel, expire: each reads the run and moves it by compare-and-set;
    # ---- when another mover came first, it reads the run again and decides afresh.

    async def cancel_run(self, ws: str, thread_id: str, run_id: str) -> Run:
        while True:
            async with self.journal.entry(ws) as entry:
                run = await _run(entry.unit, thread_id, run_id)
                if rs.is_terminal(run.status) or run.status == rs.RunStatus.CANCELLING:
                    raise Conflict(
                        f"Run '{run_id}' is {run.status}; only an active run can be cancelled."
                    )
                # Nothing executes a queued or waiting run, so it ends at once; a running
                # one is told to stop and ends as soon as its worker notices.
                running = run.status == rs.RunStatus.IN_PROGRESS
                target = rs.RunStatus.CANCELLING if running else rs.RunStatus.CANCELLED
                moved = await entry.stop(run, target)
            if moved:
                break
        if running:
            await self.cancels.cancel(run_id)
        else:
            _log_ended(ws, run, "cancelled before a worker ran it")
        return run

    async def _expire(self, job: RunJob) -> Run:
        error = {
            "code": "expired",
            "message": "No tool outputs were submitted before the run expired.",
        }
        while True:
            async with self.journal.entry(job.workspace_id) as entry:
                run = await _run(entry.unit, job.thread_id, job.run_id)
                if not _overdue(run):
                    return run
                moved = await entry.stop(run, rs.RunStatus.EXPIRED, error)
            if moved:
                _log_ended(job.workspace_id, run, "no tool outputs came in time")
                return run

    async def expire_overdue(self) -> None:
        for ws, thread_id, run_id in await self.store.runs_expiring(now_ms()):
            await self._expire(RunJob(ws, thread_id, run_id))

    # ---- tool outputs -------------------------------------------------------------------

    async def submit_tool_outputs(
        self, ws: str, thread_id: str, run_id: str, outputs: list[ToolOutput]
    ) -> tuple[Run, int]:
        """Returns the run and the sequence number after which this leg's events start."""
        async with self.journal.entry(ws) as entry:
            run = await _run(entry.unit, thread_id, run_id)
            if _overdue(run):
                raise Conflict(f"Run '{run_id}' expired before its tool outputs arrived.")
            if run.status != rs.RunStatus.REQUIRES_ACTION or not run.required_action:
                raise Conflict(
                    f"Run '{run_id}' is {run.status}; it is not waiting for tool outputs."
                )
            matched = match_outputs(run.required_action.tool_calls, outputs)
            step = await _waiting_step(entry.unit, run)
            fill_outputs(step, matched)
            step.status, step.completed_at = "completed", now_ms()
            await entry.save_step(run, step)
            # A new leg: the job of the last one may still come back (its worker died
            # before acking it); it carries the old leg, so no worker runs it.
            queued = await entry.move(run, rs.RunStatus.QUEUED, expires_at=None, leg=run.leg + 1)
            if not queued:
                # e.g. the expiry sweep or a cancel came first; the step is rolled back
                raise Conflict(f"Run '{run_id}' stopped waiting for tool outputs meanwhile.")
            start = await self.bus.last_seq(run_id)  # this leg's events follow the commit
        trace = self.journal.telemetry.traceparent()
        await self.queue.enqueue(RunJob(ws, thread_id, run_id, run.leg, trace))
        return run, start


def _log_ended(workspace: str, run: Run, why: str) -> None:
    """The run line of a run that ended without its worker (which logs its own)."""
    fields = {"status": str(run.status), "model": run.model}
    log.info(
        "run %s: %s, model %s, ended outside a worker: %s", run.id, run.status, run.model, why,
        extra={"fields": fields, "run_id": run.id, "workspace": workspace},
    )  # fmt: skip


def _response_format(spec: RunSpec, assistant: Assistant) -> JsonDict | None:
    """The run's own format when it gave one (checked: "auto" is None by then), else
    the assistant's."""
    return spec.response_format if spec.given_format else assistant.response_format


def _check_run_text(spec: RunSpec) -> None:
    v.check_id(spec.assistant_id, "assistant_id")
    v.check_length(spec.instructions, "instructions", v.INSTRUCTIONS_MAX)
    v.check_length(spec.additional_instructions, "additional_instructions", v.INSTRUCTIONS_MAX)
    v.check_length(spec.model, "model", v.MODEL_MAX)


async def _run(unit: WorkspaceUnit, thread_id: str, run_id: str) -> Run:
    run = await unit.runs.get(thread_id, run_id)
    if run is None:
        if await unit.threads.get(thread_id) is None:
            raise NotFound.of("thread", thread_id)
        raise NotFound.of("run", run_id)
    return run


def _overdue(run: Run) -> bool:
    return (
        run.status == rs.RunStatus.REQUIRES_ACTION
        and run.expires_at is not None
        and run.expires_at < now_ms()
    )


async def _waiting_step(unit: WorkspaceUnit, run: Run) -> RunStep:
    for step in reversed(await unit.steps.all_of(run.id)):
        if step.type == "tool_calls" and step.status == "in_progress":
            return step
    raise Conflict(f"Run '{run.id}' has no tool call step waiting for outputs.")
