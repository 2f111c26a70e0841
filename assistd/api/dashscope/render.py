"""Domain objects -> DashScope wire objects (spec section 6).

The SDK crashes on `null` in several places (tools, step_details, tool_calls); renderers
always emit arrays and objects there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TypeVar

from assistd.core.events import MessageDelta, RunEvent, StepDelta, StreamError, ToolCallFragment
from assistd.core.objects import (
    Assistant,
    AssistantFile,
    Message,
    MessageCreationDetails,
    MessageFile,
    Page,
    Plugin,
    RequiredAction,
    Run,
    RunStep,
    SamplingParams,
    StepDetails,
    StoredFile,
    Thread,
    ToolCall,
)
from assistd.core.plugin_rules import MASK

T = TypeVar("T")
PLUGIN_SECRET_MASK = MASK
Wire = dict[str, Any]


def _sampling(params: SamplingParams) -> Wire:
    return {
        "top_p": params.top_p,
        "top_k": params.top_k,
        "temperature": params.temperature,
        "max_tokens": params.max_tokens,
    }


def assistant(a: Assistant) -> Wire:
    return {
        "id": a.id,
        "object": "assistant",
        "created_at": a.created_at,
        "model": a.model,
        "name": a.name,
        "description": a.description,
        "instructions": a.instructions,
        "tools": a.tools,
        "file_ids": a.file_ids,
        "metadata": a.metadata,
        **_sampling(a.sampling),
    }


def assistant_file(link: AssistantFile) -> Wire:
    return {
        "id": link.id,
        "object": "assistant.file",
        "created_at": link.created_at,
        "assistant_id": link.assistant_id,
    }


def thread(t: Thread) -> Wire:
    return {"id": t.id, "object": "thread", "created_at": t.created_at, "metadata": t.metadata}


def message(m: Message) -> Wire:
    return {
        "id": m.id,
        "object": "thread.message",
        "created_at": m.created_at,
        "thread_id": m.thread_id,
        "role": m.role,
        "content": m.content,
        "assistant_id": m.assistant_id,
        "run_id": m.run_id,
        "file_ids": m.file_ids,
        "metadata": m.metadata,
        "status": m.status,
        "completed_at": m.completed_at,
    }


def message_file(link: MessageFile) -> Wire:
    return {
        "id": link.id,
        "object": "thread.message.file",
        "created_at": link.created_at,
        "message_id": link.message_id,
    }


def deleted(object_id: str, kind: str) -> Wire:
    return {"id": object_id, "object": f"{kind}.deleted", "deleted": True}


def page(items: Page[T], render: Callable[[T], Wire]) -> Wire:
    return {
        "object": "list",
        "data": [render(item) for item in items.items],
        "first_id": items.first_id,
        "last_id": items.last_id,
        "has_more": items.has_more,
    }


def file_info(f: StoredFile) -> Wire:
    """DashScope's File API shape (non-flattened: wrapped in `data` by the route)."""
    created = dt.datetime.fromtimestamp(f.created_at / 1000, tz=dt.UTC)
    return {
        "file_id": f.id,
        "name": f.filename,
        "description": f.description,
        "size": f.bytes,
        "md5": f.md5,
        "purpose": f.purpose,
        "created_at": f.created_at,
        "gmt_create": created.strftime("%Y-%m-%d %H:%M:%S"),
        "url": f"files/{f.id}/content",
    }


# The dashscope SDK knows no `incomplete` (its waiter would never stop): a run a token
# cap ended shows as completed, with OpenAI's `incomplete_details` beside it.
_INCOMPLETE = "incomplete"


def run(r: Run) -> Wire:
    wire = {
        "id": r.id,
        "object": "thread.run",
        "created_at": r.created_at,
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "status": "completed" if r.status == _INCOMPLETE else r.status,
        "required_action": _required_action(r.required_action),
        "last_error": r.last_error,
        "started_at": r.started_at,
        "expires_at": r.expires_at,
        "cancelled_at": r.cancelled_at,
        "failed_at": r.failed_at,
        "completed_at": r.completed_at,
        "model": r.model,
        "instructions": r.instructions,
        "tools": r.tools,
        "file_ids": r.file_ids,
        "metadata": r.metadata,
        "usage": r.usage,
        **_sampling(r.sampling),
    }
    if r.incomplete_reason is not None:
        wire["incomplete_details"] = {"reason": r.incomplete_reason}
    return wire


