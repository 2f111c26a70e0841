"""The function-calling loop, streamed and not: parallel calls in one model turn, a second
round of calls, outputs matched to calls by id or (as the vendor's guide submits them,
seed F4) in order, and the errors for outputs that do not fit."""

from __future__ import annotations

import json
from typing import Any

import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.helpers import (
    BIG_ADD,
    CLOCK,
    WEATHER,
    collect,
    delta_text,
    last,
    names,
    ok,
    settle,
    wait_done,
)
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json, assert_error

PARIS = {"city": "Paris"}
CET = {"zone": "CET"}
SUM = {"left": 87787, "right": 788988737}


def _setup(fake_model: FakeModel, *turns: Any) -> tuple[str, str, str]:
    """A fresh model scripted with `turns`, an assistant with three function tools, and a
    thread with one question. Returns (model, assistant id, thread id)."""
    model = fake_model.new_model(*turns)
    assistant = ok(Assistants.create(model=model, tools=[WEATHER, CLOCK, BIG_ADD]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Weather and time?"}]))
    return model, assistant.id, thread.id


def _calls(run: Any) -> list[Any]:
    assert run.status == "requires_action", as_json(run)
    assert run.required_action.type == "submit_tool_outputs"
    return list(run.required_action.submit_tool_outputs.tool_calls)


def _tool_messages(request: dict[str, Any]) -> dict[str, str]:
    """tool_call_id -> content of the tool results the server sent the model."""
    return {m["tool_call_id"]: m["content"] for m in request["messages"] if m["role"] == "tool"}


def _parallel_then_second_round() -> tuple[Any, ...]:
    return (
        ToolCalls([("get_weather", PARIS), ("get_time", CET)]),
        ToolCalls([("big_add", SUM)]),
        Reply("Sunny, noon, and 789076524."),
    )


def test_streamed_parallel_calls_and_a_second_round(ds: str, fake_model: FakeModel) -> None:
    model, assistant_id, thread_id = _setup(fake_model, *_parallel_then_second_round())
    leg1 = collect(Runs.create(thread_id, assistant_id=assistant_id, stream=True))
    assert names(leg1)[:3] == ["thread.run.created", "thread.run.queued", "thread.run.in_progress"]
    assert names(leg1)[3:5] == ["thread.run.step.created", "thread.run.step.in_progress"]
    assert names(leg1)[-1] == "thread.run.requires_action"
    step = leg1[3][1]
    assert step.type == "tool_calls" and step.step_details.tool_calls == []
    run = leg1[-1][1]
    weather, clock = _calls(run)
    assert [weather.function.name, clock.function.name] == ["get_weather", "get_time"]
    assert json.loads(weather.function.arguments) == PARIS
    assert json.loads(clock.function.arguments) == CET
    assert weather.id != clock.id and run.expires_at is not None

    # The step deltas carry the calls' fragments; put together they are the arguments.
    fragments: dict[int, str] = {}
    for name, data in leg1:
        if name == "thread.run.step.delta":
            assert data.id == step.id
            for call in data.delta.step_details.tool_calls:
                fragments[call.index] = fragments.get(call.index, "") + call.function.arguments
    assert [json.loads(fragments[i]) for i in (0, 1)] == [PARIS, CET]

    # Outputs without tool_call_id (seed F4) are matched to the calls in order.
    leg2 = collect(
        Runs.submit_tool_outputs(
            run.id,
            thread_id=thread_id,
            tool_outputs=[{"output": "sunny"}, {"output": "12:00"}],
            stream=True,
        )
    )
    assert "thread.run.created" not in names(leg2)
    assert names(leg2)[:3] == [
        "thread.run.step.completed", "thread.run.queued", "thread.run.in_progress",
    ]  # fmt: skip
    finished = leg2[0][1]
    assert finished.id == step.id and finished.status == "completed"
    outputs = {c.id: c.function.output for c in finished.step_details.tool_calls}
    assert outputs == {weather.id: "sunny", clock.id: "12:00"}
    assert leg2[-1][0] == "thread.run.requires_action" and leg2[-1][1].id == run.id
    [adder] = _calls(leg2[-1][1])
    assert adder.function.name == "big_add" and json.loads(adder.function.arguments) == SUM
    second_request = fake_model.requests(model)[1]
    assert _tool_messages(second_request) == {weather.id: "sunny", clock.id: "12:00"}
    assistant_turn = next(m for m in second_request["messages"] if m.get("tool_calls"))
    assert [c["id"] for c in assistant_turn["tool_calls"]] == [weather.id, clock.id]

    leg3 = collect(
        Runs.submit_tool_outputs(
            run.id,
            thread_id=thread_id,
            tool_outputs=[{"tool_call_id": adder.id, "output": "789076524"}],
            stream=True,
        )
    )
    assert names(leg3)[0] == "thread.run.step.completed" and "thread.run.created" not in names(leg3)
    assert names(leg3)[-1] == "thread.run.completed"
    assert delta_text(leg3) == "Sunny, noon, and 789076524."
    assert last(leg3, "thread.message.completed").content[0].text.value == delta_text(leg3)
    third_request = fake_model.requests(model)[2]
    assert _tool_messages(third_request) == {
        weather.id: "sunny", clock.id: "12:00", adder.id: "789076524",
    }  # fmt: skip

    steps = ok(Steps.list(run.id, thread_id=thread_id, order="asc")).data
    assert [(s.type, s.status) for s in steps] == [
        ("tool_calls", "completed"), ("tool_calls", "completed"), ("message_creation", "completed"),
    ]  # fmt: skip
    assert ok(Runs.retrieve(run.id, thread_id=thread_id)).status == "completed"


def test_non_streamed_loop_with_outputs_given_by_id_in_another_order(
    ds: str, fake_model: FakeModel
) -> None:
    model, assistant_id, thread_id = _setup(fake_model, *_parallel_then_second_round())
    run = ok(Runs.create(thread_id, assistant_id=assistant_id))
    weather, clock = _calls(wait_done(thread_id, run.id))
    submitted = ok(
        Runs.submit_tool_outputs(
            run.id,
            thread_id=thread_id,
            tool_outputs=[
                {"tool_call_id": clock.id, "output": "12:00"},
                {"tool_call_id": weather.id, "output": "sunny"},
            ],
        )
    )
    assert submitted.id == run.id and submitted.status in ("queued", "in_progress")
    assert submitted.required_action is None
    [adder] = _calls(wait_done(thread_id, run.id))
    assert _tool_messages(fake_model.requests(model)[1]) == {weather.id: "sunny", clock.id: "12:00"}
    # A JSON value that is not a string is passed on as its JSON text.
    ok(
        Runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"tool_call_id": adder.id, "output": 7}]
        )
    )
    done = wait_done(thread_id, run.id)
    assert done.status == "completed", as_json(done)
    assert _tool_messages(fake_model.requests(model)[2])[adder.id] == "7"
    answer = ok(Messages.list(thread_id)).data[0]
    assert answer.content[0].text.value == "Sunny, noon, and 789076524."


