"""Schemathesis against /v1 with OpenAI's published OpenAPI document: no server error and
no answer outside the document's schemas, for every operation /v1 serves here.

The document is patched here, as the wire spec's §13 says, for what it does not
declare: every operation may answer an error (the envelope below), an empty list's
`first_id`/`last_id` are null, file content is bytes, and it has no links between
operations. `OpenAI-Beta` is sent on every call. Every operation of the document is
served (SERVED lists them, so one added to the document is not fuzzed unnoticed). The
run operations that stream when asked also answer `text/event-stream`.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.api.openai.conftest import openai_url
from tests.api.openai.helpers import openapi_document_path
from tests.support.server import RunningServer

SERVED = (
    "/assistants",
    "/assistants/{assistant_id}",
    "/threads",
    "/threads/{thread_id}",
    "/threads/{thread_id}/messages",
    "/threads/{thread_id}/messages/{message_id}",
    "/files",
    "/files/{file_id}",
    "/files/{file_id}/content",
    "/threads/runs",
    "/threads/{thread_id}/runs",
    "/threads/{thread_id}/runs/{run_id}",
    "/threads/{thread_id}/runs/{run_id}/cancel",
    "/threads/{thread_id}/runs/{run_id}/submit_tool_outputs",
    "/threads/{thread_id}/runs/{run_id}/steps",
    "/threads/{thread_id}/runs/{run_id}/steps/{step_id}",
    "/vector_stores",
    "/vector_stores/{vector_store_id}",
    "/vector_stores/{vector_store_id}/search",
    "/vector_stores/{vector_store_id}/files",
    "/vector_stores/{vector_store_id}/files/{file_id}",
    "/vector_stores/{vector_store_id}/files/{file_id}/content",
    "/vector_stores/{vector_store_id}/file_batches",
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}",
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/cancel",
    "/vector_stores/{vector_store_id}/file_batches/{batch_id}/files",
)
# Operations that answer server-sent events when the body asks (`"stream": true`).
STREAMED = (
    ("/threads/runs", "post"),
    ("/threads/{thread_id}/runs", "post"),
    ("/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", "post"),
)
CHECKS = "not_a_server_error,response_schema_conformance"
EXAMPLES = 25  # generated cases per operation, besides the examples and coverage phases
SCHEMATHESIS = [sys.executable, "-m", "schemathesis.cli"]
ERROR = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def available() -> bool:
    return importlib.util.find_spec("schemathesis") is not None


def patched(document: dict[str, Any]) -> dict[str, Any]:
    document["paths"] = {p: ops for p, ops in document["paths"].items() if p in SERVED}
    schemas = document["components"]["schemas"]
    schemas["AssistdError"] = ERROR
    error = {
        "description": "An error in OpenAI's envelope",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/AssistdError"}}},
    }
    for operations in document["paths"].values():
        for operation in operations.values():
            if isinstance(operation, dict) and "responses" in operation:
                operation["responses"]["default"] = error
                operation.pop("links", None)
    for where, method in STREAMED:
        answers = document["paths"][where][method]["responses"]["200"]["content"]
        answers["text/event-stream"] = {"schema": {"type": "string"}}
    content = document["paths"]["/files/{file_id}/content"]["get"]["responses"]["200"]
    content["content"] = {"application/octet-stream": {"schema": {"type": "string"}}}
    for name, schema in schemas.items():
        if name.startswith("List") and name.endswith("Response"):
            for key in ("first_id", "last_id"):
                if key in schema.get("properties", {}):
                    schema["properties"][key] = {"type": ["string", "null"]}
    document["servers"] = [{"url": "/v1"}]
    return document


def test_v1_against_openai_openapi_document(
    server: RunningServer, workspace: tuple[str, str], tmp_path: Path
) -> None:
    if not available():
        pytest.skip("schemathesis is not installed (scripts/install.sh dev installs it)")
    document = patched(json.loads(openapi_document_path().read_text()))
    path = tmp_path / "openai-v1.json"
    path.write_text(json.dumps(document))
    command = [
        *SCHEMATHESIS, "run", str(path), "--url", openai_url(server),
        "-H", f"Authorization: Bearer {workspace[1]}", "-H", "OpenAI-Beta: assistants=v2",
        "--checks", CHECKS, "--max-examples", str(EXAMPLES), "--seed", "1",
        "--phases", "examples,coverage,fuzzing", "--workers", "1", "--no-color",
        "--generation-database", "none",
    ]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCHEMATHESIS_")}
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=600, cwd=tmp_path, env=env
    )
    assert done.returncode == 0, done.stdout[-8000:] + done.stderr[-2000:]
    assert "Tested: 44" in done.stdout, done.stdout[-3000:]
