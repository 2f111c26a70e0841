"""Run events as versioned JSON, so they can cross processes: the event's name, the type
of its data and the data's fields. A process reading a version it does not know refuses
it rather than guess."""

from __future__ import annotations

from typing import Any

import orjson

from assistd.core.events import MessageDelta, StepDelta, StreamError, ToolCallFragment
from assistd.core.objects import (
    Attachment,
    Message,
    MessageCreationDetails,
    RequiredAction,
    Run,
    RunOptions,
    RunStep,
    SamplingParams,
    Thread,
    ToolCall,
    ToolCallsDetails,
    ToolChoice,
)

VERSION = 1

_TYPES: dict[type, str] = {
    Thread: "thread", Run: "run", RunStep: "run_step", Message: "message",
    MessageDelta: "message_delta", StepDelta: "step_delta", StreamError: "error",
}  # fmt: skip


class CodecError(ValueError):
    """An event this process cannot read (another version, or not an event at all)."""


def encode_event(name: str, data: Any) -> bytes:
    # orjson writes dataclasses (nested ones too) field by field, as asdict would, without
    # the deep copy asdict makes first (ten times the cost of the encoding itself on a Run).
    return orjson.dumps(event_doc(name, data))


def event_doc(name: str, data: Any) -> dict[str, Any]:
    """The event as orjson writes it (its data still the published object)."""
    if data is None:
        kind = "none"
    else:
        kind = _TYPES.get(type(data), "")
        if not kind:
            raise TypeError(f"run events cannot carry {type(data).__name__}")
    return {"v": VERSION, "name": name, "type": kind, "data": data}


def decode_event(raw: str | bytes) -> tuple[str, Any]:
    """The event's name and its data, rebuilt as the object that was published."""
    try:
        doc = orjson.loads(raw)
    except (orjson.JSONDecodeError, TypeError) as exc:
        raise CodecError(f"not a run event: {exc}") from exc
    return event_from_doc(doc)


def event_from_doc(doc: Any) -> tuple[str, Any]:
    """The event's name and data from an event_doc read back from JSON."""
    try:
        if doc["v"] != VERSION:
            raise CodecError(f"run event version {doc['v']!r}, this process reads {VERSION}")
        return doc["name"], _decode_data(doc["type"], doc["data"])
    except (KeyError, TypeError) as exc:
        raise CodecError(f"not a run event: {exc}") from exc


def _decode_data(kind: str, d: Any) -> Any:
    match kind:
        case "none":
            return None
        case "thread":
            return Thread(**d)
        case "message":
            attachments = [Attachment(**a) for a in d.pop("attachments", [])]
            return Message(**d, attachments=attachments)
        case "message_delta":
            return MessageDelta(**d)
        case "error":
            return StreamError(**d)
        case "step_delta":
            return StepDelta(d["step_id"], [ToolCallFragment(**f) for f in d["tool_calls"]])
        case "run":
            return _run(d)
        case "run_step":
            return _run_step(d)
    raise CodecError(f"unknown run event data type {kind!r}")


def _tool_calls(calls: list[dict[str, Any]]) -> list[ToolCall]:
    return [ToolCall(**call) for call in calls]


def _run(d: dict[str, Any]) -> Run:
    action = d.pop("required_action")
    if action is not None:
        action = RequiredAction(_tool_calls(action["tool_calls"]), action["type"])
    sampling = SamplingParams(**d.pop("sampling"))
    options = dict(d.pop("options"))
    choice = ToolChoice(**options.pop("tool_choice"))
    d["options"] = RunOptions(tool_choice=choice, **options)
    return Run(**d, required_action=action, sampling=sampling)


def _run_step(d: dict[str, Any]) -> RunStep:
    details = d.pop("step_details")
    if details["type"] == "tool_calls":
        step_details: ToolCallsDetails | MessageCreationDetails = ToolCallsDetails(
            _tool_calls(details["tool_calls"])
        )
    else:
        step_details = MessageCreationDetails(details["message_id"])
    return RunStep(**d, step_details=step_details)
