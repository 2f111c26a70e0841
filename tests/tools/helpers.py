"""Helpers of the built-in tool tests: one scripted conversation through the real
`dashscope` SDK, and raw reads of what the SDK hides (step outputs it keeps as plain
dicts, the `image_file.file_id` it drops, file bytes)."""

from __future__ import annotations

import json
import re
import secrets
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import dashscope
import httpx
from dashscope import Assistants, Messages, Runs, Threads

from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import RunningServer

CODE = [{"type": "code_interpreter"}]
TERMINAL = ("completed", "failed", "cancelled", "expired", "requires_action")


def ok(result: Any) -> Any:
    assert result.status_code == 200, as_json(result)
    return result


def code_call(code: str) -> ToolCalls:
    return ToolCalls([("code_interpreter", {"code": code})])


def settle(thread_id: str, run_id: str, timeout_s: float = 120) -> Any:
    """The run once it has ended or waits for the client (bounded polling)."""
    deadline = time.monotonic() + timeout_s
    while True:
        run = ok(Runs.retrieve(run_id, thread_id=thread_id))
        if run.status in TERMINAL:
            return run
        assert time.monotonic() < deadline, f"run {run_id} stayed {run.status}"
        time.sleep(0.1)


@dataclass
class Conversation:
    """One thread with one assistant on a scripted model."""

    server: RunningServer
    fake_model: FakeModel
    model: str
    assistant_id: str
    thread_id: str

    def run(self, question: str | None = None, file_ids: list[str] | None = None) -> str:
        """Posts `question` (if any), runs the assistant to completion; the run's id."""
        ended = self.settled_run(question, file_ids)
        assert ended.status == "completed", as_json(ended)
        return str(ended.id)

    def settled_run(self, question: str | None = None, file_ids: list[str] | None = None) -> Any:
        """Posts `question` (if any), runs the assistant; the run once it has ended or
        waits for tool outputs."""
        if question is not None:
            ok(Messages.create(self.thread_id, content=question, file_ids=file_ids or []))
        run = ok(Runs.create(self.thread_id, assistant_id=self.assistant_id))
        return settle(self.thread_id, run.id)

    def raw(self, path: str) -> Any:
        with raw_client(self.server) as client:
            response = client.get(path)
        assert response.status_code == 200, response.text
        return response.json()

    def tool_calls(self, run_id: str) -> list[dict[str, Any]]:
        """Every tool call of the run's steps, as the DashScope surface renders them."""
        steps = self.raw(f"/threads/{self.thread_id}/runs/{run_id}/steps?order=asc")["data"]
        return [
            call
            for step in steps
            if step["type"] == "tool_calls"
            for call in step["step_details"]["tool_calls"]
        ]

    def outputs(self, run_id: str) -> list[str]:
        """The output of each tool call of the run, in order."""
        return [output_of(call) for call in self.tool_calls(run_id)]

    def reply(self, run_id: str) -> dict[str, Any]:
        """The run's last assistant message, raw (with the image file ids the SDK drops)."""
        messages = self.raw(f"/threads/{self.thread_id}/messages?order=desc&limit=100")["data"]
        return next(m for m in messages if m["run_id"] == run_id and m["role"] == "assistant")

    def told_model(self) -> list[str]:
        """The tool outputs the model was shown in its latest request, in order."""
        latest = self.fake_model.requests(self.model)[-1]
        return [str(m["content"]) for m in latest["messages"] if m.get("role") == "tool"]

    def download(self, file_id: str) -> bytes:
        with raw_client(self.server) as client:
            response = client.get(f"/files/{file_id}/content")
        assert response.status_code == 200, response.text
        return response.content


def output_of(call: dict[str, Any]) -> str:
    """A tool call's output as the DashScope surface gives it: code_interpreter's in the
    undeclared `output` key (its `outputs` must stay empty), the others in their body."""
    kind = call["type"]
    if kind == "code_interpreter":
        assert call["code_interpreter"]["outputs"] == [], call
        return str(call["output"])
    if kind == "function":
        return str(call["function"]["output"])
    return str(call[kind]["output"])


def new_conversation(
    server: RunningServer,
    fake_model: FakeModel,
    *turns: Any,
    tools: list[dict[str, Any]] | None = None,
) -> Conversation:
    """A new assistant (code_interpreter unless `tools`) on a model scripted with
    `turns`, and a new thread."""
    model = fake_model.new_model(*turns)
    assistant = ok(Assistants.create(model=model, tools=CODE if tools is None else tools))
    thread = ok(Threads.create())
    return Conversation(server, fake_model, model, assistant.id, thread.id)


def converse(
    server: RunningServer,
    fake_model: FakeModel,
    *turns: Any,
    tools: list[dict[str, Any]] | None = None,
    question: str = "Please help.",
    file_ids: list[str] | None = None,
) -> tuple[Conversation, str]:
    """A new conversation and its first run (completed): the conversation and the run's id."""
    conversation = new_conversation(server, fake_model, *turns, tools=tools)
    return conversation, conversation.run(question, file_ids)


def run_code(
    server: RunningServer, fake_model: FakeModel, *codes: str, reply: str = "Done."
) -> tuple[Conversation, list[str]]:
    """One run calling code_interpreter once per code (one model turn each), then
    answering; the outputs of those calls."""
    turns = [code_call(code) for code in codes]
    conversation, run_id = converse(server, fake_model, *turns, Reply(reply))
    outputs = conversation.outputs(run_id)
    assert len(outputs) == len(codes), outputs
    return conversation, outputs


def raw_client(server: RunningServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {dashscope.api_key}"}
    return httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30)


@contextmanager
def sdk_on(server: RunningServer) -> Iterator[str]:
    """Points the dashscope SDK at `server` with the key of a new workspace of it."""
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        created = admin.post("/admin/v1/workspaces", json={"name": f"t-{secrets.token_hex(4)}"})
        assert created.status_code == 200, created.text
        workspace = created.json()["id"]
        key = admin.post("/admin/v1/keys", json={"workspace": workspace})
        assert key.status_code == 200, key.text
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url, dashscope.api_key = server.dashscope_url, key.json()["key"]
    try:
        yield workspace
    finally:
        dashscope.base_http_api_url, dashscope.api_key = saved


def healthy(server: RunningServer) -> bool:
    try:
        return httpx.get(f"{server.base_url}/healthz", timeout=10).status_code == 200
    except httpx.TransportError:
        return False


def arguments(call: dict[str, Any]) -> dict[str, Any]:
    kind = call["type"]
    text = call["function"]["arguments"] if kind == "function" else call[kind]["input"]
    parsed: dict[str, Any] = json.loads(text)
    return parsed


def image_link(text: str) -> str:
    """The URL of the one Markdown image in a reply's text."""
    [url] = re.findall(r"!\[image\]\(([^)]+)\)", text)
    return str(url)


def assert_links_to(url: str, server: RunningServer, file_id: str) -> None:
    """A signed, expiring link of `file_id`, absolute, at the server's own address."""
    parts = urlsplit(url)
    assert f"{parts.scheme}://{parts.netloc}" == server.base_url, url
    assert parts.path == f"/links/files/{file_id}", url
    query = parse_qs(parts.query)
    assert set(query) == {"w", "e", "s"} and int(query["e"][0]) > time.time(), url
