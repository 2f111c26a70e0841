"""Runs, run steps and run events -> OpenAI Assistants v2 wire objects and SSE events
(spec sections 7.3, 7.4 and 9).

Tool calls are shown OpenAI's way: function calls with their output, the code
interpreter with its `input` (the code) and `outputs` (`logs`, `image`). The server's
other tools (DashScope's built-ins, plugins) are assistd extensions shown as
`{"id", "type": K, K: {"input", "output"}}`, which the SDK parses (as a tool call of an
unknown type) and its stream handler passes on.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from assistd.api.openai.render import message, seconds, thread
from assistd.core.events import MessageDelta, RunEvent, StepDelta, StreamError, ToolCallFragment
from assistd.core.objects import (
    JsonDict,
    Message,
    MessageCreationDetails,
    RequiredAction,
    Run,
    RunOptions,
    RunStep,
    StepDetails,
    Thread,
    ToolCall,
    ToolChoice,
)

Wire = dict[str, Any]
USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")
# OpenAI's codes for a run's last_error; ours map onto them, the message keeps the detail.
RATE_LIMITED = "rate_limit_exceeded"
# OpenAI's code for a prompt its content policy refused: what a content filter's block is.
INVALID_PROMPT = {"content_filtered": "invalid_prompt"}


def _usage(usage: JsonDict | None) -> Wire | None:
    return None if usage is None else {k: int(usage.get(k, 0)) for k in USAGE_KEYS}


def _last_error(error: JsonDict | None) -> Wire | None:
    if error is None:
        return None
    code = str(error.get("code") or "")
    mapped = RATE_LIMITED if "rate" in code.lower() else INVALID_PROMPT.get(code, "server_error")
    return {
        "code": mapped,
        "message": str(error.get("message") or code),
    }


def tool_choice(choice: ToolChoice) -> str | Wire:
    if choice.mode != "tool":
        return choice.mode
    if choice.tool_type == "function":
        return {"type": "function", "function": {"name": choice.name}}
    return {"type": choice.tool_type}


def _options(o: RunOptions) -> Wire:
    truncation = (
        {"type": "last_messages", "last_messages": o.last_messages}
        if o.last_messages is not None
        else {"type": "auto", "last_messages": None}
    )
    return {
        "tool_choice": tool_choice(o.tool_choice),
        "response_format": o.response_format if o.response_format is not None else "auto",
        "parallel_tool_calls": o.parallel_tool_calls,
        "max_prompt_tokens": o.max_prompt_tokens,
        "max_completion_tokens": o.max_completion_tokens,
        "truncation_strategy": truncation,
    }


def run(r: Run) -> Wire:
    incomplete = {"reason": r.incomplete_reason} if r.incomplete_reason else None
    return {
        "id": r.id,
        "object": "thread.run",
        "created_at": seconds(r.created_at),
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "status": r.status,
        "required_action": _required_action(r.required_action),
        "last_error": _last_error(r.last_error),
        "incomplete_details": incomplete,
        "usage": _usage(r.usage),
        "started_at": seconds(r.started_at),
        "expires_at": seconds(r.expires_at),
        "cancelled_at": seconds(r.cancelled_at),
        "failed_at": seconds(r.failed_at),
        "completed_at": seconds(r.completed_at),
        "model": r.model,
        "instructions": r.instructions or "",
        "tools": r.tools,
        "metadata": r.metadata,
        "temperature": r.sampling.temperature,
        "top_p": r.sampling.top_p,
        "reasoning_effort": None,
        **_options(r.options),
    }


def _required_action(action: RequiredAction | None) -> Wire | None:
    if action is None:
        return None
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in action.tool_calls
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}


# ---- steps --------------------------------------------------------------------------


def code_of(arguments: str) -> str:
    """The code of a code-interpreter call, from the model's arguments `{"code": ...}`."""
    try:
        parsed = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        return partial_code(arguments)
    return str(parsed.get("code", "")) if isinstance(parsed, dict) else str(arguments)


def _outputs(call: ToolCall) -> list[Wire]:
    shown = call.display if call.display is not None else call.output
    outputs: list[Wire] = [{"type": "logs", "logs": shown}] if shown is not None else []
    outputs += [{"type": "image", "image": {"file_id": f}} for f in call.image_file_ids]
    return outputs


# The `include[]` value that shows file_search results' text (spec section 6.6).
RESULT_CONTENT = "step_details.tool_calls[*].file_search.results[*].content"


def file_search(details: JsonDict | None, content: bool = False) -> Wire:
    """A file_search call's ranking options and results, as recorded with its step;
    each result's text only when `include[]` asks for it."""
    if details is None:
        return {}
    results = [
        {k: v for k, v in r.items() if k != "content" or content}
        for r in details.get("results") or []
    ]
    return {"ranking_options": details.get("ranking_options"), "results": results}


def tool_call(call: ToolCall, content: bool = False) -> Wire:
    if call.type == "function":
        function = {"name": call.name, "arguments": call.arguments, "output": call.output}
        return {"id": call.id, "type": "function", "function": function}
    if call.type == "code_interpreter":
        body = {"input": code_of(call.arguments), "outputs": _outputs(call)}
        return {"id": call.id, "type": "code_interpreter", "code_interpreter": body}
    if call.type == "file_search":
        return {
            "id": call.id,
            "type": "file_search",
            "file_search": file_search(call.details, content),
        }
    shown = call.display if call.display is not None else call.output
    return {"id": call.id, "type": call.type, call.type: {"input": call.arguments, "output": shown}}


