"""Argument validation round trip: arguments that break a tool's schema become a tool
output the model corrects itself from; the run neither fails nor hands the client a call
it cannot carry out."""

from __future__ import annotations

from typing import Any

from dashscope import Runs

from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer
from tests.tools.helpers import CODE, arguments, converse, new_conversation, ok, settle

BIG_ADD = {
    "type": "function",
    "function": {
        "name": "big_add",
        "description": "Adds two integers.",
        "parameters": {
            "type": "object",
            "properties": {"left": {"type": "integer"}, "right": {"type": "integer"}},
            "required": ["left", "right"],
        },
    },
}


def test_builtin_called_wrongly_then_rightly(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    bad_calls: list[tuple[str, Any]] = [
        ("calculator", {"expr": 1}),  # wrong name, and no `expression`
        ("calculator", {"expression": 12}),  # wrong type
        ("calculator", ["1 + 1"]),  # not an object at all
        ("code_interpreter", {"source": "print(1)"}),
    ]
    conversation, run_id = converse(
        server,
        fake_model,
        ToolCalls(bad_calls),
        ToolCalls([("calculator", {"expression": "6 * 7"})]),
        Reply("6 times 7 is 42."),
        tools=[{"type": "calculator"}, *CODE],
    )
    missing, wrong_type, not_object, code_missing, right = conversation.outputs(run_id)
    assert "Invalid arguments" in missing and "'expression' is a required property" in missing
    assert "Invalid arguments at 'expression'" in wrong_type
    assert "12 is not of type 'string'" in wrong_type
    assert "must be a JSON object" in not_object
    assert "'code' is a required property" in code_missing
    assert right == "42"
    # The model was told each problem in the tool messages of its next request.
    assert conversation.told_model() == [missing, wrong_type, not_object, code_missing, right]
    requests = fake_model.requests(conversation.model)
    assert len(requests) == 3
    reply = conversation.reply(run_id)
    assert reply["content"][-1]["text"]["value"] == "6 times 7 is 42."


def test_function_arguments_that_break_the_schema_are_not_handed_to_the_client(
    ds: str, server: RunningServer, fake_model: FakeModel
) -> None:
    conversation = new_conversation(
        server,
        fake_model,
        ToolCalls([("big_add", {"left": "one", "right": 2})]),
        ToolCalls([("big_add", {"left": 1, "right": 2})]),
        Reply("1 + 2 = 3."),
        tools=[BIG_ADD],
    )
    run = conversation.settled_run("Add 1 and 2.")
    assert run.status == "requires_action", run
    # Only the corrected call reaches the client.
    [pending] = run.required_action.submit_tool_outputs.tool_calls
    assert pending.function.name == "big_add"
    assert pending.function.arguments == '{"left": 1, "right": 2}'
    calls = conversation.tool_calls(run.id)
    assert len(calls) == 2
    first, second = calls
    assert arguments(first) == {"left": "one", "right": 2}
    assert "Invalid arguments at 'left'" in first["function"]["output"]
    assert "'one' is not of type 'integer'" in first["function"]["output"]
    assert second["id"] == pending.id and second["function"]["output"] is None

    ok(
        Runs.submit_tool_outputs(
            run.id,
            thread_id=conversation.thread_id,
            tool_outputs=[{"tool_call_id": pending.id, "output": "3"}],
        )
    )
    ended = settle(conversation.thread_id, run.id)
    assert ended.status == "completed"
    told = conversation.told_model()
    assert told == [first["function"]["output"], "3"]
