"""The cap on tool rounds (ASSISTD_MAX_TOOL_ROUNDS): a run makes at most that many model
turns with tool calls; after that the model is offered no tools, so it has to answer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from dashscope import Assistants, Runs, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import WEATHER, ok, settle
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import RunningServer

CAP = 2


@pytest.fixture(scope="module")
def capped_server(start_module_server: StartServer, fake_model: FakeModel) -> RunningServer:
    return start_module_server(
        ASSISTD_MAX_TOOL_ROUNDS=str(CAP), ASSISTD_OPENAI_BASE_URL=fake_model.base_url
    )


@pytest.fixture
def capped(capped_server: RunningServer) -> Iterator[None]:
    with sdk_on(capped_server):
        yield


def test_rounds_below_the_cap_offer_tools(capped: None, fake_model: FakeModel) -> None:
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Kyiv"})]), Reply("Cool."))
    assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "weather?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert settle(thread.id, run.id).status == "requires_action"
    ok(Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[{"output": "5C"}]))
    assert settle(thread.id, run.id).status == "completed"
    first, second = fake_model.requests(model)
    assert [t["function"]["name"] for t in first["tools"]] == ["get_weather"]
    assert [t["function"]["name"] for t in second["tools"]] == ["get_weather"]


def test_function_rounds_are_capped_across_submissions(capped: None, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        *[ToolCalls([("get_weather", {"city": f"c{i}"})]) for i in range(CAP)],
        Reply("Enough calls."),
    )
    assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "weather everywhere"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    for _ in range(CAP):
        waiting = settle(thread.id, run.id)
        assert waiting.status == "requires_action", as_json(waiting)
        ok(Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[{"output": "x"}]))
    assert settle(thread.id, run.id).status == "completed"
    requests = fake_model.requests(model)
    assert len(requests) == CAP + 1
    assert "tools" not in requests[CAP], requests[CAP].get("tools")  # the cap is spent


def test_calls_after_the_cap_do_not_keep_the_run_looping(
    capped: None, fake_model: FakeModel
) -> None:
    stubborn = [ToolCalls([("quark_search", {"query": f"q{i}"})]) for i in range(CAP + 4)]
    model = fake_model.new_model(*stubborn, Reply("Finally."))
    assistant = ok(Assistants.create(model=model, tools=[{"type": "quark_search"}]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "search"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    done = settle(thread.id, run.id)
    assert done.status in ("completed", "failed"), as_json(done)
    assert len(fake_model.requests(model)) <= CAP + 1
