"""The flat error envelope {request_id, code, message} with the real HTTP status, as the
SDK surfaces it, and `json.dumps(obj, default=lambda o: o.__dict__)` on every object the
SDK returns (seed flow F1, step 5)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Threads
from dashscope.assistants import files as assistant_files
from dashscope.threads.messages import files as message_files

from tests.support.sdk import as_json, assert_error, assert_raw_error, raw_client, upload
from tests.support.server import RunningServer


def _sdk_calls_with_key(key: str) -> list[Any]:
    return [
        Assistants.create(model="qwen-max", api_key=key),
        Assistants.list(api_key=key),
        Assistants.retrieve("asst_x", api_key=key),
        Threads.create(api_key=key),
        Threads.retrieve("thread_x", api_key=key),
        Messages.list("thread_x", api_key=key),
        assistant_files.Files.list("asst_x", api_key=key),
    ]


def test_wrong_key_is_401(ds: str) -> None:
    for result in _sdk_calls_with_key("sk-assistd-not-a-real-key"):
        assert_error(result, 401, "InvalidApiKey", "Invalid API-key provided.")
        as_json(result)
    files = dashscope.Files.list(api_key="sk-assistd-not-a-real-key")
    assert (files.status_code, files.code) == (401, "InvalidApiKey")
    # Nothing was created with the bad key.
    assert Assistants.list().data == []


def test_missing_key_is_401(server: RunningServer) -> None:
    """The SDK refuses to send a request without a key, so this one is raw HTTP."""
    with httpx.Client(base_url=server.dashscope_url, timeout=30) as client:
        for response in (
            client.get("/assistants"),
            client.post("/assistants", json={"model": "qwen-max"}),
            client.post("/threads", content=b'""'),
            client.get("/files"),
            client.get("/assistants", headers={"Authorization": "Bearer"}),
            client.get("/assistants", headers={"Authorization": "Basic c2stYWRtaW4="}),
        ):
            assert_raw_error(response, 401, "InvalidApiKey", "API key")


@pytest.mark.parametrize(
    "call",
    [
        lambda: Assistants.retrieve("asst_missing"),
        lambda: Assistants.get("asst_missing"),
        lambda: Assistants.update("asst_missing", name="x"),
        lambda: Assistants.delete("asst_missing"),
        lambda: assistant_files.Files.list("asst_missing"),
        lambda: assistant_files.Files.retrieve("file_missing", assistant_id="asst_missing"),
        lambda: assistant_files.Files.delete("file_missing", assistant_id="asst_missing"),
        lambda: Threads.retrieve("thread_missing"),
        lambda: Threads.update("thread_missing", metadata={"a": "b"}),
        lambda: Threads.delete("thread_missing"),
        lambda: Messages.create("thread_missing", content="hi"),
        lambda: Messages.list("thread_missing"),
        lambda: Messages.retrieve("msg_missing", thread_id="thread_missing"),
        lambda: Messages.update("msg_missing", thread_id="thread_missing", metadata={}),
        lambda: message_files.Files.list("msg_missing", thread_id="thread_missing"),
        lambda: message_files.Files.retrieve(
            "file_missing", thread_id="thread_missing", message_id="msg_missing"
        ),
    ],
)
def test_unknown_ids_are_404(ds: str, call: Any) -> None:
    result = call()
    assert_error(result, 404, "NotFound", "_missing")
    body = as_json(result)
    assert body["status_code"] == 404 and body["code"] == "NotFound"


def test_unknown_object_in_a_known_parent_is_404(ds: str) -> None:
    assistant = Assistants.create(model="qwen-max")
    thread = Threads.create()
    assert_error(
        assistant_files.Files.retrieve("file_missing", assistant_id=assistant.id),
        404,
        "NotFound",
        "file_missing",
    )
    assert_error(Messages.retrieve("msg_missing", thread_id=thread.id), 404, "NotFound")
    missing_file = dashscope.Files.get("file_missing")
    assert (missing_file.status_code, missing_file.code) == (404, "NotFound")
    assert "file_missing" in missing_file.message


def test_raw_envelope_shape(server: RunningServer, ds: str) -> None:
    with raw_client(server) as client:
        for response, status, code in (
            (client.get("/assistants/asst_missing"), 404, "NotFound"),
            (client.post("/assistants", json={"name": "no model"}), 400, "InvalidParameter"),
            (client.get("/no/such/endpoint"), 404, "NotFound"),
            (client.put("/assistants"), 405, "MethodNotAllowed"),
        ):
            assert_raw_error(response, status, code)
            body = response.json()
            assert response.headers["x-request-id"] == body["request_id"]
        first = client.get("/assistants/asst_missing").json()["request_id"]
        second = client.get("/assistants/asst_missing").json()["request_id"]
        assert first != second
        ok = client.get("/assistants")
        assert ok.status_code == 200
        assert ok.json()["request_id"] == ok.headers["x-request-id"]


def test_every_returned_object_serialises(ds: str, text_file: Path) -> None:
    """Seed flow F1's printing: `json.dumps(obj, ensure_ascii=False, default=lambda o:
    o.__dict__, sort_keys=True, indent=4)` on whatever the SDK gave back."""
    file_id = upload(text_file, description="notes")
    assistant = Assistants.create(
        model="qwen-max",
        name="画家",
        description="Draws pictures.",
        instructions="You are a painter.\nYou draw.",
        tools=[
            {"type": "quark_search", "description": "search"},
            {"type": "text_to_image", "description": "draw"},
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}},
            {"type": "code_interpreter"},
        ],
        file_ids=[file_id],
        metadata={"env": "test"},
    )
    thread = Threads.create()
    message = Messages.create(thread.id, content="Please help me draw a picture of a ragdoll cat.")
    objects: dict[str, Any] = {
        "assistant": assistant,
        "assistant_list": Assistants.list(),
        "assistant_file": assistant_files.Files.retrieve(file_id, assistant_id=assistant.id),
        "assistant_file_get": assistant_files.Files.get(file_id, assistant_id=assistant.id),
        "assistant_file_list": assistant_files.Files.list(assistant.id),
        "thread": thread,
        "thread_update": Threads.update(thread.id, metadata={"a": "b"}),
        "message": message,
        "message_list": Messages.list(thread.id),
        "message_update": Messages.update(message.id, thread_id=thread.id, metadata={"x": "1"}),
        "file_get": dashscope.Files.get(file_id),
        "file_list": dashscope.Files.list(),
        "error": Assistants.retrieve("asst_missing"),
        "list_error": Messages.list("thread_missing"),
        "thread_delete": Threads.delete(thread.id),
        "assistant_delete": Assistants.delete(assistant.id),
    }
    printed = {name: as_json(obj) for name, obj in objects.items()}
    assert printed["assistant"]["name"] == "画家"
    assert printed["assistant"]["tools"][0] == {"type": "quark_search", "description": "search"}
    assert printed["assistant"]["tools"][2]["function"]["name"] == "f"
    assert printed["assistant_list"]["data"][0]["id"] == assistant.id
    assert printed["assistant_file"]["assistant_id"] == assistant.id
    assert printed["assistant_file_get"]["id"] == file_id
    assert printed["message_list"]["data"][0]["content"][0]["text"]["value"].endswith("cat.")
    assert printed["message_update"]["metadata"] == {"x": "1"}
    assert printed["file_get"]["output"]["file_id"] == file_id
    assert printed["error"]["code"] == "NotFound" and printed["error"]["status_code"] == 404
    assert printed["list_error"]["data"] == []
    assert printed["thread_delete"]["deleted"] is True
    assert printed["assistant_delete"]["deleted"] is True
    # ensure_ascii=False keeps the text as it was written.
    text = json.dumps(assistant, ensure_ascii=False, default=lambda o: o.__dict__)
    assert "画家" in text
    for name, obj in objects.items():
        if name not in ("error", "list_error", "assistant_file_get"):
            assert obj.status_code == 200, name
