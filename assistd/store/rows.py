"""Conversion between table rows and domain objects; rows never leave the store."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Row

from assistd.core.objects import (
    ApiKey,
    Assistant,
    AssistantFile,
    Attachment,
    Message,
    Plugin,
    PluginAuth,
    Run,
    RunStep,
    SamplingParams,
    StoredFile,
    Thread,
    Workspace,
)
from assistd.core.ttl_rules import thread_ttl
from assistd.store import details

SAMPLING_FIELDS = ("temperature", "top_p", "top_k", "max_tokens")


def sampling_values(params: SamplingParams) -> dict[str, Any]:
    return {name: getattr(params, name) for name in SAMPLING_FIELDS}


def _sampling(row: Row[Any]) -> SamplingParams:
    m = row._mapping
    return SamplingParams(**{name: m[name] for name in SAMPLING_FIELDS})


def workspace(row: Row[Any]) -> Workspace:
    return Workspace(id=row.id, name=row.name, created_at=row.created_at, limits=row.limits)


def api_key(row: Row[Any]) -> ApiKey:
    return ApiKey(
        id=row.id,
        workspace_id=row.workspace_id,
        prefix=row.prefix,
        admin=bool(row.admin),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        name=row.name,
        bootstrap=bool(row.bootstrap),
        limits=row.limits,
    )


def assistant(row: Row[Any], file_ids: list[str]) -> Assistant:
    return Assistant(
        id=row.id,
        created_at=row.created_at,
        model=row.model,
        name=row.name,
        description=row.description,
        instructions=row.instructions,
        tools=row.tools,
        file_ids=file_ids,
        metadata=row.metadata,
        sampling=_sampling(row),
        response_format=row.response_format,
        vector_store_ids=row.vector_store_ids or [],
    )


def assistant_values(a: Assistant) -> dict[str, Any]:
    return {
        "model": a.model,
        "name": a.name,
        "description": a.description,
        "instructions": a.instructions,
        "tools": a.tools,
        "metadata": a.metadata,
        **sampling_values(a.sampling),
        "response_format": a.response_format,
        "vector_store_ids": a.vector_store_ids or None,
    }


def assistant_file(row: Row[Any]) -> AssistantFile:
    return AssistantFile(id=row.file_id, assistant_id=row.assistant_id, created_at=row.created_at)


def thread(row: Row[Any]) -> Thread:
    return Thread(
        id=row.id, created_at=row.created_at, metadata=row.metadata, file_ids=row.file_ids or [],
        vector_store_ids=row.vector_store_ids or [],
    )  # fmt: skip


def thread_values(t: Thread) -> dict[str, Any]:
    return {
        "metadata": t.metadata,
        "file_ids": t.file_ids or None,
        "vector_store_ids": t.vector_store_ids or None,
        "ttl_s": thread_ttl(t.metadata),
    }


def attachments(value: Any, file_ids: list[str]) -> list[Attachment]:
    if value is None:
        return [Attachment(file_id) for file_id in file_ids]
    return [Attachment(a["file_id"], list(a["tools"])) for a in value]


def attachments_json(m: Message) -> list[dict[str, Any]] | None:
    """Null while no attachment names a tool: then `file_ids` says it all."""
    if not any(a.tools for a in m.attachments):
        return None
    return [{"file_id": a.file_id, "tools": a.tools} for a in m.attachments]


def message(row: Row[Any]) -> Message:
    return Message(
        id=row.id,
        thread_id=row.thread_id,
        created_at=row.created_at,
        role=row.role,
        content=row.content,
        file_ids=row.file_ids,
        metadata=row.metadata,
        assistant_id=row.assistant_id,
        run_id=row.run_id,
        status=row.status,
        completed_at=row.completed_at,
        attachments=attachments(row.attachments, row.file_ids),
    )


def message_values(m: Message) -> dict[str, Any]:
    return {
        "id": m.id,
        "thread_id": m.thread_id,
        "created_at": m.created_at,
        "role": m.role,
        "content": m.content,
        "file_ids": m.file_ids,
        "metadata": m.metadata,
        "assistant_id": m.assistant_id,
        "run_id": m.run_id,
        "status": m.status,
        "completed_at": m.completed_at,
        "attachments": attachments_json(m),
    }


def stored_file(row: Row[Any]) -> StoredFile:
    return StoredFile(
        id=row.id,
        created_at=row.created_at,
        filename=row.filename,
        bytes=row.bytes,
        purpose=row.purpose,
        description=row.description,
        md5=row.md5,
    )


_RUN_FIELDS = (
    "id", "thread_id", "assistant_id", "created_at", "status", "model", "instructions",
    "tools", "file_ids", "metadata", "required_action", "last_error", "started_at",
    "expires_at", "cancelled_at", "failed_at", "completed_at", "usage", "incomplete_reason",
    "leg", "key_id",
)  # fmt: skip

_STEP_FIELDS = (
    "id", "run_id", "thread_id", "assistant_id", "created_at", "type", "status",
    "step_details", "last_error", "usage", "completed_at", "cancelled_at", "failed_at",
    "expired_at", "metadata",
)  # fmt: skip


def run(row: Row[Any]) -> Run:
    m = row._mapping
    values = {name: m[name] for name in _RUN_FIELDS}
    values["required_action"] = details.required_action(values["required_action"])
    values["options"] = details.run_options(m["options"])
    return Run(**values, sampling=_sampling(row))


def run_values(r: Run) -> dict[str, Any]:
    values = {name: getattr(r, name) for name in _RUN_FIELDS}
    values["required_action"] = details.required_action_json(r.required_action)
    values["options"] = details.run_options_json(r.options)
    return {**values, **sampling_values(r.sampling)}


def step(row: Row[Any]) -> RunStep:
    m = row._mapping
    values = {name: m[name] for name in _STEP_FIELDS}
    values["step_details"] = details.step_details(values["step_details"])
    return RunStep(**values)


def step_values(s: RunStep) -> dict[str, Any]:
    values = {name: getattr(s, name) for name in _STEP_FIELDS}
    values["step_details"] = details.step_details_json(s.step_details)
    return values


def plugin(row: Row[Any]) -> Plugin:
    m = row._mapping
    auth = dict(m["auth"])
    return Plugin(
        id=m["id"],
        kind=m["kind"],
        created_at=m["created_at"],
        updated_at=m["updated_at"],
        description=m["description"],
        document=m.get("document"),  # lists leave the document out
        url=m["url"],
        auth=PluginAuth(
            type=auth.get("type", "none"),
            placement=auth.get("in", "header"),
            name=auth.get("name", "Authorization"),
            scheme=auth.get("scheme", "bearer"),
        ),
        header_names=list(m["header_names"]),
        allowed_tools=m["allowed_tools"],
        sealed=m.get("sealed"),
        has_token=bool(auth.get("has_token")),
    )


def plugin_values(p: Plugin) -> dict[str, Any]:
    auth = {
        "type": p.auth.type,
        "in": p.auth.placement,
        "name": p.auth.name,
        "scheme": p.auth.scheme,
        "has_token": p.has_token,
    }
    return {
        "kind": p.kind,
        "updated_at": p.updated_at,
        "description": p.description,
        "document": p.document,
        "url": p.url,
        "auth": auth,
        "header_names": p.header_names,
        "allowed_tools": p.allowed_tools,
        "sealed": p.sealed,
    }
