"""Every answer of the /v1 object endpoints matches OpenAI's published OpenAPI document
(the excerpt in the wire spec's directory), patched only where §13 of the spec says:
an empty list's `first_id` and `last_id` are null."""

from __future__ import annotations

import copy
import time
from functools import cache
from typing import Any

import httpx
import orjson
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from tests.api.openai.helpers import openapi_document_path, settle, start_run
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer

URN = "urn:openai-openapi"


@cache
def _document() -> dict[str, Any]:
    document: dict[str, Any] = orjson.loads(openapi_document_path().read_bytes())
    schemas = document["components"]["schemas"]
    for name, schema in schemas.items():
        if name.startswith("List") and name.endswith("Response"):
            for key in ("first_id", "last_id"):
                if key in schema.get("properties", {}):
                    schema["properties"][key] = {"type": ["string", "null"]}
    return document


def _validator(method: str, path: str) -> Draft202012Validator:
    document = _document()
    content = document["paths"][path][method]["responses"]["200"]["content"]
    schema = copy.deepcopy(content["application/json"]["schema"])
    schema["$ref"] = URN + schema["$ref"]
    registry: Registry[Any] = Registry().with_resource(
        URN, Resource.from_contents(document, default_specification=DRAFT202012)
    )
    return Draft202012Validator(schema, registry=registry)


def check(answer: httpx.Response, method: str, path: str) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    body: dict[str, Any] = answer.json()
    errors = sorted(_validator(method, path).iter_errors(body), key=lambda e: e.path)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors[:5]]
    return body


def test_object_answers_match_the_openapi_document(
    raw: httpx.Client, server: RunningServer, workspace: tuple[str, str], fake_model: FakeModel
) -> None:
    check(raw.get("/assistants"), "get", "/assistants")  # empty: null ids
    file = check(
        raw.post("/files", data={"purpose": "assistants"}, files={"file": ("a.txt", b"abc")}),
        "post",
        "/files",
    )
    check(raw.get(f"/files/{file['id']}"), "get", "/files/{file_id}")
    check(raw.get("/files"), "get", "/files")
    model = fake_model.new_model(Reply("An answer."))
    assistant = check(
        raw.post(
            "/assistants",
            json={
                "model": model,
                "name": "n",
                "tools": [
                    {"type": "code_interpreter"},
                    {"type": "file_search"},
                    {"type": "function", "function": {"name": "f", "parameters": {}}},
                ],
                "tool_resources": {"code_interpreter": {"file_ids": [file["id"]]}},
                "response_format": {"type": "json_schema", "json_schema": {"name": "x"}},
                "metadata": {"a": "b"},
                "temperature": 1,
                "top_p": 1,
            },
        ),
        "post",
        "/assistants",
    )
    asst = f"/assistants/{assistant['id']}"
    check(raw.get(asst), "get", "/assistants/{assistant_id}")
    check(raw.post(asst, json={"name": "m"}), "post", "/assistants/{assistant_id}")
    check(raw.get("/assistants"), "get", "/assistants")
    thread = check(
        raw.post(
            "/threads",
            json={
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {"type": "text", "text": "x"},
                            {"type": "image_file", "image_file": {"file_id": file["id"]}},
                            {"type": "image_url", "image_url": {"url": "https://e.com/i.png"}},
                        ],
                        "attachments": [
                            {"file_id": file["id"], "tools": [{"type": "file_search"}]}
                        ],
                    }
                ],
                "tool_resources": {"code_interpreter": {"file_ids": [file["id"]]}},
            },
        ),
        "post",
        "/threads",
    )
    path = f"/threads/{thread['id']}"
    check(raw.get(path), "get", "/threads/{thread_id}")
    check(raw.post(path, json={"metadata": {"k": "v"}}), "post", "/threads/{thread_id}")
    message = check(
        raw.post(f"{path}/messages", json={"role": "user", "content": "y"}),
        "post",
        "/threads/{thread_id}/messages",
    )
    run_id = start_run(server, workspace[1], thread["id"], assistant["id"])
    assert settle(server, workspace[1], thread["id"], run_id)["status"] == "completed"
    listed = check(raw.get(f"{path}/messages"), "get", "/threads/{thread_id}/messages")
    assert [m["role"] for m in listed["data"]] == ["assistant", "user", "user"]
    one = f"{path}/messages/{message['id']}"
    check(raw.get(one), "get", "/threads/{thread_id}/messages/{message_id}")
    check(
        raw.post(one, json={"metadata": {}}), "post", "/threads/{thread_id}/messages/{message_id}"
    )
    check(raw.delete(one), "delete", "/threads/{thread_id}/messages/{message_id}")
    check(raw.delete(path), "delete", "/threads/{thread_id}")
    check(raw.delete(asst), "delete", "/assistants/{assistant_id}")
    check(raw.delete(f"/files/{file['id']}"), "delete", "/files/{file_id}")


