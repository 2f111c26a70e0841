"""Domain objects -> DashScope wire objects (spec section 6).

The SDK crashes on `null` in several places (tools, step_details, tool_calls); renderers
always emit arrays and objects there.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from typing import Any, TypeVar

from assistd.core.events import MessageDelta, RunEvent, StepDelta, StreamError
from assistd.core.objects import (
    Assistant,
    AssistantFile,
    JsonDict,
    Message,
    MessageFile,
    Page,
    Plugin,
    Run,
    RunStep,
    SamplingParams,
    StoredFile,
    Thread,
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


def run(r: Run) -> Wire:
    return {
        "id": r.id,
        "object": "thread.run",
        "created_at": r.created_at,
        "thread_id": r.thread_id,
        "assistant_id": r.assistant_id,
        "status": r.status,
        "required_action": r.required_action,
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


def _tool_call(call: JsonDict) -> JsonDict:
    """The SDK crashes on any element of `code_interpreter.outputs` (spec 13.4): the code
    goes in `input`, `outputs` stays empty, and the result rides in an undeclared key."""
    if call.get("type") != "code_interpreter" or "code_interpreter" not in call:
        return call
    details = call["code_interpreter"]
    rendered = {k: v for k, v in call.items() if k != "code_interpreter"}
    rendered["code_interpreter"] = {"input": _code_of(details.get("input", "")), "outputs": []}
    if details.get("output") is not None:
        rendered["output"] = details["output"]
    return rendered


def _code_of(arguments: str) -> str:
    """The code itself, from the model's arguments `{"code": "..."}` (a fragment while
    streaming is shown as it is)."""
    try:
        parsed = json.loads(arguments)
    except (json.JSONDecodeError, TypeError):
        return str(arguments)
    return str(parsed.get("code", "")) if isinstance(parsed, dict) else str(arguments)


def _step_details(details: JsonDict) -> JsonDict:
    if details.get("type") != "tool_calls":
        return details
    return {
        "type": "tool_calls",
        "tool_calls": [_tool_call(c) for c in details.get("tool_calls") or []],
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
        "usage": st.usage,
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


def step_delta(d: StepDelta) -> Wire:
    details = {"type": "tool_calls", "tool_calls": [_tool_call(c) for c in d.tool_calls]}
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
    return (e.name, render(e.data)) if render is not None else None


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
