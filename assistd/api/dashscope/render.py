"""Domain objects -> DashScope wire objects (spec section 6).

The SDK crashes on `null` in several places (tools, step_details, tool_calls); renderers
always emit arrays and objects there.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any, TypeVar

from assistd.core.objects import (
    Assistant,
    AssistantFile,
    Message,
    MessageFile,
    Page,
    SamplingParams,
    StoredFile,
    Thread,
)

T = TypeVar("T")
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
