"""Outputs a client submits for the function calls a run waits for: matched to the calls
(by id, or in order), then written into the waiting step's calls."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from assistd.core.objects import RunStep, ToolCall, ToolCallsDetails
from assistd.errors import InvalidRequest, echo


@dataclass(slots=True)
class ToolOutput:
    output: Any
    tool_call_id: str | None = None


def match_outputs(pending: list[ToolCall], outputs: list[ToolOutput]) -> dict[str, str]:
    """Pairs outputs with the pending calls: by `tool_call_id` where given, the rest in the
    order of the calls (the vendor's guide submits outputs without ids)."""
    if not outputs:
        raise InvalidRequest("'tool_outputs' must not be empty.", "tool_outputs")
    ids = [call.id for call in pending]
    matched: dict[str, str] = {}
    for index, out in enumerate(outputs):
        if out.tool_call_id is None:
            continue
        if out.tool_call_id not in ids:
            raise InvalidRequest(
                f"'tool_outputs[{index}].tool_call_id' is '{echo(out.tool_call_id)}', "
                "which this run did not ask for.",
                "tool_outputs",
            )
        if out.tool_call_id in matched:
            raise InvalidRequest(
                f"'tool_outputs' has two outputs for '{echo(out.tool_call_id)}'.", "tool_outputs"
            )
        matched[out.tool_call_id] = _as_text(out.output)
    free = iter(call_id for call_id in ids if call_id not in matched)
    for out in outputs:
        if out.tool_call_id is None:
            call_id = next(free, None)
            if call_id is None:
                raise InvalidRequest(
                    f"'tool_outputs' has {len(outputs)} outputs for {len(ids)} tool calls.",
                    "tool_outputs",
                )
            matched[call_id] = _as_text(out.output)
    missing = [call_id for call_id in ids if call_id not in matched]
    if missing:
        raise InvalidRequest(
            f"'tool_outputs' is missing outputs for: {', '.join(missing)}.", "tool_outputs"
        )
    return matched


def _as_text(output: Any) -> str:
    return output if isinstance(output, str) else json.dumps(output, ensure_ascii=False)


def fill_outputs(step: RunStep, outputs: dict[str, str]) -> None:
    if not isinstance(step.step_details, ToolCallsDetails):
        return
    for call in step.step_details.tool_calls:
        if call.type == "function" and call.id in outputs:
            call.output = outputs[call.id]
