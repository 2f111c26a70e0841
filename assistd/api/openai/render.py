"""Domain objects -> OpenAI Assistants v2 wire objects (spec sections 7.1-7.5).

Timestamps are Unix seconds (the domain keeps milliseconds). Every field of a schema is
sent, null or `[]`/`{}` when empty: the SDK parses without validation, so a missing
field fails later in user code. `tool_resources` is never null (clients call
`.model_dump()` on it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from assistd.core.objects import Assistant, JsonDict, Message, Page, StoredFile, Thread

T = TypeVar("T")
PURPOSES = {"fine_tune": "fine-tune"}  # the dashscope SDK's spelling -> OpenAI's
Wire = dict[str, Any]


def seconds(ms: int | None) -> int | None:
    return None if ms is None else ms // 1000


def tool_resources(
    file_ids: list[str], vector_store_ids: list[str], tools: list[JsonDict] | None = None
) -> Wire:
    """The code interpreter's files are the object's files; file_search's stores its
    vector stores. A tool an assistant has shows its entry, empty or not, as OpenAI's do."""
    types = {t.get("type") for t in tools or []}
    resources: Wire = {}
    if file_ids or "code_interpreter" in types:
        resources["code_interpreter"] = {"file_ids": list(file_ids)}
    if vector_store_ids or "file_search" in types:
        resources["file_search"] = {"vector_store_ids": list(vector_store_ids)}
    return resources


def assistant(a: Assistant) -> Wire:
    return {
        "id": a.id,
        "object": "assistant",
        "created_at": seconds(a.created_at),
        "name": a.name,
        "description": a.description,
        "model": a.model,
        "instructions": a.instructions,
        "tools": a.tools,
        "tool_resources": tool_resources(a.file_ids, a.vector_store_ids, a.tools),
        "metadata": a.metadata,
        "temperature": a.sampling.temperature,
        "top_p": a.sampling.top_p,
        "response_format": a.response_format if a.response_format is not None else "auto",
    }


def thread(t: Thread) -> Wire:
    return {
        "id": t.id,
        "object": "thread",
        "created_at": seconds(t.created_at),
        "metadata": t.metadata,
        "tool_resources": tool_resources(t.file_ids, t.vector_store_ids),
    }


def message(m: Message) -> Wire:
    return {
        "id": m.id,
        "object": "thread.message",
        "created_at": seconds(m.created_at),
        "thread_id": m.thread_id,
        "status": m.status,
        "incomplete_details": None,
        "completed_at": seconds(m.completed_at),
        "incomplete_at": None,
        "role": m.role,
        "content": _content(m),
        "assistant_id": m.assistant_id,
        "run_id": m.run_id,
        "attachments": [
            {"file_id": a.file_id, "tools": [{"type": t} for t in a.tools]} for a in m.attachments
        ],
        "metadata": m.metadata,
    }


def _content(m: Message) -> list[JsonDict]:
    """A run's reply streams its text as part 0, so its text comes first here too (the
    SDK's stream handler reads the finished message's part at the index it streamed)."""
    if m.run_id is None:
        return m.content
    return sorted(m.content, key=lambda part: part.get("type") != "text")


def file(f: StoredFile) -> Wire:
    """Files never expire and never fail here: `expires_at` and `status_details` are
    left out (OpenAI's schema has them as a number and a string, never null)."""
    return {
        "id": f.id,
        "object": "file",
        "bytes": f.bytes,
        "created_at": seconds(f.created_at),
        "filename": f.filename,
        "purpose": PURPOSES.get(f.purpose, f.purpose),
        "status": "processed",
    }


def deleted(object_id: str, kind: str) -> Wire:
    """`kind` is the whole object name: `assistant.deleted`, ..., and `file` for files."""
    return {"id": object_id, "object": kind, "deleted": True}


def page(items: Page[T], render: Callable[[T], Wire]) -> Wire:
    """A cursor list; `first_id`/`last_id` are null when it is empty."""
    return {
        "object": "list",
        "data": [render(item) for item in items.items],
        "first_id": items.first_id,
        "last_id": items.last_id,
        "has_more": items.has_more,
    }