def _settled(raw: httpx.Client, path: str) -> dict[str, Any]:
    """Polls a vector-store file or batch (bounded) until it leaves `in_progress`."""
    for _ in range(600):
        body: dict[str, Any] = raw.get(path).json()
        if body["status"] != "in_progress":
            return body
        time.sleep(0.05)
    raise AssertionError(f"{path} stayed in progress")


def test_vector_store_answers_match_the_openapi_document(raw: httpx.Client) -> None:
    V, VS = "/vector_stores", "/vector_stores/{vector_store_id}"
    check(raw.get(V), "get", V)  # empty: null ids
    ids = [
        check(
            raw.post("/files", data={"purpose": "assistants"}, files={"file": (name, data)}),
            "post", "/files",
        )["id"]
        for name, data in [("a.md", b"# Tides\n\nThe moon moves the sea."), ("b.pdf", b"%PDF")]
    ]  # fmt: skip
    body = {
        "name": "kb", "file_ids": [ids[0]], "metadata": {"k": "v"},
        "expires_after": {"anchor": "last_active_at", "days": 3},
        "chunking_strategy": {"type": "static", "static": {"max_chunk_size_tokens": 300,
                                                           "chunk_overlap_tokens": 100}},
    }  # fmt: skip
    vs = check(raw.post(V, json=body), "post", V)
    one = f"{V}/{vs['id']}"
    check(raw.get(one), "get", VS)
    check(raw.post(one, json={"name": "kb2", "expires_after": None}), "post", VS)
    check(raw.get(V), "get", V)
    files = f"{one}/files"
    _settled(raw, f"{files}/{ids[0]}")
    check(raw.post(files, json={"file_id": ids[1], "attributes": {"n": 1, "b": True}}),
          "post", f"{VS}/files")  # fmt: skip
    assert _settled(raw, f"{files}/{ids[1]}")["status"] == "failed"
    check(raw.get(f"{files}/{ids[1]}"), "get", f"{VS}/files/{{file_id}}")
    check(raw.get(files), "get", f"{VS}/files")
    check(raw.post(f"{files}/{ids[0]}", json={"attributes": {"s": "x"}}),
          "post", f"{VS}/files/{{file_id}}")  # fmt: skip
    check(raw.get(f"{files}/{ids[0]}/content"), "get", f"{VS}/files/{{file_id}}/content")
    search = {"query": ["moon", "sea"], "filters": {"type": "eq", "key": "s", "value": "x"}}
    found = check(raw.post(f"{one}/search", json=search), "post", f"{VS}/search")
    assert found["data"], found
    batches = f"{one}/file_batches"
    batch = check(raw.post(batches, json={"file_ids": ids}), "post", f"{VS}/file_batches")
    _settled(raw, f"{batches}/{batch['id']}")
    B = f"{VS}/file_batches/{{batch_id}}"
    check(raw.get(f"{batches}/{batch['id']}"), "get", B)
    check(raw.post(f"{batches}/{batch['id']}/cancel"), "post", f"{B}/cancel")
    check(raw.get(f"{batches}/{batch['id']}/files"), "get", f"{B}/files")
    check(raw.delete(f"{files}/{ids[1]}"), "delete", f"{VS}/files/{{file_id}}")
    check(raw.delete(one), "delete", VS)