@pytest.mark.parametrize(
    ("outputs", "words"),
    [
        (
            lambda w, c: [{"tool_call_id": "call_nope", "output": "x"}, {"output": "y"}],
            ["call_nope"],
        ),
        (lambda w, c: [{"tool_call_id": w, "output": "x"}], ["missing", "{c}"]),
        (
            lambda w, c: [{"tool_call_id": w, "output": "x"}, {"tool_call_id": w, "output": "y"}],
            ["{w}"],
        ),
        (lambda w, c: [{"output": "x"}, {"output": "y"}, {"output": "z"}], ["3"]),
        (lambda w, c: [{"output": "x"}], ["{c}"]),
    ],
    ids=["unknown-id", "missing-id", "duplicate-id", "too-many", "too-few"],
)
def test_outputs_that_do_not_fit_are_400(
    ds: str, fake_model: FakeModel, outputs: Any, words: list[str]
) -> None:
    _, assistant_id, thread_id = _setup(
        fake_model, ToolCalls([("get_weather", PARIS), ("get_time", CET)]), Reply("ok")
    )
    run = ok(Runs.create(thread_id, assistant_id=assistant_id))
    weather, clock = _calls(settle(thread_id, run.id))
    bad = Runs.submit_tool_outputs(
        run.id, thread_id=thread_id, tool_outputs=outputs(weather.id, clock.id)
    )
    named = [w.format(w=weather.id, c=clock.id) for w in words]
    assert_error(bad, 400, "InvalidParameter", "tool_outputs", *named)
    # Nothing changed: the run still waits for the same calls, and good outputs work.
    still = ok(Runs.retrieve(run.id, thread_id=thread_id))
    assert [c.id for c in _calls(still)] == [weather.id, clock.id]
    pending = ok(Steps.list(run.id, thread_id=thread_id)).data[0]
    assert pending.status == "in_progress"
    assert [c.function.output for c in pending.step_details.tool_calls] == [None, None]
    ok(
        Runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"output": "a"}, {"output": "b"}]
        )
    )
    assert settle(thread_id, run.id).status == "completed"


