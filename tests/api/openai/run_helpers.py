"""Helpers of the /v1 run tests: a conversation made through the openai SDK, with a
scripted model, and the events of a raw stream."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any

import httpx
import openai

from tests.support.fake_model import FakeModel, Turn

WEATHER = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
        },
    },
}
TIME = {
    "type": "function",
    "function": {
        "name": "get_time",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
FINAL = ("requires_action", "completed", "failed", "cancelled", "expired", "incomplete")


@dataclass
class Chat:
    """An assistant on a fresh scripted model and a thread with one user message."""

    client: openai.OpenAI
    model: str
    assistant_id: str
    thread_id: str

    def poll(self, **options: Any) -> Any:
        """`create_and_poll` on this thread and assistant."""
        return self.client.beta.threads.runs.create_and_poll(
            thread_id=self.thread_id, assistant_id=self.assistant_id, **options
        )

    def submit(self, run_id: str, call_id: str, output: str) -> Any:
        """`submit_tool_outputs_and_poll` of one output."""
        return self.client.beta.threads.runs.submit_tool_outputs_and_poll(
            run_id=run_id, thread_id=self.thread_id,
            tool_outputs=[{"tool_call_id": call_id, "output": output}],
        )  # fmt: skip


def chat(
    client: openai.OpenAI,
    fake_model: FakeModel,
    *turns: Turn,
    tools: list[dict[str, Any]] | None = None,
    question: str = "What is the weather in Paris?",
    **assistant: Any,
) -> Chat:
    model = fake_model.new_model(*turns)
    made = client.beta.assistants.create(
        model=model, instructions="Be brief.", tools=tools or [], **assistant
    )
    thread = client.beta.threads.create(messages=[{"role": "user", "content": question}])
    return Chat(client, model, made.id, thread.id)


def settle(client: openai.OpenAI, thread_id: str, run_id: str) -> Any:
    """The run once it waits for outputs or has ended (bounded polling)."""
    deadline = time.monotonic() + 60
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status in FINAL:
            return run
        assert time.monotonic() < deadline, f"run stayed {run.status}"
        time.sleep(0.05)


def wait_status(client: openai.OpenAI, thread_id: str, run_id: str, status: str) -> Any:
    deadline = time.monotonic() + 30
    while True:
        run = client.beta.threads.runs.retrieve(run_id, thread_id=thread_id)
        if run.status == status:
            return run
        assert time.monotonic() < deadline, f"run stayed {run.status}, not {status}"
        time.sleep(0.05)


def sse_events(body: bytes) -> list[tuple[str, str]]:
    """(event, data) of each event of an SSE body, as a strict reader splits them."""
    events = []
    for block in body.decode().split("\n\n"):
        lines = [line for line in block.split("\n") if line and not line.startswith(":")]
        if not lines:
            continue
        fields = dict(line.split(": ", 1) for line in lines)
        events.append((fields["event"], fields["data"]))
    return events


def raw_stream(raw: httpx.Client, path: str, body: dict[str, Any]) -> bytes:
    answer = raw.post(path, json={**body, "stream": True})
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"].startswith("text/event-stream")
    return answer.content


def names(events: list[tuple[str, str]]) -> list[str]:
    return [name for name, _ in events]


def data_of(events: list[tuple[str, str]], name: str) -> list[dict[str, Any]]:
    return [json.loads(data) for event, data in events if event == name]