def step_details(details: StepDetails, content: bool = False) -> Wire:
    if isinstance(details, MessageCreationDetails):
        return {"type": "message_creation", "message_creation": {"message_id": details.message_id}}
    calls = [tool_call(c, content) for c in details.tool_calls]
    return {"type": "tool_calls", "tool_calls": calls}


def step(st: RunStep, content: bool = False) -> Wire:
    """`content`: file_search results show their text (`include[]` asked for it)."""
    return {
        "id": st.id,
        "object": "thread.run.step",
        "created_at": seconds(st.created_at),
        "run_id": st.run_id,
        "assistant_id": st.assistant_id,
        "thread_id": st.thread_id,
        "type": st.type,
        "status": st.status,
        "step_details": step_details(st.step_details, content),
        "last_error": _last_error(st.last_error),
        "usage": _usage(st.usage),
        "expired_at": seconds(st.expired_at),
        "cancelled_at": seconds(st.cancelled_at),
        "failed_at": seconds(st.failed_at),
        "completed_at": seconds(st.completed_at),
        "metadata": st.metadata,
    }


# ---- stream events ------------------------------------------------------------------

_CODE_START = re.compile(r'"code"\s*:\s*"')


def partial_code(arguments: str) -> str:
    """As much of the code as the arguments written so far hold (they are JSON text
    arriving in pieces: `{"code": "print(1` ...): never a half escape."""
    match = _CODE_START.search(arguments)
    if match is None:
        return ""
    raw, i = arguments[match.end() :], 0
    while i < len(raw) and raw[i] != '"':
        width = (6 if raw[i + 1 : i + 2] == "u" else 2) if raw[i] == "\\" else 1
        if i + width > len(raw):
            break
        i += width
    try:
        return str(json.loads(f'"{raw[:i]}"'))
    except json.JSONDecodeError:
        return ""


def message_delta(d: MessageDelta) -> Wire:
    part = {"index": d.index, "type": "text", "text": {"value": d.text, "annotations": []}}
    return {"id": d.message_id, "object": "thread.message.delta", "delta": {"content": [part]}}


class EventRenderer:
    """Renders one stream's events. It remembers each code-interpreter call's arguments
    so far, so that its deltas carry the code itself, piece by piece (the SDK's handler
    adds the pieces of `input` up). `content`: steps show file_search results' text."""

    def __init__(self, content: bool = False) -> None:
        self._code: dict[tuple[str, int], tuple[str, str]] = {}  # -> (arguments, code shown)
        self.content = content

    def __call__(self, e: RunEvent) -> tuple[str, object] | None:
        data = e.data
        if isinstance(data, StreamError):
            error = {"message": data.message, "type": "server_error", "param": None,
                     "code": data.code}  # fmt: skip
            return "error", {"error": error}
        if isinstance(data, StepDelta):
            return e.name, self.step_delta(data)
        if isinstance(data, RunStep):
            return e.name, step(data, self.content)
        render = _RENDERERS.get(type(data))
        return (e.name, render(data)) if render is not None else None

    def step_delta(self, d: StepDelta) -> Wire:
        calls = [self._fragment(d.step_id, f) for f in d.tool_calls]
        details = {"type": "tool_calls", "tool_calls": calls}
        return {
            "id": d.step_id,
            "object": "thread.run.step.delta",
            "delta": {"step_details": details},
        }

    def _fragment(self, step_id: str, f: ToolCallFragment) -> Wire:
        """The first fragment of a call has its id (and a function's name and `output:
        null`); later ones only what is new, as the SDK adds strings up."""
        head: Wire = {"index": f.index, **({"id": f.id} if f.stage == "start" else {})}
        if f.type == "function":
            function: Wire = {"arguments": f.arguments}
            if f.stage == "start":
                function.update(name=f.name, output=None)
            elif f.stage == "output":
                function = {"output": f.output}
            return {**head, "type": "function", "function": function}
        if f.type == "code_interpreter":
            return {**head, "type": f.type, f.type: self._code_piece(step_id, f)}
        if f.type == "file_search":  # its query is not shown, as OpenAI's was not
            found = file_search(f.details, self.content) if f.stage == "output" else {}
            return {**head, "type": f.type, f.type: found}
        if f.stage == "output":
            shown = f.display if f.display is not None else f.output
            return {**head, "type": f.type, f.type: {"output": shown}}
        body: Wire = {"input": f.arguments, **({"output": None} if f.stage == "start" else {})}
        return {**head, "type": f.type, f.type: body}

    def _code_piece(self, step_id: str, f: ToolCallFragment) -> Wire:
        key = (step_id, f.index)
        arguments, shown = self._code.get(key, ("", ""))
        if f.stage == "output":
            self._code.pop(key, None)
            call = ToolCall(f.id, f.type, f.name, arguments, f.output, f.display,
                            image_file_ids=list(f.image_file_ids))  # fmt: skip
            return {"outputs": [{"index": i, **o} for i, o in enumerate(_outputs(call))]}
        arguments += f.arguments
        code = partial_code(arguments)
        self._code[key] = (arguments, code)
        piece: Wire = {"input": code[len(shown) :] if code.startswith(shown) else ""}
        if f.stage == "start":
            piece["outputs"] = []
        return piece


_RENDERERS: dict[type, Callable[[Any], Wire]] = {
    Run: run,
    RunStep: step,
    Message: message,
    Thread: thread,
    MessageDelta: message_delta,
}