def test_streamed_error_for_bad_outputs_is_one_plain_item(ds: str, fake_model: FakeModel) -> None:
    _, assistant_id, thread_id = _setup(fake_model, ToolCalls([("get_weather", PARIS)]))
    run = ok(Runs.create(thread_id, assistant_id=assistant_id))
    _calls(settle(thread_id, run.id))
    items = collect(
        Runs.submit_tool_outputs(
            run.id,
            thread_id=thread_id,
            tool_outputs=[{"tool_call_id": "call_nope", "output": "x"}],
            stream=True,
        )
    )
    assert len(items) == 1 and items[0][0] is None, items
    error = items[0][1]
    assert error["status_code"] == 400 and error["code"] == "InvalidParameter"
    assert "call_nope" in error["message"]


def test_submit_to_a_run_not_waiting_is_409(ds: str, fake_model: FakeModel) -> None:
    _, assistant_id, thread_id = _setup(fake_model, Reply("no tools needed"))
    run = ok(Runs.create(thread_id, assistant_id=assistant_id))
    assert settle(thread_id, run.id).status == "completed"
    late = Runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=[{"output": "x"}])
    assert_error(late, 409, "Conflict", run.id, "completed")
    streamed = collect(
        Runs.submit_tool_outputs(
            run.id, thread_id=thread_id, tool_outputs=[{"output": "x"}], stream=True
        )
    )
    assert len(streamed) == 1 and streamed[0][0] is None
    assert streamed[0][1]["status_code"] == 409 and streamed[0][1]["code"] == "Conflict"
    missing = Runs.submit_tool_outputs(
        "run_nope", thread_id=thread_id, tool_outputs=[{"output": "x"}]
    )
    assert_error(missing, 404, "NotFound", "run_nope")


def test_a_call_of_a_function_the_run_does_not_offer(ds: str, fake_model: FakeModel) -> None:
    """A model that invents a function name gets an output saying so; the client is not
    asked to run it, and the run goes on to an answer."""
    model, assistant_id, thread_id = _setup(
        fake_model, ToolCalls([("launch_rockets", {"count": 3})]), Reply("I cannot do that.")
    )
    run = ok(Runs.create(thread_id, assistant_id=assistant_id))
    done = settle(thread_id, run.id)
    assert done.status == "completed", as_json(done)
    [step, _] = ok(Steps.list(run.id, thread_id=thread_id, order="asc")).data
    [call] = step.step_details.tool_calls
    assert call.function.name == "launch_rockets"
    assert "launch_rockets" in call.function.output
    assert _tool_messages(fake_model.requests(model)[1]) == {call.id: call.function.output}
