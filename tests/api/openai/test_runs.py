"""Runs on /v1 through the openai SDK's poll helpers: create, list, retrieve, modify,
submit tool outputs, create-and-run; the steps they leave; times in seconds."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.api.openai.run_helpers import TIME, WEATHER, chat, settle
from tests.support.fake_model import FakeModel, Gate, Reply, ToolCalls
from tests.support.server import RunningServer


def _said(error: openai.APIStatusError) -> str:
    """The error's message as the server wrote it (3.x prefixes `.message`)."""
    assert isinstance(error.body, dict)
    return str(error.body["message"])


def test_create_and_poll_answers_in_the_thread(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(client, fake_model, Reply("Sunny and warm."))
    run = c.poll()
    assert run.status == "completed" and run.object == "thread.run"
    assert run.thread_id == c.thread_id and run.assistant_id == c.assistant_id
    assert 1_000_000_000 < run.created_at < 10_000_000_000  # seconds
    assert run.completed_at is not None and run.completed_at >= run.created_at
    assert (
        run.usage is not None
        and run.usage.total_tokens == run.usage.prompt_tokens + run.usage.completion_tokens
    )
    assert run.instructions == "Be brief." and run.incomplete_details is None
    assert run.truncation_strategy is not None and run.truncation_strategy.type == "auto"
    assert run.tool_choice == "auto" and run.parallel_tool_calls is True
    assert run.response_format == "auto"
    newest = client.beta.threads.messages.list(thread_id=c.thread_id, limit=1).data[0]
    assert newest.role == "assistant" and newest.run_id == run.id
    assert newest.assistant_id == c.assistant_id
    assert newest.content[0].type == "text" and newest.content[0].text.value == "Sunny and warm."
    steps = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=c.thread_id)
    (step,) = steps.data
    assert step.type == "message_creation" and step.status == "completed"
    assert step.step_details.type == "message_creation"
    assert step.step_details.message_creation.message_id == newest.id
    assert step.usage is not None and step.usage.total_tokens > 0


def test_function_call_then_outputs(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(
        client, fake_model, ToolCalls([("get_weather", {"city": "Paris"})]), Reply("It is sunny."),
        tools=[WEATHER],
    )  # fmt: skip
    runs = client.beta.threads.runs
    run = c.poll()
    assert run.status == "requires_action"
    assert run.required_action is not None and run.required_action.type == "submit_tool_outputs"
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert run.expires_at is not None and run.expires_at > run.created_at
    done = runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=c.thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "22C"}],
    )
    assert done.status == "completed" and done.required_action is None
    steps = runs.steps.list(run_id=run.id, thread_id=c.thread_id, order="asc").data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    (made,) = steps[0].step_details.tool_calls
    assert made.type == "function" and made.id == call.id
    assert made.function.output == "22C" and made.function.name == "get_weather"
    tool_request = fake_model.requests(c.model)[-1]["messages"]
    assert {"role": "tool", "tool_call_id": call.id, "content": "22C"} in tool_request


def test_list_retrieve_modify_and_steps(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(client, fake_model, Reply("one"), Reply("two"))
    runs = client.beta.threads.runs
    first = c.poll()
    second = c.poll(metadata={"try": "2"})
    listed = runs.list(thread_id=c.thread_id)
    assert [r.id for r in listed.data] == [second.id, first.id]  # newest first
    assert listed.has_more is False and listed.first_id == second.id
    assert [r.id for r in runs.list(thread_id=c.thread_id, limit=1).data] == [second.id]
    changed = runs.update(run_id=first.id, thread_id=c.thread_id, metadata={"k": "v"})
    assert changed.metadata == {"k": "v"}
    assert runs.retrieve(run_id=second.id, thread_id=c.thread_id).metadata == {"try": "2"}
    step = runs.steps.list(run_id=first.id, thread_id=c.thread_id).data[0]
    content = "step_details.tool_calls[*].file_search.results[*].content"
    got = runs.steps.retrieve(step.id, thread_id=c.thread_id, run_id=first.id, include=[content])
    assert got.id == step.id and got.run_id == first.id
    listed_steps = runs.steps.list(run_id=first.id, thread_id=c.thread_id, include=[content])
    assert [s.id for s in listed_steps.data] == [step.id]
    with pytest.raises(openai.NotFoundError):
        runs.retrieve(run_id="run_nope", thread_id=c.thread_id)
    with pytest.raises(openai.NotFoundError):
        runs.steps.retrieve("step_nope", thread_id=c.thread_id, run_id=first.id)


def test_create_and_run_poll(client: openai.OpenAI, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Hi!"))
    assistant = client.beta.assistants.create(model=model)
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Hello", "metadata": None}],
                "metadata": {"from": "test"}},
    )  # fmt: skip
    assert run.status == "completed" and run.thread_id.startswith("thread_")
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.metadata == {"from": "test"}
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(run.thread_id).data]
    assert texts == ["Hi!", "Hello"]


