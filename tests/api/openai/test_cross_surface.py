"""One core under two wires: what one surface makes, the other reads (same ids, same
rows), with each surface's own shapes (seconds here, milliseconds there)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dashscope
import openai
import pytest
from dashscope import Assistants, Messages, Threads

from tests.support.server import RunningServer


@pytest.fixture(autouse=True)
def _dashscope_at(server: RunningServer) -> Iterator[None]:
    saved = dashscope.base_http_api_url
    dashscope.base_http_api_url = server.dashscope_url
    try:
        yield
    finally:
        dashscope.base_http_api_url = saved


def ok(result: object) -> object:
    assert getattr(result, "status_code", None) == 200, result
    return result


def test_dashscope_objects_on_v1(
    client: openai.OpenAI, server: RunningServer, workspace: tuple[str, str], text_file: Path
) -> None:
    key = workspace[1]
    uploaded = dashscope.Files.upload(str(text_file), purpose="assistants", api_key=key)
    file_id = uploaded.output["uploaded_files"][0]["file_id"]
    made = ok(
        Assistants.create(
            model="m",
            name="From DashScope",
            tools=[{"type": "code_interpreter"}],
            file_ids=[file_id],
            metadata={"via": "ds"},
            temperature=0.3,
            api_key=key,
        )
    )
    seen = client.beta.assistants.retrieve(made.id)  # type: ignore[attr-defined]
    assert (seen.name, seen.metadata, seen.temperature) == ("From DashScope", {"via": "ds"}, 0.3)
    assert seen.created_at == made.created_at // 1000  # type: ignore[attr-defined]
    assert seen.tool_resources.code_interpreter.file_ids == [file_id]  # type: ignore[union-attr]
    assert made.id in [a.id for a in client.beta.assistants.list()]  # type: ignore[attr-defined]

    thread = ok(Threads.create(messages=[{"role": "user", "content": "from ds"}], api_key=key))
    thread_id = thread.id  # type: ignore[attr-defined]
    ok(Messages.create(thread_id, content="with a file", file_ids=[file_id], api_key=key))
    listed = client.beta.threads.messages.list(thread_id, order="asc").data
    assert [m.content[0].text.value for m in listed] == ["from ds", "with a file"]  # type: ignore[union-attr]
    assert [a.model_dump() for a in listed[1].attachments or []] == [
        {"file_id": file_id, "tools": []}
    ]
    # the thread started there goes on here
    client.beta.threads.messages.create(thread_id, role="user", content="from v1")
    assert client.beta.threads.retrieve(thread_id).id == thread_id
    assert client.files.retrieve(file_id).filename == text_file.name


def test_v1_objects_on_dashscope(
    client: openai.OpenAI, server: RunningServer, workspace: tuple[str, str], text_file: Path
) -> None:
    key = workspace[1]
    file_id = client.files.create(file=text_file, purpose="assistants").id
    made = client.beta.assistants.create(
        model="m",
        name="From v1",
        tools=[{"type": "code_interpreter"}, {"type": "file_search"}],
        tool_resources={"code_interpreter": {"file_ids": [file_id]}},
        response_format={"type": "json_object"},
        metadata={"via": "v1"},
    )
    seen = ok(Assistants.retrieve(made.id, api_key=key))
    assert seen.name == "From v1" and seen.file_ids == [file_id]  # type: ignore[attr-defined]
    assert seen.created_at // 1000 == made.created_at  # type: ignore[attr-defined]
    assert [t["type"] for t in seen.tools] == ["code_interpreter", "file_search"]  # type: ignore[attr-defined]

    thread = client.beta.threads.create(
        messages=[
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "see"},
                    {"type": "image_url", "image_url": {"url": "https://example.com/i.png"}},
                ],
                "attachments": [{"file_id": file_id, "tools": [{"type": "code_interpreter"}]}],
            }
        ],
        metadata={"via": "v1"},
    )
    ds_thread = ok(Threads.retrieve(thread.id, api_key=key))
    assert ds_thread.metadata == {"via": "v1"}  # type: ignore[attr-defined]
    messages = ok(Messages.list(thread.id, api_key=key))
    (message,) = messages.data  # type: ignore[attr-defined]
    assert message.content[0].text.value == "see" and message.file_ids == [file_id]
    file_info = dashscope.Files.get(file_id, api_key=key)
    assert file_info.status_code == 200 and file_info.output["name"] == text_file.name
    ok(Threads.delete(thread.id, api_key=key))
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.retrieve(thread.id)
