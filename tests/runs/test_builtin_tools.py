"""Built-in tools this server does not run yet (search, images, ...) are accepted on
assistants; when the model calls one, the step records the call with an output saying it
is not configured here, and the run goes on to an answer."""

from __future__ import annotations

import json

from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.helpers import WEATHER, collect, delta_text, last, names, ok, settle
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json

SEARCH = {"type": "quark_search", "description": "Searches the web."}


def test_unconfigured_builtin_is_answered_and_the_run_goes_on(
    ds: str, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(
        ToolCalls([("quark_search", {"query": "ragdoll cats"})]), Reply("Answered without it.")
    )
    assistant = ok(Assistants.create(model=model, tools=[SEARCH]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Search ragdolls."}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.completed", names(events)
    assert "thread.run.requires_action" not in names(events)

    # Seed F3 reads the first step delta's call type by subscript.
    first_delta = next(data for name, data in events if name == "thread.run.step.delta")
    assert first_delta.delta.step_details.tool_calls[0]["type"] == "quark_search"
    step = last(events, "thread.run.step.completed")  # the message step completes last
    tool_step = next(
        data for name, data in events
        if name == "thread.run.step.completed" and data.type == "tool_calls"
    )  # fmt: skip
    assert step.type == "message_creation"
    [call] = tool_step.step_details.tool_calls
    assert call["type"] == "quark_search"
    assert json.loads(call["quark_search"]["input"]) == {"query": "ragdoll cats"}
    output = call["quark_search"]["output"]
    assert "quark_search" in output and "not configured" in output
    assert delta_text(events) == "Answered without it."

    # The same, read back; and the model was told, and not offered the tool again.
    steps = ok(Steps.list(events[1][1].id, thread_id=thread.id, order="asc")).data
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"), ("message_creation", "completed"),
    ]  # fmt: skip
    assert steps[0].step_details.tool_calls == [call]
    first, second = fake_model.requests(model)
    assert [t["function"]["name"] for t in first["tools"]] == ["quark_search"]
    tool_results = [m for m in second["messages"] if m["role"] == "tool"]
    assert tool_results == [{"role": "tool", "tool_call_id": call["id"], "content": output}]
    assert "quark_search" not in [t["function"]["name"] for t in second.get("tools") or []]
    assert ok(Messages.list(thread.id)).data[0].content[0].text.value == "Answered without it."


def test_builtin_and_function_calls_in_one_turn(ds: str, fake_model: FakeModel) -> None:
    """The built-in is answered by the server; only the function goes to the client."""
    model = fake_model.new_model(
        ToolCalls([("quark_search", {"query": "oslo"}), ("get_weather", {"city": "Oslo"})]),
        Reply("Cold."),
    )
    assistant = ok(Assistants.create(model=model, tools=[SEARCH, WEATHER]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Oslo?"}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.requires_action"
    deltas = [data for name, data in events if name == "thread.run.step.delta"]
    types = {d.delta.step_details.tool_calls[0]["type"] for d in deltas}
    assert types == {"quark_search", "function"}  # subscript works on both kinds
    run = events[-1][1]
    [call] = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    rest = collect(
        Runs.submit_tool_outputs(
            run.id, thread_id=thread.id, tool_outputs=[{"output": "-3C"}], stream=True
        )
    )
    assert names(rest)[-1] == "thread.run.completed" and delta_text(rest) == "Cold."
    step = ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data[0]
    search, weather = step.step_details.tool_calls
    assert "not configured" in search["quark_search"]["output"]
    assert weather.function.output == "-3C"


def test_non_streamed_run_with_an_unconfigured_builtin(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        ToolCalls([("text_to_image", {"prompt": "a cat"})]), Reply("I cannot draw here.")
    )
    assistant = ok(Assistants.create(model=model, tools=[{"type": "text_to_image"}]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Draw a cat."}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    done = settle(thread.id, run.id)
    assert done.status == "completed", as_json(done)
    assert ok(Messages.list(thread.id)).data[0].content[0].text.value == "I cannot draw here."
