"""The server's own tools in /v1 runs: the code interpreter OpenAI's way (its step's
input and outputs, streamed as step deltas; images as image_file parts; written files
as file_path annotations), and DashScope's built-ins as assistd extensions the SDK
parses."""

from __future__ import annotations

import json
from typing import Any

import openai
from openai import AssistantEventHandler
from typing_extensions import override

from tests.api.openai.run_helpers import chat
from tests.support.fake_model import FakeModel, Reply, ToolCalls

CODE = """\
import csv
import matplotlib.pyplot as plt
print(1 + 1)
with open("out.csv", "w", newline="") as f:
    csv.writer(f).writerows([["x", "y"], [1, 2]])
plt.plot([0, 1, 2], [0, 1, 4])
plt.show()
"""
ANSWER = "Here is the plot, and the data is in sandbox:/mnt/data/out.csv."


class ToolWatcher(AssistantEventHandler):
    def __init__(self) -> None:
        super().__init__()
        self.created: list[str] = []
        self.code = ""
        self.done: list[Any] = []

    @override
    def on_tool_call_created(self, tool_call: Any) -> None:
        self.created.append(tool_call.type)
        if tool_call.type == "code_interpreter":
            self.code += tool_call.code_interpreter.input or ""

    @override
    def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        if delta.type == "code_interpreter" and delta.code_interpreter:
            self.code += delta.code_interpreter.input or ""

    @override
    def on_tool_call_done(self, tool_call: Any) -> None:
        self.done.append(tool_call)


def test_code_interpreter_the_openai_way(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(
        client, fake_model, ToolCalls([("code_interpreter", {"code": CODE})]), Reply(ANSWER),
        tools=[{"type": "code_interpreter"}], question="Plot it and save the data.",
    )  # fmt: skip
    watcher = ToolWatcher()
    with client.beta.threads.runs.stream(
        thread_id=c.thread_id, assistant_id=c.assistant_id, event_handler=watcher
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
        (reply,) = stream.get_final_messages()
    assert final.status == "completed", final.last_error
    assert watcher.created == ["code_interpreter"] and watcher.code == CODE
    # the SDK's handler calls this again at each later step or run end: the same call
    assert len({done.id for done in watcher.done}) == 1
    call = watcher.done[-1]
    assert call.type == "code_interpreter" and call.code_interpreter.input == CODE

    steps = client.beta.threads.runs.steps.list(run_id=final.id, thread_id=c.thread_id, order="asc")
    (tool,) = steps.data[0].step_details.tool_calls  # type: ignore[union-attr]
    assert tool.type == "code_interpreter" and tool.code_interpreter.input == CODE  # type: ignore[union-attr]
    outputs = tool.code_interpreter.outputs  # type: ignore[union-attr]
    assert [o.type for o in outputs] == ["logs", "image"]
    assert "2" in outputs[0].logs  # type: ignore[union-attr]
    image_id = outputs[1].image.file_id  # type: ignore[union-attr]

    stored = client.beta.threads.messages.retrieve(reply.id, thread_id=c.thread_id)
    assert [p.type for p in stored.content] == ["text", "image_file"]
    assert stored.content[1].image_file.file_id == image_id  # type: ignore[union-attr]
    assert client.files.content(image_id).content.startswith(b"\x89PNG")
    text = stored.content[0].text  # type: ignore[union-attr]
    # the text also links the image (the dashscope SDK drops image_file parts)
    assert text.value.startswith(ANSWER + "\n\n![image](")
    (note,) = text.annotations
    assert note.type == "file_path" and note.text == "sandbox:/mnt/data/out.csv"
    assert text.value[note.start_index : note.end_index] == note.text
    data = client.files.content(note.file_path.file_id).content  # type: ignore[union-attr]
    assert data.replace(b"\r\n", b"\n") == b"x,y\n1,2\n"
    assert reply.content[0].text.annotations[0].file_path.file_id == note.file_path.file_id  # type: ignore[union-attr]


def test_dashscope_builtin_is_an_extension_the_sdk_parses(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(
        client, fake_model, ToolCalls([("calculator", {"expression": "6*7"})]), Reply("42."),
        tools=[{"type": "calculator"}], question="What is 6 times 7?",
    )  # fmt: skip
    watcher = ToolWatcher()
    with client.beta.threads.runs.stream(
        thread_id=c.thread_id, assistant_id=c.assistant_id, event_handler=watcher
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "completed" and watcher.created == ["calculator"]
    steps = client.beta.threads.runs.steps.list(run_id=final.id, thread_id=c.thread_id, order="asc")
    (call,) = steps.data[0].step_details.tool_calls  # type: ignore[union-attr]
    shown = call.model_dump()
    assert shown["type"] == "calculator" and call.id.startswith("call_")
    assert json.loads(shown["calculator"]["input"]) == {"expression": "6*7"}
    assert "42" in shown["calculator"]["output"]
    assert final.tools[0].type == "calculator"
