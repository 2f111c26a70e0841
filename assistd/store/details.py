"""Step details and required actions: domain objects <-> the JSON the store keeps.

Rows written before tool calls were typed hold them in the DashScope wire shape
(`{"id","type":"function","function":{"name","arguments","output"}}` and
`{"id","type":K,K:{"input","output"}}`); they are still read. New rows hold one flat
object per call, told apart by its top-level `arguments`.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from assistd.core.objects import (
    MessageCreationDetails,
    RequiredAction,
    RunOptions,
    StepDetails,
    ToolCall,
    ToolCallsDetails,
    ToolChoice,
)

Json = dict[str, Any]


def tool_call_json(call: ToolCall) -> Json:
    return {
        "id": call.id,
        "type": call.type,
        "name": call.name,
        "arguments": call.arguments,
        "output": call.output,
        "display": call.display,
        "image_file_ids": list(call.image_file_ids),
        "file_ids": list(call.file_ids),
        **({"details": call.details} if call.details is not None else {}),
    }


def tool_call(data: Json) -> ToolCall:
    if "arguments" in data:
        return ToolCall(
            id=str(data["id"]),
            type=str(data["type"]),
            name=str(data["name"]),
            arguments=str(data["arguments"]),
            output=data.get("output"),
            display=data.get("display"),
            image_file_ids=list(data.get("image_file_ids") or []),
            file_ids=list(data.get("file_ids") or []),
            details=data.get("details"),
        )
    return _legacy_call(data)


def _legacy_call(data: Json) -> ToolCall:
    kind = str(data.get("type"))
    if kind == "function":
        function = data.get("function") or {}
        return ToolCall(
            id=str(data["id"]),
            type=kind,
            name=str(function.get("name", "")),
            arguments=str(function.get("arguments") or "{}"),
            output=function.get("output"),
        )
    body = data.get(kind) or {}
    return ToolCall(
        id=str(data["id"]),
        type=kind,
        name=kind,  # built-ins were offered under their type
        arguments=str(body.get("input") or "{}"),
        output=body.get("output"),
    )


def step_details_json(details: StepDetails) -> Json:
    if isinstance(details, MessageCreationDetails):
        return {"type": "message_creation", "message_creation": {"message_id": details.message_id}}
    return {"type": "tool_calls", "tool_calls": [tool_call_json(c) for c in details.tool_calls]}


def step_details(data: Json) -> StepDetails:
    if data.get("type") == "message_creation":
        return MessageCreationDetails(message_id=str(data["message_creation"]["message_id"]))
    return ToolCallsDetails(tool_calls=[tool_call(c) for c in data.get("tool_calls") or []])


def required_action_json(action: RequiredAction | None) -> Json | None:
    if action is None:
        return None
    return {"type": action.type, "tool_calls": [tool_call_json(c) for c in action.tool_calls]}


def required_action(data: Json | None) -> RequiredAction | None:
    if not data:
        return None
    if "tool_calls" in data:
        calls = data["tool_calls"]
    else:  # the wire shape rows held before
        calls = (data.get("submit_tool_outputs") or {}).get("tool_calls") or []
    return RequiredAction(tool_calls=[tool_call(c) for c in calls])


def run_options_json(options: RunOptions) -> Json | None:
    """None when every option is at its default (most runs), so old and new rows agree."""
    if options == RunOptions():
        return None
    return asdict(options)


def run_options(data: Json | None) -> RunOptions:
    if not data:
        return RunOptions()
    fields = dict(data)
    choice = ToolChoice(**(fields.pop("tool_choice", None) or {}))
    return RunOptions(tool_choice=choice, **fields)
