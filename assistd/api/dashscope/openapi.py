"""The DashScope surface's OpenAPI description: its routers and the bodies they parse."""

from __future__ import annotations

from assistd.api.dashscope import assistants, files, plugins, protocol, runs, threads
from assistd.api.openapi import BodyModels, Surface

PREFIX = "/api/v1"
ROUTERS = (assistants.router, runs.router, threads.router, files.router, plugins.router)

_UPLOAD = {
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["files"],
                "properties": {
                    "files": {"type": "array", "items": {"type": "string", "format": "binary"}},
                    "purpose": {"type": "string", "default": "assistants"},
                    "descriptions": {"type": "array", "items": {"type": "string"}},
                },
            }
        }
    }
}

BODIES: BodyModels = {
    ("POST", "/assistants"): protocol.AssistantBody,
    ("POST", "/assistants/{assistant_id}"): protocol.AssistantBody,
    ("POST", "/assistants/{assistant_id}/files"): protocol.AssistantFileBody,
    ("POST", "/threads"): protocol.ThreadBody,
    ("POST", "/threads/{thread_id}"): protocol.MetadataBody,
    ("POST", "/threads/{thread_id}/messages"): protocol.MessageBody,
    ("POST", "/threads/{thread_id}/messages/{message_id}"): protocol.MetadataBody,
    ("POST", "/threads/runs"): protocol.ThreadRunBody,
    ("POST", "/threads/{thread_id}/runs"): protocol.RunBody,
    ("POST", "/threads/{thread_id}/runs/{run_id}"): protocol.MetadataBody,
    ("POST", "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs"): protocol.ToolOutputsBody,
    ("POST", "/files"): _UPLOAD,
    ("POST", "/plugins"): protocol.PluginBody,
    ("POST", "/plugins/{plugin_id}"): protocol.PluginBody,
}

SURFACE = Surface(
    prefix=PREFIX,
    title="assistd: DashScope Assistant API",
    description=(
        "Alibaba DashScope's Assistant API, as the `dashscope` SDK calls it. Every call "
        "takes `Authorization: Bearer <key>`; `X-DashScope-WorkSpace` (optional) names the "
        "workspace. Errors are `{request_id, code, message}` with the real HTTP status. "
        "Lists take `limit`, `order`, `after` and `before`; `GET /files` takes `page_no` "
        "and `page_size`. A run created with `stream: true` answers with server-sent events; "
        "`GET .../runs/{run_id}/events` (an assistd extension) resumes such a stream. "
        "`/plugins` is an assistd extension: a workspace's custom tools (OpenAPI documents "
        'and MCP servers), named by assistants as `{"type": "<plugin_id>"}`.'
    ),
    routers=ROUTERS,
    bodies=BODIES,
    tags=("assistants", "threads", "messages", "runs", "files", "plugins"),
)
