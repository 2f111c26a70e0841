"""The OpenAI surface's OpenAPI description: its routers and the bodies they parse."""

from __future__ import annotations

from assistd.api.openai import (
    assistants,
    file_batches,
    files,
    protocol,
    runs,
    threads,
    vector_protocol,
    vector_store_files,
    vector_stores,
)
from assistd.api.openapi import BodyModels, Surface

PREFIX = "/v1"
# runs.router has `POST /threads/runs` (create and run): it goes before threads.router, so
# that path is not taken for modifying a thread called "runs".
ROUTERS = (
    assistants.router, runs.router, threads.router, files.router, vector_stores.router,
    vector_store_files.router, file_batches.router,
)  # fmt: skip

_UPLOAD = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file", "purpose"],
                "properties": {
                    "file": {"type": "string", "format": "binary"},
                    "purpose": {"type": "string", "enum": list(files.PURPOSES)},
                },
            }
        }
    }
}

BODIES: BodyModels = {
    ("POST", "/assistants"): protocol.AssistantBody,
    ("POST", "/assistants/{assistant_id}"): protocol.AssistantBody,
    ("POST", "/threads"): protocol.ThreadBody,
    ("POST", "/threads/{thread_id}"): protocol.ThreadModifyBody,
    ("POST", "/threads/{thread_id}/messages"): protocol.MessageBody,
    ("POST", "/threads/{thread_id}/messages/{message_id}"): protocol.MetadataBody,
    ("POST", "/files"): _UPLOAD,
    ("POST", "/threads/runs"): protocol.ThreadRunBody,
    ("POST", "/threads/{thread_id}/runs"): protocol.RunBody,
    ("POST", "/threads/{thread_id}/runs/{run_id}"): protocol.MetadataBody,
    ("POST", "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"): protocol.ToolOutputsBody,
    ("POST", "/vector_stores"): vector_protocol.VectorStoreBody,
    ("POST", "/vector_stores/{vector_store_id}"): vector_protocol.VectorStoreModifyBody,
    ("POST", "/vector_stores/{vector_store_id}/search"): vector_protocol.SearchBody,
    ("POST", "/vector_stores/{vector_store_id}/files"): vector_protocol.VectorStoreFileBody,
    ("POST", "/vector_stores/{vector_store_id}/files/{file_id}"): vector_protocol.AttributesBody,
    ("POST", "/vector_stores/{vector_store_id}/file_batches"): vector_protocol.BatchBody,
}

ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string", "examples": ["invalid_request_error"]},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}

SURFACE = Surface(
    prefix=PREFIX,
    title="assistd: OpenAI Assistants API v2",
    description=(
        "OpenAI's Assistants API v2, as the `openai` SDK calls it: "
        '`OpenAI(base_url="http://HOST:PORT/v1", api_key=...)`. Every call takes '
        "`Authorization: Bearer <key>`; `OpenAI-Beta` is accepted, never required. "
        'Errors are `{"error": {"message", "type", "param", "code"}}` with an '
        "`x-request-id` header. Lists take `limit` (1-100), `order` (default `desc`), "
        "`after` and `before`. Timestamps are Unix seconds. Objects are shared with the "
        "DashScope surface (/api/v1): the same ids, the same rows."
    ),
    routers=ROUTERS,
    bodies=BODIES,
    tags=("assistants", "threads", "messages", "runs", "files", "vector_stores"),
    error_schema=ERROR,
)
