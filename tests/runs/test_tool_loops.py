"""A model that repeats its last tool call exactly is not run round after round up to the
cap: the repeat is answered with a note instead of being run (or sent to the client), and
the model is asked for its answer with no tools offered. For a model with prompted tool
calls (the embedded one) that last turn reads as plain conversation: what was called and
what came back, not tool-role messages it cannot read."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import WEATHER, ok, settle
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import RunningServer
from tests.tools.helpers import output_of, raw_client

PROMPTED = "small-model"  # routed to the fake model with prompted tool calls
CALCULATOR = [{"type": "calculator"}]


@pytest.fixture(scope="module")
def routed_server(
    start_module_server: StartServer, fake_model: FakeModel
) -> tuple[RunningServer, str]:
    """Every name goes to the fake model natively, except PROMPTED, which goes to it with
    prompted tool calls under a fresh upstream name: (server, that upstream name)."""
    upstream = fake_model.new_model()
    routes = {
        "*": {"backend": "openai_compat", "base_url": fake_model.base_url},
        PROMPTED: {
            "backend": "openai_compat",
            "base_url": fake_model.base_url,
            "tool_calls": "prompted",
            "upstream_model": upstream,
        },
    }
    return start_module_server(ASSISTD_MODELS=json.dumps(routes)), upstream


@pytest.fixture
def routed(routed_server: tuple[RunningServer, str]) -> Iterator[tuple[RunningServer, str]]:
    with sdk_on(routed_server[0]):
        yield routed_server


def _run(model: str, tools: list[dict[str, Any]], question: str) -> tuple[str, str]:
    """A new assistant and thread, and a run started on them: (thread id, run id)."""
    assistant = ok(Assistants.create(model=model, tools=tools))
    thread = ok(Threads.create(messages=[{"role": "user", "content": question}]))
    return thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id


def _outputs(server: RunningServer, thread_id: str, run_id: str) -> list[str]:
    with raw_client(server) as client:
        response = client.get(f"/threads/{thread_id}/runs/{run_id}/steps?order=asc")
    assert response.status_code == 200, response.text
    return [
        output_of(call)
        for step in response.json()["data"]
        if step["type"] == "tool_calls"
        for call in step["step_details"]["tool_calls"]
    ]


def _reply(thread_id: str) -> str:
    latest = ok(Messages.list(thread_id)).data[0]
    assert latest.role == "assistant"
    return str(latest.content[0].text.value)


def test_a_repeated_builtin_call_is_not_run_again(
    routed: tuple[RunningServer, str], fake_model: FakeModel
) -> None:
    call = ToolCalls([("calculator", {"expression": "6 * 7"})])
    model = fake_model.new_model(call, call, Reply("It is 42."))
    thread_id, run_id = _run(model, CALCULATOR, "What is 6 times 7?")
    done = settle(thread_id, run_id)
    assert done.status == "completed", as_json(done)

    first, repeat = _outputs(routed[0], thread_id, run_id)
    assert first == "42"
    assert repeat.startswith("Not run again") and repeat.endswith("Its result was: 42"), repeat
    requests = fake_model.requests(model)
    assert len(requests) == 3
    assert [bool(r.get("tools")) for r in requests] == [True, True, False]
    assert _reply(thread_id) == "It is 42."


def test_a_model_that_calls_again_when_told_to_answer_fails_saying_so(
    routed: tuple[RunningServer, str], fake_model: FakeModel
) -> None:
    """After a repeat the model is offered no tools; calling one anyway ends the run with a
    reason about that, not about a round cap the run never reached."""
    call = ToolCalls([("calculator", {"expression": "6 * 7"})])
    model = fake_model.new_model(call, call, call)
    thread_id, run_id = _run(model, CALCULATOR, "What is 6 times 7?")
    done = settle(thread_id, run_id)
    assert done.status == "failed", as_json(done)
    assert done.last_error["code"] == "max_tool_rounds"
    assert "asked to answer without them" in done.last_error["message"], as_json(done)


def test_a_round_with_a_new_call_goes_on(
    routed: tuple[RunningServer, str], fake_model: FakeModel
) -> None:
    """Only an exact repeat is held back: other arguments, or a new call beside the
    repeat, still run, and the model keeps its tools."""
    model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": "6 * 7"})]),
        ToolCalls([("calculator", {"expression": "6 * 7"}), ("calculator", {"expression": "2"})]),
        ToolCalls([("calculator", {"expression": "2"})]),
        Reply("Done."),
    )
    thread_id, run_id = _run(model, CALCULATOR, "Compute.")
    assert settle(thread_id, run_id).status == "completed"
    outputs = _outputs(routed[0], thread_id, run_id)
    assert outputs[0] == "42" and outputs[1].startswith("Not run again") and outputs[2] == "2"
    assert outputs[3].startswith("Not run again")  # the third round repeats the second's
    assert [bool(r.get("tools")) for r in fake_model.requests(model)] == [True, True, True, False]


def test_a_repeated_function_call_is_not_sent_to_the_client_again(
    routed: tuple[RunningServer, str], fake_model: FakeModel
) -> None:
    call = ToolCalls([("get_weather", {"city": "Paris"})])
    model = fake_model.new_model(call, call, Reply("Sunny in Paris."))
    thread_id, run_id = _run(model, [WEATHER], "Weather in Paris?")
    waiting = settle(thread_id, run_id)
    assert waiting.status == "requires_action", as_json(waiting)
    outputs = [{"output": "Sunny, 22 C"}]
    ok(Runs.submit_tool_outputs(run_id, thread_id=thread_id, tool_outputs=outputs))
    done = settle(thread_id, run_id)
    assert done.status == "completed", as_json(done)  # not requires_action again

    first, repeat = _outputs(routed[0], thread_id, run_id)
    assert first == "Sunny, 22 C"
    assert repeat.startswith("Not run again") and repeat.endswith("Sunny, 22 C"), repeat
    assert "tools" not in fake_model.requests(model)[-1]
    assert _reply(thread_id) == "Sunny in Paris."


def _prompted_call(name: str, **arguments: str) -> Reply:
    """What a prompted model answers to call a tool: one JSON object, as text."""
    return Reply(json.dumps({"type": "tool_call", "name": name, "arguments": arguments}))


def test_the_last_turn_of_a_prompted_model_reads_as_plain_conversation(
    routed: tuple[RunningServer, str], fake_model: FakeModel
) -> None:
    upstream = routed[1]
    call = _prompted_call("calculator", expression="6 * 7")
    fake_model.script(upstream, call, call, Reply("Six times seven is 42."))
    before = len(fake_model.requests(upstream))
    thread_id, run_id = _run(PROMPTED, CALCULATOR, "What is 6 times 7?")
    done = settle(thread_id, run_id)
    assert done.status == "completed", as_json(done)
    assert _reply(thread_id) == "Six times seven is 42."

    requests = fake_model.requests(upstream)[before:]
    assert len(requests) == 3
    assert [bool(r.get("response_format")) for r in requests] == [True, True, False]
    last = requests[-1]
    assert "tools" not in last
    assert last["messages"] == [
        {"role": "user", "content": "What is 6 times 7?"},
        {
            "role": "assistant",
            "content": 'I called the tool calculator with {"expression": "6 * 7"}.',
        },
        {"role": "user", "content": "The tool calculator returned: 42"},
    ]  # the repeated call is told once, and no message has a tool role
