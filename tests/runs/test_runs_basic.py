"""Runs through the real dashscope SDK against the scripted model."""

from __future__ import annotations

from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.support.fake_model import FakeModel, Reply, ToolCalls


def test_non_streamed_run_waits_and_answers(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("A ragdoll cat, drawn."))
    assistant = Assistants.create(model=model, instructions="You draw.")
    thread = Threads.create()
    Messages.create(thread.id, content="Draw a cat.")
    run = Runs.create(thread.id, assistant_id=assistant.id)
    assert run.status_code == 200 and run.status in ("queued", "in_progress")
    done = Runs.wait(run.id, thread_id=thread.id)
    assert done.status == "completed", done
    answer = Messages.list(thread.id).data[0]
    assert answer.role == "assistant" and answer.content[0].text.value == "A ragdoll cat, drawn."
    sent = fake_model.requests(model)[0]["messages"]
    assert sent[0] == {"role": "system", "content": "You draw."}
    assert sent[-1] == {"role": "user", "content": "Draw a cat."}
    steps = Steps.list(run.id, thread_id=thread.id)
    assert [s.type for s in steps.data] == ["message_creation"]


def test_streamed_function_call_loop(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        ToolCalls([("big_add", {"left": 1, "right": 2})]), Reply("It is 3.")
    )
    tool = {
        "type": "function",
        "function": {
            "name": "big_add",
            "description": "add",
            "parameters": {
                "type": "object",
                "properties": {"left": {"type": "integer"}, "right": {"type": "integer"}},
            },
        },
    }
    assistant = Assistants.create(model=model, tools=[tool])
    thread = Threads.create(messages=[{"role": "user", "content": "1+2?"}])
    events = list(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    names = [e for e, _ in events]
    assert names[0] == "thread.run.created" and names[-1] == "thread.run.requires_action", names
    run = events[-1][1]
    calls = run.required_action.submit_tool_outputs.tool_calls
    assert calls[0].function.name == "big_add"
    second = list(
        Runs.submit_tool_outputs(
            thread_id=thread.id, run_id=run.id, tool_outputs=[{"output": "3"}], stream=True
        )
    )
    names2 = [e for e, _ in second]
    assert names2[-1] == "thread.run.completed", names2
    text = "".join(d.delta.content.text.value for e, d in second if e == "thread.message.delta")
    assert text == "It is 3."
