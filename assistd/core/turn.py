"""The state of one model turn: the message being written and the tool calls being
assembled from streamed fragments; and how a round of calls that repeats the previous
round is recognised."""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field

from assistd.core.context import tool_call_name_and_arguments, tool_call_output
from assistd.core.objects import JsonDict, Message, RunStep
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
    message: Message | None = None
    message_step: RunStep | None = None
    text: list[str] = field(default_factory=list)
    tool_step: RunStep | None = None
    calls: dict[int, _PartialCall] = field(default_factory=dict)
    usage: Usage | None = None

    def reset(self) -> None:
        self.__init__()  # type: ignore[misc]

    def type_of(self, name: str) -> str:
        tool = self.offered.get(name)
        return tool.type if tool is not None else "function"

    def add_tool_delta(self, delta: ToolCallDelta) -> JsonDict:
        """Merges a streamed fragment; returns the fragment as a step-delta tool call."""
        call = self.calls.get(delta.index)
        first = call is None
        if call is None:
            call = self.calls[delta.index] = _PartialCall(
                id=delta.id or f"call_{secrets.token_hex(12)}"
            )
        if delta.name:
            call.name += delta.name
        call.arguments.append(delta.arguments)
        kind = self.type_of(call.name)
        if kind != "function":
            body: JsonDict = {"input": delta.arguments}
            if first:
                body["output"] = None
            return {
                "index": delta.index,
                **({"id": call.id} if first else {}),
                "type": kind,
                kind: body,
            }
        function: JsonDict = {"arguments": delta.arguments}
        if first:
            function.update(name=call.name, output=None)
        return {
            "index": delta.index,
            **({"id": call.id} if first else {}),
            "type": "function",
            "function": function,
        }

    def finished_calls(self) -> list[JsonDict]:
        """The assembled calls in the neutral step shape, outputs not yet known. A call of a
        tool the run does not offer gets an output saying so, and is not sent to the client."""
        finished: list[JsonDict] = []
        for index in sorted(self.calls):
            call = self.calls[index]
            arguments = "".join(call.arguments) or "{}"
            kind = self.type_of(call.name)
            if kind != "function":
                finished.append(
                    {"id": call.id, "type": kind, kind: {"input": arguments, "output": None}}
                )
                continue
            output = None if call.name in self.offered else f"There is no tool named '{call.name}'."
            function = {"name": call.name, "arguments": arguments, "output": output}
            finished.append({"id": call.id, "type": "function", "function": function})
        return finished


def step_usage(usage: Usage | None) -> JsonDict | None:
    """All five counters: the dashscope SDK reads each one of a step's usage."""
    if usage is None:
        return None
    total = usage.prompt_tokens + usage.completion_tokens
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": total,
        "input_tokens": usage.prompt_tokens,
        "output_tokens": usage.completion_tokens,
    }


# A call as (tool name, arguments as canonical JSON): equal when the call is the same.
CallKey = tuple[str, str]


def call_key(call: JsonDict) -> CallKey:
    """The key of a call in the neutral step shape."""
    name, arguments = tool_call_name_and_arguments(call)
    try:
        canonical = json.dumps(json.loads(arguments), sort_keys=True, ensure_ascii=False)
    except json.JSONDecodeError:
        canonical = arguments.strip()
    return name, canonical


def round_outputs(calls: list[JsonDict]) -> dict[CallKey, str | None]:
    """What each call of a finished round returned, by key."""
    return {call_key(call): tool_call_output(call) for call in calls}


def mark_repeats(calls: list[JsonDict], previous: dict[CallKey, str | None]) -> bool:
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
        details = call["function"] if call["type"] == "function" else call[call["type"]]
        details["output"] = note if earlier is None else f"{note} Its result was: {earlier}"
    return bool(calls) and repeats == len(calls)