def test_run_overrides_reach_the_model(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(client, fake_model, Reply("ok"), question="first question")
    run = c.poll(
        additional_instructions="Answer in French.",
        additional_messages=[{"role": "user", "content": "second question"}],
        temperature=0.3,
        top_p=0.9,
        truncation_strategy={"type": "last_messages", "last_messages": 1},
        max_prompt_tokens=5000,
    )
    assert run.status == "completed" and run.temperature == 0.3 and run.top_p == 0.9
    assert run.instructions == "Be brief.\n\nAnswer in French."
    assert run.truncation_strategy.type == "last_messages"
    assert run.truncation_strategy.last_messages == 1 and run.max_prompt_tokens == 5000
    sent = fake_model.requests(c.model)[-1]
    assert sent["temperature"] == 0.3 and sent["top_p"] == 0.9
    assert sent["messages"][0] == {"role": "system", "content": "Be brief.\n\nAnswer in French."}
    # truncated to the newest thread message: the one the run added
    assert sent["messages"][1:] == [{"role": "user", "content": "second question"}]
    texts = [m.content[0].text.value for m in client.beta.threads.messages.list(c.thread_id).data]
    assert texts == ["ok", "second question", "first question"]


def test_tool_choice_reaches_the_model(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(
        client, fake_model, Reply("a"), Reply("b"), Reply("c"), ToolCalls([("get_time", {})]),
        Reply("d"), tools=[WEATHER, TIME],
    )  # fmt: skip
    runs = client.beta.threads.runs
    run = c.poll(tool_choice="none")
    assert run.tool_choice == "none"
    assert "tools" not in fake_model.requests(c.model)[-1]
    run = c.poll(tool_choice="required")
    assert run.tool_choice == "required"
    assert fake_model.requests(c.model)[-1]["tool_choice"] == "required"
    named = {"type": "function", "function": {"name": "get_weather"}}
    run = c.poll(tool_choice=named)  # type: ignore[arg-type]
    assert run.tool_choice is not None and run.tool_choice.type == "function"  # type: ignore[union-attr]
    assert fake_model.requests(c.model)[-1]["tool_choice"] == named
    # a forced choice binds the first turn only: the answer after the call is free
    run = c.poll(tool_choice="required")
    assert run.status == "requires_action"
    (call,) = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    runs.submit_tool_outputs_and_poll(
        run_id=run.id,
        thread_id=c.thread_id,
        tool_outputs=[{"tool_call_id": call.id, "output": "9"}],
    )
    assert "tool_choice" not in fake_model.requests(c.model)[-1]


def test_tool_choice_must_name_a_tool_of_the_run(
    client: openai.OpenAI, fake_model: FakeModel, raw: httpx.Client
) -> None:
    c = chat(client, fake_model, tools=[WEATHER])
    runs = client.beta.threads.runs
    with pytest.raises(openai.BadRequestError) as caught:
        runs.create(
            thread_id=c.thread_id, assistant_id=c.assistant_id,
            tool_choice={"type": "function", "function": {"name": "nope"}},
        )  # fmt: skip
    assert caught.value.param == "tool_choice" and "'nope'" in _said(caught.value)
    bad = raw.post(f"/threads/{c.thread_id}/runs",
                   json={"assistant_id": c.assistant_id, "tool_choice": "sometimes"})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "tool_choice"
    cut = {"type": "last_messages"}
    bad = raw.post(f"/threads/{c.thread_id}/runs",
                   json={"assistant_id": c.assistant_id, "truncation_strategy": cut})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "truncation_strategy"
    bad = raw.post(f"/threads/{c.thread_id}/runs",
                   json={"assistant_id": c.assistant_id, "max_completion_tokens": 5})  # fmt: skip
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "max_completion_tokens"
    # nothing was left behind by the refused requests
    assert client.beta.threads.runs.list(thread_id=c.thread_id).data == []


def test_response_format_json_schema(client: openai.OpenAI, fake_model: FakeModel) -> None:
    c = chat(client, fake_model, Reply('{"city": "Paris"}'), Reply("{}"))
    schema = {"type": "object", "properties": {"city": {"type": "string"}}}
    wanted = {
        "type": "json_schema",
        "json_schema": {"name": "place", "schema": schema, "strict": True},
    }
    run = c.poll(
        response_format=wanted,  # type: ignore[arg-type]
    )
    assert run.response_format.type == "json_schema"  # type: ignore[union-attr]
    assert run.response_format.json_schema.name == "place"  # type: ignore[union-attr]
    assert fake_model.requests(c.model)[-1]["response_format"] == wanted
    run = c.poll(response_format={"type": "json_object"})
    assert fake_model.requests(c.model)[-1]["response_format"] == {"type": "json_object"}


def test_assistant_response_format_is_the_runs_default(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(
        client, fake_model, Reply("{}"), Reply("plain"), response_format={"type": "json_object"}
    )
    run = c.poll()
    assert run.response_format.type == "json_object"  # type: ignore[union-attr]
    assert fake_model.requests(c.model)[-1]["response_format"] == {"type": "json_object"}
    run = c.poll(response_format="auto")
    assert run.response_format == "auto"
    assert "response_format" not in fake_model.requests(c.model)[-1]


def test_token_cap_ends_the_run_incomplete(
    client: openai.OpenAI, fake_model: FakeModel, server: RunningServer
) -> None:
    c = chat(client, fake_model, Reply("A long answer that was cut", finish="length"))
    run = c.poll(max_completion_tokens=300)
    assert run.status == "incomplete" and run.max_completion_tokens == 300
    assert run.incomplete_details is not None
    assert run.incomplete_details.reason == "max_completion_tokens"
    assert run.usage is not None and run.usage.completion_tokens > 0
    assert fake_model.requests(c.model)[-1]["max_tokens"] <= 300
    reply = client.beta.threads.messages.list(thread_id=c.thread_id, limit=1).data[0]
    assert reply.status == "incomplete" and reply.run_id == run.id
    assert reply.content[0].text.value == "A long answer that was cut"  # type: ignore[union-attr]
    # the DashScope surface, whose SDK knows no `incomplete`, shows it completed
    headers = {"Authorization": f"Bearer {client.api_key}"}
    seen = httpx.get(f"{server.dashscope_url}/threads/{c.thread_id}/runs/{run.id}", headers=headers)
    assert seen.json()["status"] == "completed"
    assert seen.json()["incomplete_details"] == {"reason": "max_completion_tokens"}


def test_parallel_tool_calls_false_keeps_one_call(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    both = ToolCalls([("get_weather", {"city": "Paris"}), ("get_time", {"city": "Paris"})])
    c = chat(client, fake_model, both, tools=[WEATHER, TIME])
    run = c.poll(parallel_tool_calls=False)
    assert run.status == "requires_action" and run.parallel_tool_calls is False
    calls = run.required_action.submit_tool_outputs.tool_calls  # type: ignore[union-attr]
    assert [call.function.name for call in calls] == ["get_weather"]
    assert fake_model.requests(c.model)[-1]["parallel_tool_calls"] is False


def test_active_run_conflicts_use_openai_texts(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(client, fake_model, ToolCalls([("get_weather", {"city": "Paris"})]), tools=[WEATHER])
    runs = client.beta.threads.runs
    run = c.poll()
    assert run.status == "requires_action"
    with pytest.raises(openai.BadRequestError) as caught:
        runs.create(thread_id=c.thread_id, assistant_id=c.assistant_id)
    assert _said(caught.value) == f"Thread {c.thread_id} already has an active run {run.id}."
    assert caught.value.code is None and caught.value.type == "invalid_request_error"
    with pytest.raises(openai.BadRequestError) as caught:
        client.beta.threads.messages.create(thread_id=c.thread_id, role="user", content="more")
    assert _said(caught.value) == (
        f"Can't add messages to {c.thread_id} while a run {run.id} is active."
    )
    cancelled = runs.cancel(run_id=run.id, thread_id=c.thread_id)
    assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
    assert settle(client, c.thread_id, run.id).status == "cancelled"


def test_thread_from_dashscope_runs_on_v1(
    client: openai.OpenAI, fake_model: FakeModel, server: RunningServer
) -> None:
    model = fake_model.new_model(Reply("Continued here."))
    assistant = client.beta.assistants.create(model=model)
    headers = {"Authorization": f"Bearer {client.api_key}"}
    with httpx.Client(base_url=server.dashscope_url, headers=headers, timeout=30) as ds:
        made = ds.post("/threads", json={"messages": [{"role": "user", "content": "Begun there."}]})
        thread_id = made.json()["id"]
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread_id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        assert fake_model.requests(model)[-1]["messages"][-1] == {
            "role": "user", "content": "Begun there."
        }  # fmt: skip
        seen = ds.get(f"/threads/{thread_id}/runs/{run.id}").json()
        assert seen["status"] == "completed" and seen["created_at"] // 1000 == run.created_at
        texts = [m["content"][0]["text"]["value"] for m in ds.get(
            f"/threads/{thread_id}/messages").json()["data"]]  # fmt: skip
    assert texts == ["Continued here.", "Begun there."]


def test_poll_hint_while_a_run_is_going(
    client: openai.OpenAI, fake_model: FakeModel, raw: httpx.Client
) -> None:
    gate = Gate("done")
    c = chat(client, fake_model, gate)
    try:
        made = raw.post(f"/threads/{c.thread_id}/runs", json={"assistant_id": c.assistant_id})
        assert made.status_code == 200 and made.json()["status"] == "queued"
        assert int(made.headers["openai-poll-after-ms"]) > 0
    finally:
        gate.open()
    run_id = made.json()["id"]
    settle(client, c.thread_id, run_id)
    ended = raw.get(f"/threads/{c.thread_id}/runs/{run_id}")
    assert ended.json()["status"] == "completed" and "openai-poll-after-ms" not in ended.headers


def test_a_call_cut_by_the_token_cap_ends_the_run_incomplete(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    cut = ToolCalls([("get_weather", {"city": "Par"})], finish="length")
    c = chat(client, fake_model, cut, tools=[WEATHER])
    run = c.poll(max_completion_tokens=256)
    assert run.status == "incomplete" and run.required_action is None
    assert run.incomplete_details.reason == "max_completion_tokens"  # type: ignore[union-attr]
    (step,) = client.beta.threads.runs.steps.list(run_id=run.id, thread_id=c.thread_id).data
    assert step.type == "tool_calls" and step.status == "cancelled"
    assert step.cancelled_at is not None


def test_max_prompt_tokens_keeps_the_prompt_within_the_cap(
    client: openai.OpenAI, fake_model: FakeModel
) -> None:
    c = chat(client, fake_model, Reply("short"), question="old " * 300)
    for text in ("older " * 300, "newest question"):
        client.beta.threads.messages.create(thread_id=c.thread_id, role="user", content=text)
    run = c.poll(max_prompt_tokens=256)
    assert run.status == "completed" and run.max_prompt_tokens == 256
    sent = fake_model.requests(c.model)[-1]["messages"]
    assert sent[1:] == [{"role": "user", "content": "newest question"}]


def test_create_and_run_takes_code_interpreter_files(
    client: openai.OpenAI, fake_model: FakeModel, raw: httpx.Client
) -> None:
    assistant = client.beta.assistants.create(model=fake_model.new_model(Reply("ok")))
    file = client.files.create(file=("data.csv", b"a,b\n1,2\n"), purpose="assistants")
    run = client.beta.threads.create_and_run_poll(
        assistant_id=assistant.id,
        thread={"messages": [{"role": "user", "content": "Read it."}]},
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
    )
    assert run.status == "completed"
    thread = client.beta.threads.retrieve(run.thread_id)
    assert thread.tool_resources.code_interpreter.file_ids == [file.id]  # type: ignore[union-attr]
    bad = raw.post("/threads/runs", json={
        "assistant_id": assistant.id, "thread": {"messages": [{"role": "user", "content": "x"}]},
        "tool_resources": {"code_interpreter": {"file_ids": ["file_none"]}}})  # fmt: skip
    assert bad.status_code == 400, bad.text
    assert "file_none" in bad.json()["error"]["message"]


def test_additional_messages_are_checked(
    client: openai.OpenAI, fake_model: FakeModel, raw: httpx.Client
) -> None:
    c = chat(client, fake_model)
    bad = raw.post(f"/threads/{c.thread_id}/runs", json={
        "assistant_id": c.assistant_id,
        "additional_messages": [{"role": "user", "content": ""}]})  # fmt: skip
    assert bad.status_code == 400
    assert bad.json()["error"]["param"] == "additional_messages[0].content"
    assert client.beta.threads.runs.list(thread_id=c.thread_id).data == []
    assert len(client.beta.threads.messages.list(thread_id=c.thread_id).data) == 1
