"""One round of tool calls. The server-run calls run at the same time, each under its time
limit (the registry's); a client function call only has its arguments checked, so the
client never sees a call the model has to correct. Each call's output, with what it made
(images, files), is committed with its step as soon as the call ends, where the run's next
reply (or a worker that takes the run over) finds it.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field, replace

from assistd.core import runs as rs
from assistd.core.citations import Cited
from assistd.core.events import StepDelta, ToolCallFragment
from assistd.core.file_links import FileLinks
from assistd.core.ids import now_ms
from assistd.core.journal import Journal
from assistd.core.objects import (
    JsonDict,
    MessageCreationDetails,
    RequiredAction,
    Run,
    RunStep,
    ToolCall,
    ToolCallsDetails,
)
from assistd.core.turn import Turn, new_step
from assistd.models.base import ToolCallDelta
from assistd.queue.base import RunJob
from assistd.settings import Settings
from assistd.tools.arguments import parse_arguments
from assistd.tools.base import ToolContext
from assistd.tools.registry import OfferedTool, ToolRegistry


class RunCancelled(Exception):
    pass


class ToolRound:
    """The tool-call step of a turn: opened by the model's first call fragment, its calls
    run, then completed or left waiting for the client's function outputs."""

    def __init__(self, journal: Journal, tools: ToolRegistry, settings: Settings):
        self.journal = journal
        self.tools = tools
        self.settings = settings

    async def on_delta(self, job: RunJob, run: Run, turn: Turn, delta: ToolCallDelta) -> None:
        if not run.options.parallel_tool_calls and turn.calls and delta.index not in turn.calls:
            return  # one call a turn: a model that made more is not followed
        if turn.tool_step is None:
            step = new_step(run, ToolCallsDetails())
            async with self.journal.entry(job.workspace_id) as entry:
                await entry.open_step(run, step)
            turn.tool_step = step
        fragment = turn.add_tool_delta(delta)
        await self.journal.publish(
            run.id, "thread.run.step.delta", StepDelta(turn.tool_step.id, [fragment])
        )

    async def run(
        self,
        job: RunJob,
        run: Run,
        step: RunStep,
        offered: dict[str, OfferedTool],
        context: ToolContext,
    ) -> None:
        """Answers every call of the step that has no output yet (a round taken over from
        a stopped worker skips those it finished). Cancelling this cancels every call
        still running."""
        assert isinstance(step.step_details, ToolCallsDetails)
        saving = asyncio.Lock()
        async with asyncio.TaskGroup() as group:
            for index, call in enumerate(step.step_details.tool_calls):
                group.create_task(self._call(job, run, step, index, call, offered, context, saving))

    async def _call(
        self,
        job: RunJob,
        run: Run,
        step: RunStep,
        index: int,
        call: ToolCall,
        offered: dict[str, OfferedTool],
        context: ToolContext,
        saving: asyncio.Lock,
    ) -> None:
        tool = offered.get(call.name)
        if tool is None or call.output is not None:
            return  # not offered (told so already), or answered (a repeat, or before a takeover)
        if call.type == "function":
            _, call.output = parse_arguments(call.arguments, tool.parameters)
            return
        with self.journal.telemetry.tool_call(call.name or call.type, call.id):
            result = await self.tools.run(tool, call.arguments, replace(context, call_id=call.id))
        call.output = result.output
        call.details = result.details
        call.display = result.display
        call.image_file_ids = list(result.image_file_ids)
        call.file_ids = list(result.file_ids)
        # Committed as soon as the call ends, with what it made, so that a worker taking
        # the run over does not run it again. One save at a time: each writes the whole
        # step, so a later save always holds every output an earlier one held.
        async with saving, self.journal.entry(job.workspace_id) as entry:
            await entry.save_step(run, step, announce=False)
            entry.emit(
                run.id, "thread.run.step.delta", StepDelta(step.id, [output_fragment(index, call)])
            )

    async def close(self, job: RunJob, run: Run, step: RunStep, usage: JsonDict | None) -> bool:
        """Completes the step, or leaves it waiting for the client's outputs of its function
        calls; returns True when the run now waits for them."""
        step.usage = usage
        assert isinstance(step.step_details, ToolCallsDetails)
        calls = step.step_details.tool_calls
        pending = [c for c in calls if c.type == "function" and c.output is None]
        if pending:
            await self._require_action(job, run, step, pending)
            return True
        step.status, step.completed_at = "completed", now_ms()
        async with self.journal.entry(job.workspace_id) as entry:
            await entry.save_step(run, step)
        return False

    async def _require_action(
        self, job: RunJob, run: Run, step: RunStep, pending: list[ToolCall]
    ) -> None:
        async with self.journal.entry(job.workspace_id) as entry:
            await entry.save_step(run, step, announce=False)
            moved = await entry.move(
                run,
                rs.RunStatus.REQUIRES_ACTION,
                required_action=RequiredAction([replace(c) for c in pending]),
                expires_at=now_ms() + self.settings.run_expiry_s * 1000,
            )
            if not moved:
                raise RunCancelled  # a cancel came first (this rolls the step back)


def output_fragment(index: int, call: ToolCall) -> ToolCallFragment:
    """The end of a server-run call as it streams: its output, and no more arguments (a
    client adding up the pieces' arguments gets the whole of them)."""
    return ToolCallFragment(
        index=index, id=call.id, type=call.type, name=call.name, stage="output",
        output=call.output, display=call.display, image_file_ids=list(call.image_file_ids),
        details=call.details,
    )  # fmt: skip


@dataclass(slots=True)
class Made:
    """Images and other files the tools of a run made, for a reply to carry, and the
    searches whose results it may cite."""

    image_file_ids: list[str]
    file_ids: list[str]
    searches: list[Cited] = field(default_factory=list)


def made_for_reply(steps: list[RunStep], message_step_id: str) -> Made:
    """What the calls of the run's tool steps since its previous message made: the reply of
    `message_step_id` carries them (even when the round also waited for the client).
    Searches count from the run's start: their markers are numbered per run."""
    made = Made([], [])
    for step in steps:
        details = step.step_details
        if isinstance(details, MessageCreationDetails) and step.id != message_step_id:
            made = Made([], [], made.searches)  # an earlier reply carried what came before it
        elif isinstance(details, ToolCallsDetails):
            for call in details.tool_calls:
                made.image_file_ids.extend(call.image_file_ids)
                made.file_ids.extend(call.file_ids)
                if call.details is not None and "turn" in call.details:
                    turn, results = call.details["turn"], call.details.get("results") or []
                    made.searches.append(Cited(int(turn), results))
    return made


def image_links(links: FileLinks, workspace_id: str, image_file_ids: list[str]) -> str:
    """Markdown images with signed, expiring links: what a reply's text shows of them, so
    the user can open them in a browser without an API key."""
    return "\n\n".join(f"![image]({links.url(workspace_id, f)})" for f in image_file_ids)
