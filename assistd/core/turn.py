"""The state of one model turn: the message being written and the tool calls being
assembled from streamed fragments; and how a round of calls that repeats the previous
round is recognised."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from assistd.core.events import ToolCallFragment
from assistd.core.ids import new_id, now_ms
from assistd.core.objects import JsonDict, Message, Run, RunStep, StepDetails, ToolCall
from assistd.core.rag import Documents
from assistd.models.base import ToolCallDelta, Usage
from assistd.tools.registry import OfferedTool


@dataclass
class _PartialCall:
    id: str
    name: str = ""
    arguments: list[str] = field(default_factory=list)


@dataclass
class Turn:
    offered: dict[str, OfferedTool] = field(default_factory=dict)
    unavailable: list[str] = field(default_factory=list)  # asked-for types not runnable here
    message: Message | None = None
    message_step: RunStep | None = None
    text: list[str] = field(default_factory=list)
    tool_step: RunStep | None = None
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    usage: Usage | None = None
    finish: str | None = None  # why the model's reply ended ("length": a token cap)
    documents: Documents | None = None  # what the run's `rag` tool found, for the prompt

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def type_of(self, name: str) -> str:
        """The type of the tool a call names; an unavailable built-in keeps its type."""
        tool = self.offered.get(name)
        if tool is not None:
            return tool.type
        return name if name in self.unavailable else "function"

    def add_tool_delta(self, delta: ToolCallDelta) -> ToolCallFragment:
        """Merges a streamed fragment; returns it as a piece of a step's tool call."""
        call = self.calls.get(delta.index)
        first = call is None
        if call is None:
            call = self.calls[delta.index] = _PartialCall(
                id=delta.id or f"call_{secrets.token_hex(12)}"
            )
        if delta.name:
            call.name += delta.name
        call.arguments.append(delta.arguments)
        return ToolCallFragment(
            index=delta.index, id=call.id, type=self.type_of(call.name), name=call.name,
            stage="start" if first else "arguments", arguments=delta.arguments,
        )  # fmt: skip

    def finished_calls(self) -> list[ToolCall]:
        """The assembled calls, outputs not yet known. A call of a tool the run does not
        offer gets an output saying so, and is not sent to the client."""
        finished: list[ToolCall] = []
        for index in sorted(self.calls):
            call = self.calls[index]
            kind = self.type_of(call.name)
            output = None
            if call.name in self.unavailable:
                output = f"The tool '{call.name}' is unavailable on this server. Answer without it."
            elif call.name not in self.offered:
                output = f"There is no tool named '{call.name}'."
            arguments = "".join(call.arguments) or "{}"
            finished.append(ToolCall(call.id, kind, call.name, arguments, output))
        return finished


def new_step(run: Run, details: StepDetails) -> RunStep:
    return RunStep(
        id=new_id("step"), run_id=run.id, thread_id=run.thread_id, assistant_id=run.assistant_id,
        created_at=now_ms(), type=details.type, status="in_progress", step_details=details,
    )  # fmt: skip


def step_usage(usage: Usage | None) -> JsonDict | None:
    """The step's token counts (each surface's renderer adds its own names)."""
    if usage is None:
        return None
    total = usage.prompt_tokens + usage.completion_tokens
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": total,
    }


# A call as (tool name, arguments as canonical JSON): equal when the call is the same.
CallKey = tuple[str, str]


def call_key(call: ToolCall) -> CallKey:
    try:
        canonical = json.dumps(json.loads(call.arguments), sort_keys=True, ensure_ascii=False)
    except json.JSONDecodeError:
        canonical = call.arguments.strip()
    return call.name, canonical


def round_outputs(calls: list[ToolCall]) -> dict[CallKey, str | None]:
    """What each call of a finished round returned, by key."""
    return {call_key(call): call.output for call in calls}


def mark_repeats(calls: list[ToolCall], previous: dict[CallKey, str | None]) -> bool:
    """Gives each call that repeats a call of the previous round exactly (same tool, same
    arguments) an output saying so, so it is not run again. True when every call of the
    round is such a repeat: the model is going round in circles (small models do)."""
    repeats = 0
    for call in calls:
        key = call_key(call)
        if key not in previous:
            continue
        repeats += 1
        earlier = previous[key]
        note = "Not run again: this call repeats the previous one exactly."
        call.output = note if earlier is None else f"{note} Its result was: {earlier}"
    return bool(calls) and repeats == len(calls)
