"""Threads and messages through the real openai SDK."""

from __future__ import annotations

from pathlib import Path

import httpx
import openai
import pytest

from tests.api.openai.helpers import settle, start_run
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}


def test_thread_with_messages_and_tool_resources(client: openai.OpenAI, text_file: Path) -> None:
    file_id = client.files.create(file=text_file, purpose="assistants").id
    thread = client.beta.threads.create(
        messages=[
            {"role": "user", "content": "Hello", "metadata": {"n": "1"}},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "Look:"},
                    {"type": "image_file", "image_file": {"file_id": file_id, "detail": "low"}},
                    {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
                ],
                "attachments": [{"file_id": file_id, "tools": [{"type": "code_interpreter"}]}],
            },
            {"role": "assistant", "content": "Hi."},
        ],
        tool_resources={"code_interpreter": {"file_ids": [file_id]}},
        metadata={"topic": "x"},
    )
    assert thread.object == "thread" and thread.metadata == {"topic": "x"}
    assert thread.tool_resources is not None
    assert thread.tool_resources.code_interpreter.file_ids == [file_id]  # type: ignore[union-attr]
    assert 1_000_000_000 < thread.created_at < 10_000_000_000
    listed = client.beta.threads.messages.list(thread.id, order="asc").data
    assert [m.role for m in listed] == ["user", "user", "assistant"]
    first, second, third = listed
    assert first.content[0].text.value == "Hello" and first.metadata == {"n": "1"}  # type: ignore[union-attr]
    assert first.attachments == [] and first.assistant_id is None and first.run_id is None
    assert first.status == "completed" and first.thread_id == thread.id
    assert [p.type for p in second.content] == ["text", "image_file", "image_url"]
    assert second.content[1].image_file.model_dump() == {"file_id": file_id, "detail": "low"}  # type: ignore[union-attr]
    assert second.content[2].image_url.detail == "auto"  # type: ignore[union-attr]
    assert second.attachments is not None
    assert [a.model_dump(exclude_none=True) for a in second.attachments] == [
        {"file_id": file_id, "tools": [{"type": "code_interpreter"}]}
    ]
    assert third.content[0].text.annotations == []  # type: ignore[union-attr]


def test_empty_thread_and_modify(client: openai.OpenAI, text_file: Path) -> None:
    thread = client.beta.threads.create()
    assert thread.metadata == {} and thread.tool_resources is not None
    assert thread.tool_resources.model_dump() == {"code_interpreter": None, "file_search": None}
    file_id = client.files.create(file=text_file, purpose="assistants").id
    changed = client.beta.threads.update(
        thread.id, metadata={"a": "b"}, tool_resources={"code_interpreter": {"file_ids": [file_id]}}
    )
    assert changed.metadata == {"a": "b"}
    assert changed.tool_resources.code_interpreter.file_ids == [file_id]  # type: ignore[union-attr]
    kept = client.beta.threads.update(thread.id, metadata={"a": "c"})
    assert kept.tool_resources.code_interpreter.file_ids == [file_id]  # type: ignore[union-attr]
    assert client.beta.threads.retrieve(thread.id).model_dump() == kept.model_dump()


def test_delete_thread(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "x"}])
    gone = client.beta.threads.delete(thread.id)
    assert (gone.id, gone.object, gone.deleted) == (thread.id, "thread.deleted", True)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.list(thread.id)


def test_message_verbs(client: openai.OpenAI, text_file: Path) -> None:
    thread = client.beta.threads.create()
    file_id = client.files.create(file=text_file, purpose="assistants").id
    made = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content="Read this",
        attachments=[{"file_id": file_id, "tools": [{"type": "file_search"}]}],
        metadata={"k": "v"},
    )
    assert made.object == "thread.message" and made.content[0].text.value == "Read this"  # type: ignore[union-attr]
    assert made.attachments[0].tools[0].type == "file_search"  # type: ignore[index]
    assert made.incomplete_details is None and made.completed_at is not None
    got = client.beta.threads.messages.retrieve(made.id, thread_id=thread.id)
    assert got.model_dump() == made.model_dump()
    changed = client.beta.threads.messages.update(made.id, thread_id=thread.id, metadata={"k": "w"})
    assert changed.metadata == {"k": "w"}
    gone = client.beta.threads.messages.delete(made.id, thread_id=thread.id)
    assert (gone.id, gone.object, gone.deleted) == (made.id, "thread.message.deleted", True)
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.threads.messages.retrieve(made.id, thread_id=thread.id)
    assert made.id in caught.value.body["message"]  # type: ignore[index]
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.delete(made.id, thread_id=thread.id)
    with pytest.raises(openai.NotFoundError) as caught:
        client.beta.threads.messages.delete(made.id, thread_id="thread_nope")
    assert "thread_nope" in caught.value.body["message"]  # type: ignore[index]


def test_message_list_order_and_cursors(client: openai.OpenAI) -> None:
    thread = client.beta.threads.create()
    ids = [
        client.beta.threads.messages.create(thread.id, role="user", content=str(i)).id
        for i in range(5)
    ]
    newest = client.beta.threads.messages.list(thread.id, limit=1)
    assert [m.id for m in newest.data] == [ids[-1]] and newest.has_more is True
    between = client.beta.threads.messages.list(thread.id, after=ids[4], before=ids[0])
    assert [m.id for m in between.data] == ids[3:0:-1]
    assert [m.id for m in client.beta.threads.messages.list(thread.id, limit=2)] == ids[::-1]