def _required_action(action: RequiredAction | None) -> Wire | None:
    if action is None:
        return None
    calls = [
        {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
        for c in action.tool_calls
    ]
    return {"type": "submit_tool_outputs", "submit_tool_outputs": {"tool_calls": calls}}


def _shown(output: str | None, display: str | None) -> str | None:
    """What a step shows as a call's output: its display form when it has one."""
    return display if display is not None else output


def _tool_call(call: ToolCall) -> Wire:
    """Function calls as OpenAI has them; the server's own tools (built-ins, plugins) as
    `{"type": K, K: {"input", "output"}}`, strings both (a Java client maps them to strings;
    a Python one parses `output`)."""
    if call.type == "function":
        function = {"name": call.name, "arguments": call.arguments, "output": call.output}
        return {"id": call.id, "type": "function", "function": function}
    return _server_call(call.id, call.type, call.arguments, _shown(call.output, call.display))


def _server_call(call_id: str, kind: str, arguments: str, output: str | None) -> Wire:
    if kind == "code_interpreter":
        return _code_call(call_id, arguments, output)
    return {"id": call_id, "type": kind, kind: {"input": arguments, "output": output}}


def _code_call(call_id: str, arguments: str, output: str | None) -> Wire:
    """The SDK crashes on any element of `code_interpreter.outputs` (spec 13.4): the code
    goes in `input`, `outputs` stays empty, and the result rides in an undeclared key."""
    rendered: Wire = {
        "id": call_id,
        "type": "code_interpreter",
        "code_interpreter": {"input": _code_of(arguments), "outputs": []},
    }
    if output is not None:
        rendered["output"] = output
    return rendered


def _code_of(arguments: str) -> str:
    """The code itself, from the model's arguments `{"code": "..."}` (a fragment while
    streaming is shown as it is)."""
    try:
        parsed = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        return str(arguments)
    return str(parsed.get("code", "")) if isinstance(parsed, dict) else str(arguments)


def _step_details(details: StepDetails) -> Wire:
    if isinstance(details, MessageCreationDetails):
        return {"type": "message_creation", "message_creation": {"message_id": details.message_id}}
    return {"type": "tool_calls", "tool_calls": [_tool_call(c) for c in details.tool_calls]}


def _step_usage(usage: Wire | None) -> Wire | None:
    """All five counters: the dashscope SDK reads each one of a step's usage, its own
    `input_tokens` and `output_tokens` too."""
    if usage is None:
        return None
    return {
        **usage,
        "input_tokens": usage.get("prompt_tokens", 0),
        "output_tokens": usage.get("completion_tokens", 0),
    }


def step(st: RunStep) -> Wire:
    return {
        "id": st.id,
        "object": "thread.run.step",
        "created_at": st.created_at,
        "run_id": st.run_id,
        "assistant_id": st.assistant_id,
        "thread_id": st.thread_id,
        "type": st.type,
        "status": st.status,
        "step_details": _step_details(st.step_details),
        "last_error": st.last_error,
        "usage": _step_usage(st.usage),
        "cancelled_at": st.cancelled_at,
        "completed_at": st.completed_at,
        "expired_at": st.expired_at,
        "failed_at": st.failed_at,
        "metadata": st.metadata,
    }


def message_delta(d: MessageDelta) -> Wire:
    part = {"index": d.index, "type": "text", "text": {"value": d.text, "annotations": []}}
    return {
        "id": d.message_id,
        "object": "thread.message.delta",
        "delta": {"role": "assistant", "content": [part]},
    }


def _fragment(f: ToolCallFragment) -> Wire:
    """A streamed piece of a call: the start has the id, name and `output: null`; the
    end of a server-run call has the id and the output, with an empty `input` (a client
    adding up the pieces' inputs gets the whole arguments)."""
    if f.stage == "output":
        return {
            "index": f.index,
            **_server_call(f.id, f.type, f.arguments, _shown(f.output, f.display)),
        }
    start = f.stage == "start"
    head: Wire = {"index": f.index, **({"id": f.id} if start else {})}
    if f.type == "function":
        function: Wire = {"arguments": f.arguments}
        if start:
            function.update(name=f.name, output=None)
        return {**head, "type": "function", "function": function}
    if f.type == "code_interpreter":
        body: Wire = {"input": _code_of(f.arguments), "outputs": []}
        return {**head, "type": f.type, f.type: body}
    body = {"input": f.arguments, **({"output": None} if start else {})}
    return {**head, "type": f.type, f.type: body}


def step_delta(d: StepDelta) -> Wire:
    details = {"type": "tool_calls", "tool_calls": [_fragment(f) for f in d.tool_calls]}
    return {"id": d.step_id, "object": "thread.run.step.delta", "delta": {"step_details": details}}


_EVENT_RENDERERS: dict[type, Callable[[Any], Wire]] = {
    Run: run,
    RunStep: step,
    Message: message,
    Thread: thread,
    MessageDelta: message_delta,
    StepDelta: step_delta,
}


def event(e: RunEvent) -> tuple[str, object] | None:
    if isinstance(e.data, StreamError):
        return "error", {"code": e.data.code, "message": e.data.message, "request_id": ""}
    render = _EVENT_RENDERERS.get(type(e.data))
    if render is None:
        return None
    name = "thread.run.completed" if e.name == "thread.run.incomplete" else e.name
    return name, render(e.data)


def plugin(p: Plugin, with_document: bool = True) -> Wire:
    """A plugin (assistd extension). Credentials are never shown: `auth.has_token` says
    whether a token is stored, and each header's value reads as a mask."""
    wire: Wire = {
        "id": p.id,
        "plugin_id": p.id,
        "object": "plugin",
        "kind": p.kind,
        "description": p.description,
        "created_at": p.created_at,
        "updated_at": p.updated_at,
        "url": p.url,
        "declared": p.declared,
    }
    if p.kind == "openapi":
        wire["auth"] = {
            "type": "user_http" if p.auth.type == "user" else p.auth.type,
            "in": p.auth.placement,
            "name": p.auth.name,
            "scheme": p.auth.scheme,
            "has_token": p.has_token,
        }
        if with_document:
            wire["openapi"] = p.document
    else:
        wire["headers"] = {name: PLUGIN_SECRET_MASK for name in p.header_names}
        wire["allowed_tools"] = p.allowed_tools
    return wire


def plugin_listed(p: Plugin) -> Wire:
    return plugin(p, with_document=False)
