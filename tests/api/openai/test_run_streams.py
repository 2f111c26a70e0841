"""Streaming runs on /v1 as the openai SDK's helpers read them (spec sections 9, 10 and
13): runs.stream with an AssistantEventHandler, submit_tool_outputs_stream, raw
stream=True, create_and_run_stream; the framing itself; cancel mid-stream; a client
that leaves; a failed run."""

from __future__ import annotations

import asyncio
import json
import threading
from pathlib import Path
from typing import Any

import httpx
import openai
from openai import AssistantEventHandler
from typing_extensions import override

from tests.api.openai.conftest import openai_url, sdk
from tests.api.openai.run_helpers import (
    WEATHER,
    chat,
    data_of,
    names,
    raw_stream,
    settle,
    sse_events,
    wait_status,
)
from tests.conftest import make_workspace
from tests.support.fake_model import Fail, FakeModel, Gate, Reply, ToolCalls
from tests.support.server import RunningServer, run_server


class Recorder(AssistantEventHandler):
    """Writes down what the SDK's handler calls back, as an application's would."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []
        self.text = ""
        self.calls_done: list[Any] = []
        self.argument_pieces: list[str] = []

    @override
    def on_event(self, event: Any) -> None:
        self.seen.append(event.event)

    @override
    def on_text_delta(self, delta: Any, snapshot: Any) -> None:
        self.text += delta.value or ""

    @override
    def on_tool_call_delta(self, delta: Any, snapshot: Any) -> None:
        if delta.type == "function" and delta.function and delta.function.arguments:
            self.argument_pieces.append(delta.function.arguments)

    @override
    def on_tool_call_done(self, tool_call: Any) -> None:
        self.calls_done.append(tool_call)


def test_stream_helper_function_call_and_outputs(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(
        client, fake_model, ToolCalls([("get_weather", {"city": "Paris"})]),
        Reply("It is sunny in Paris."), tools=[WEATHER],
    )  # fmt: skip
    runs = client.beta.threads.runs
    first = Recorder()
    with runs.stream(thread_id=c.thread_id, assistant_id=c.assistant_id, event_handler=first) as s:
        s.until_done()
    run = first.current_run
    assert run is not None and run.status == "requires_action"
    assert first.seen[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert first.seen[-1] == "thread.run.requires_action"
    assert "thread.run.step.delta" in first.seen
    (done,) = first.calls_done
    assert done.type == "function" and done.function.name == "get_weather"
    assert json.loads(done.function.arguments) == {"city": "Paris"}
    assert first.argument_pieces  # the pieces after the first, which on_tool_call_created has
    (call,) = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert call.id == done.id
    second = Recorder()
    with runs.submit_tool_outputs_stream(
        run_id=run.id, thread_id=c.thread_id, event_handler=second,
        tool_outputs=[{"tool_call_id": call.id, "output": "sunny"}],
    ) as s:  # fmt: skip
        s.until_done()
        messages = s.get_final_messages()
        final = s.get_final_run()
    assert second.seen[0] == "thread.run.step.completed"  # the tool step, outputs filled in
    assert second.seen[1:3] == ["thread.run.queued", "thread.run.in_progress"]
    assert second.text == "It is sunny in Paris."
    assert final.status == "completed" and final.usage is not None
    (message,) = messages
    assert message.content[0].text.value == "It is sunny in Paris."  # type: ignore[union-attr]
    steps = second.get_final_run_steps()
    assert steps[-1].type == "message_creation"  # the tool step was created in the first leg


def test_raw_stream_events_in_order(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(client, fake_model, Reply("Hello there friend"))
    stream = client.beta.threads.runs.create(
        thread_id=c.thread_id, assistant_id=c.assistant_id, stream=True
    )
    events = [event.event for event in stream]
    assert events == [
        "thread.run.created", "thread.run.queued", "thread.run.in_progress",
        "thread.run.step.created", "thread.run.step.in_progress",
        "thread.message.created", "thread.message.in_progress",
        "thread.message.delta", "thread.message.delta", "thread.message.delta",
        "thread.message.completed", "thread.run.step.completed", "thread.run.completed",
    ]  # fmt: skip


def test_text_deltas_helper(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(client, fake_model, Reply("one two three"))
    with client.beta.threads.runs.stream(
        thread_id=c.thread_id, assistant_id=c.assistant_id
    ) as stream:
        assert "".join(stream.text_deltas) == "one two three"


def test_framing_on_the_wire(
    client: openai.OpenAI, fake_model: FakeModel, raw: httpx.Client
) -> None:
    """No `id:` lines (they break the SDK), every event has JSON data and a blank line
    after it, and the body ends right after `[DONE]`."""
    c = chat(client, fake_model, ToolCalls([("get_weather", {"city": "Oslo"})]), tools=[WEATHER])
    body = raw_stream(raw, f"/threads/{c.thread_id}/runs", {"assistant_id": c.assistant_id})
    assert not any(line.startswith(b"id:") for line in body.split(b"\n"))
    assert body.endswith(b"}\n\nevent: done\ndata: [DONE]\n\n")
    events = sse_events(body)
    assert events[-2][0] == "thread.run.requires_action"
    assert events[-1] == ("done", "[DONE]")
    for _, data in events[:-1]:
        json.loads(data)
    created = data_of(events, "thread.run.step.created")
    assert created[0]["step_details"] == {"type": "tool_calls", "tool_calls": []}
    deltas = data_of(events, "thread.run.step.delta")
    first, rest = deltas[0]["delta"]["step_details"]["tool_calls"][0], deltas[1:]
    assert first["id"].startswith("call_") and first["function"]["name"] == "get_weather"
    assert first["function"]["output"] is None and first["index"] == 0
    for later in rest:
        (piece,) = later["delta"]["step_details"]["tool_calls"]
        assert set(piece) == {"index", "type", "function"} and set(piece["function"]) == {
            "arguments"
        }
    (waiting,) = data_of(events, "thread.run.requires_action")
    assert waiting["required_action"]["submit_tool_outputs"]["tool_calls"][0]["id"] == first["id"]
    assert names(events).count("thread.run.requires_action") == 1


def test_create_and_run_stream_starts_with_the_thread(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Reply("Made."))
    assistant = client.beta.assistants.create(model=model)
    handler = Recorder()
    with client.beta.threads.create_and_run_stream(
        assistant_id=assistant.id, event_handler=handler,
        thread={"messages": [{"role": "user", "content": "Make it."}]},
    ) as stream:  # fmt: skip
        stream.until_done()
        final = stream.get_final_run()
    assert handler.seen[0] == "thread.created"
    assert final.status == "completed" and handler.text == "Made."
    assert client.beta.threads.messages.list(final.thread_id).data[0].run_id == final.id


def test_cancel_mid_stream(client: openai.OpenAI, fake_model: FakeModel) -> None:
    gate = Gate("too late")
    c = chat(client, fake_model, gate)
    stream = client.beta.threads.runs.create(
        thread_id=c.thread_id, assistant_id=c.assistant_id, stream=True
    )
    seen = []
    try:
        for event in stream:
            seen.append(event.event)
            if event.event == "thread.run.in_progress":
                cancelled = client.beta.threads.runs.cancel(
                    run_id=event.data.id, thread_id=c.thread_id
                )
                assert cancelled.status == "cancelling"
    finally:
        gate.open()
    assert seen[-1] == "thread.run.cancelled" and "thread.run.cancelling" in seen
    final = settle(client, c.thread_id, cancelled.id)
    assert final.status == "cancelled" and final.cancelled_at is not None


def test_a_client_that_leaves_leaves_the_run_running(
    client: openai.OpenAI, fake_model: FakeModel, server: RunningServer, workspace: Any
) -> None:
    gate = Gate("Finished without you.")
    c = chat(client, fake_model, gate)
    headers = {"Authorization": f"Bearer {workspace[1]}"}
    body = {"assistant_id": c.assistant_id, "stream": True}
    url = f"{openai_url(server)}/threads/{c.thread_id}/runs"
    run_id = ""
    try:
        with httpx.stream("POST", url, json=body, headers=headers, timeout=30) as answer:
            for line in answer.iter_lines():
                if line.startswith("data: ") and '"thread.run"' in line:
                    run_id = json.loads(line[6:])["id"]
                if line == "event: thread.run.in_progress":
                    break  # the client goes away here
        wait_status(client, c.thread_id, run_id, "in_progress")
    finally:
        gate.open()
    assert settle(client, c.thread_id, run_id).status == "completed"
    reply = client.beta.threads.messages.list(c.thread_id, limit=1).data[0]
    assert reply.content[0].text.value == "Finished without you."  # type: ignore[union-attr]


def test_failed_run_ends_the_stream_with_its_error(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(client, fake_model, Fail(500), Fail(500), Fail(500))
    with client.beta.threads.runs.stream(
        thread_id=c.thread_id, assistant_id=c.assistant_id
    ) as stream:
        stream.until_done()
        final = stream.get_final_run()
    assert final.status == "failed" and final.last_error is not None
    assert final.last_error.code == "server_error" and final.last_error.message
    assert final.failed_at is not None


def test_async_client_streams_and_polls(
    server: RunningServer, workspace: Any, fake_model: FakeModel, client: openai.OpenAI
) -> None:
    c = chat(
        client, fake_model, ToolCalls([("get_weather", {"city": "Rome"})]), Reply("Warm."),
        tools=[WEATHER],
    )  # fmt: skip

    async def flow() -> tuple[Any, Any]:
        async with openai.AsyncOpenAI(
            base_url=openai_url(server), api_key=workspace[1], max_retries=0
        ) as aclient:
            runs = aclient.beta.threads.runs
            async with runs.stream(thread_id=c.thread_id, assistant_id=c.assistant_id) as s:
                await s.until_done()
                waiting = await s.get_final_run()
            call = waiting.required_action.submit_tool_outputs.tool_calls[0]  # type: ignore[union-attr]
            done = await runs.submit_tool_outputs_and_poll(
                run_id=waiting.id, thread_id=c.thread_id,
                tool_outputs=[{"tool_call_id": call.id, "output": "25C"}],
            )  # fmt: skip
            return waiting, done

    waiting, done = asyncio.run(flow())
    assert waiting.status == "requires_action" and done.status == "completed"


def test_heartbeats_keep_a_quiet_stream_open(tmp_path: Path, fake_model: FakeModel) -> None:
    """`: keep-alive` comments while the model says nothing: the SDK skips them (no `id:`
    line came before, so no empty event is dispatched)."""
    env = {"ASSISTD_OPENAI_BASE_URL": fake_model.base_url, "ASSISTD_SSE_HEARTBEAT_S": "0.2"}
    with run_server(tmp_path / "data", **env) as own:
        with httpx.Client(base_url=own.base_url, headers={
                "Authorization": f"Bearer {own.admin_key}"}) as admin:  # fmt: skip
            key = make_workspace(admin, "beat")[1]
        with sdk(own, key) as client:
            gates = [Gate("after a pause"), Gate("after another pause")]
            c = chat(client, fake_model, *gates)
            opener = threading.Timer(1.0, gates[0].open)
            opener.start()
            try:
                body = raw_stream_at(own, key, c)
            finally:
                opener.cancel()
                gates[0].open()
            assert body.count(b": keep-alive\n\n") >= 2
            assert sse_events(body)[-1] == ("done", "[DONE]")
            threading.Timer(1.0, gates[1].open).start()
            stream = client.beta.threads.runs.create(
                thread_id=c.thread_id, assistant_id=c.assistant_id, stream=True
            )
            events = [event.event for event in stream]
            assert events[-1] == "thread.run.completed"


def raw_stream_at(server: RunningServer, key: str, c: Any) -> bytes:
    with httpx.Client(base_url=openai_url(server), timeout=30,
                      headers={"Authorization": f"Bearer {key}"}) as raw:  # fmt: skip
        return raw_stream(raw, f"/threads/{c.thread_id}/runs", {"assistant_id": c.assistant_id})


def test_incomplete_run_stream(
    client: openai.OpenAI, fake_model: FakeModel, raw: httpx.Client
) -> None:
    c = chat(client, fake_model, Reply("cut off here", finish="length"))
    body = {"assistant_id": c.assistant_id, "max_completion_tokens": 256}
    events = sse_events(raw_stream(raw, f"/threads/{c.thread_id}/runs", body))
    assert names(events)[-4:] == [
        "thread.message.incomplete", "thread.run.step.completed", "thread.run.incomplete", "done",
    ]  # fmt: skip
    (run,) = data_of(events, "thread.run.incomplete")
    assert run["status"] == "incomplete"
    assert run["incomplete_details"] == {"reason": "max_completion_tokens"}
    (message,) = data_of(events, "thread.message.incomplete")
    assert message["content"][0]["text"]["value"] == "cut off here"