def test_list_by_run_and_active_run_conflict(
    client: openai.OpenAI,
    server: RunningServer,
    workspace: tuple[str, str],
    fake_model: FakeModel,
) -> None:
    model = fake_model.new_model(
        Reply("First answer."), ToolCalls([("get_weather", {"city": "P"})])
    )
    assistant = client.beta.assistants.create(model=model, tools=[WEATHER])  # type: ignore[list-item]
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Hi"}])
    run_id = start_run(server, workspace[1], thread.id, assistant.id)
    assert settle(server, workspace[1], thread.id, run_id)["status"] == "completed"
    by_run = client.beta.threads.messages.list(thread.id, run_id=run_id).data
    assert [(m.role, m.run_id, m.assistant_id) for m in by_run] == [
        ("assistant", run_id, assistant.id)
    ]
    assert by_run[0].content[0].text.value == "First answer."  # type: ignore[union-attr]
    assert client.beta.threads.messages.list(thread.id, run_id="run_other").data == []
    assert len(client.beta.threads.messages.list(thread.id).data) == 2

    client.beta.threads.messages.create(thread.id, role="user", content="Weather?")
    waiting = start_run(server, workspace[1], thread.id, assistant.id)
    assert settle(server, workspace[1], thread.id, waiting)["status"] == "requires_action"
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread.id, role="user", content="More")
    assert caught.value.body == {
        "message": f"Can't add messages to {thread.id} while a run {waiting} is active.",
        "type": "invalid_request_error",
        "param": None,
        "code": None,
    }


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({}, "content", "required"),
        ({"content": ""}, "content", "empty"),
        ({"content": []}, "content", "non-empty"),
        ({"content": [{"type": "audio"}]}, "content[0]", "image_url"),
        ({"content": [{"type": "text"}]}, "content[0]", "text part"),
        ({"content": [{"type": "image_file", "image_file": {}}]}, "content[0]", "file_id"),
        (
            {"content": [{"type": "image_file", "image_file": {"file_id": "file_x"}}]},
            "content",
            "file_x",
        ),
        (
            {"content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
            "content[0].image_url",
            "http",
        ),
        (
            {
                "content": [
                    {"type": "image_url", "image_url": {"url": "https://x", "detail": "max"}}
                ]
            },
            "content[0].image_url.detail",
            "low",
        ),
        ({"content": "x", "role": "system"}, "role", "system"),
        ({"content": "x", "attachments": [{"file_id": "file_x"}]}, "attachments", "file_x"),
        ({"content": "x", "attachments": [{"tools": []}]}, "attachments[0].file_id", "Field"),
        (
            {"content": "x", "attachments": [{"file_id": "f", "tools": [{"type": "web"}]}]},
            "attachments[0].tools",
            "web",
        ),
        ({"content": "x", "metadata": {"k" * 65: "v"}}, "metadata", "64"),
    ],
)
def test_bad_messages_are_400_naming_the_field(
    raw: httpx.Client, body: dict[str, object], param: str, words: str
) -> None:
    thread = raw.post("/threads", json={}).json()["id"]
    answer = raw.post(f"/threads/{thread}/messages", json=body)
    assert answer.status_code == 400, answer.text
    error = answer.json()["error"]
    assert error["param"] == param and words in error["message"], error


def test_nested_nulls_in_thread_create(raw: httpx.Client) -> None:
    body = {
        "messages": [
            {"role": "user", "content": "x", "metadata": None, "attachments": None},
        ],
        "metadata": None,
        "tool_resources": {"file_search": None, "code_interpreter": {"file_ids": None}},
    }
    answer = raw.post("/threads", json=body)
    assert answer.status_code == 200, answer.text
    assert answer.json()["tool_resources"] == {}
    messages = raw.get(f"/threads/{answer.json()['id']}/messages").json()["data"]
    assert messages[0]["attachments"] == [] and messages[0]["metadata"] == {}


def test_bad_thread_bodies(raw: httpx.Client) -> None:
    answer = raw.post("/threads", json={"messages": [{"role": "user"}]})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "messages[0].content"
    answer = raw.post("/threads", json={"messages": "hi"})
    assert answer.status_code == 400 and answer.json()["error"]["param"] == "messages"
    answer = raw.post(
        "/threads", json={"tool_resources": {"file_search": {"vector_store_ids": ["vs_x"]}}}
    )
    assert answer.status_code == 400 and "vs_x" in answer.json()["error"]["message"]


def test_thread_files_reach_the_code_interpreter(
    client: openai.OpenAI, server: RunningServer, workspace: tuple[str, str], fake_model: FakeModel
) -> None:
    """A thread's tool_resources.code_interpreter.file_ids are in /mnt/data for its runs."""
    file_id = client.files.create(file=("facts.txt", b"forty-two"), purpose="assistants").id
    read = "print(open('/mnt/data/facts.txt').read())"
    model = fake_model.new_model(ToolCalls([("code_interpreter", {"code": read})]), Reply("Done."))
    assistant = client.beta.assistants.create(model=model, tools=[{"type": "code_interpreter"}])
    thread = client.beta.threads.create(
        messages=[{"role": "user", "content": "Read my file."}],
        tool_resources={"code_interpreter": {"file_ids": [file_id]}},
    )
    run_id = start_run(server, workspace[1], thread.id, assistant.id)
    assert settle(server, workspace[1], thread.id, run_id)["status"] == "completed"
    told = [m for m in fake_model.requests(model)[-1]["messages"] if m.get("role") == "tool"]
    assert told and "forty-two" in str(told[0]["content"]), told
