"""The server's tool calls of one round run at the same time, each under a time limit
(the server's `tool_call_timeout_s`, or a tool's own longer one), and are abandoned when
their run is cancelled. The tools are a third-party package's, registered by entry point;
the provider they call is a real, slow HTTP server that records what was in flight."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from dashscope import Assistants, Runs, Steps, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import ok, settle, wait_done, wait_for
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import RunningServer
from tests.support.slow_server import SlowServer, slow_server

PLUGIN = Path(__file__).parents[1] / "support" / "tool_plugin"
TOOLS = [{"type": "slow_fetch"}, {"type": "patient_fetch"}]


@pytest.fixture(scope="module")
def plugin_server(start_module_server: StartServer, fake_model: FakeModel) -> RunningServer:
    return start_module_server(
        PYTHONPATH=str(PLUGIN),
        ASSISTD_TOOL_CALL_TIMEOUT_S="3",
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
    )


@pytest.fixture
def slow() -> Iterator[SlowServer]:
    with slow_server() as server:
        yield server


def _start(fake_model: FakeModel, *turns: ToolCalls | Reply) -> tuple[str, str, str]:
    """A run of a new assistant with the plugin's tools: (model, thread id, run id)."""
    model = fake_model.new_model(*turns)
    assistant = ok(Assistants.create(model=model, tools=TOOLS))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "Fetch them."}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    return model, thread.id, run.id


def _outputs(thread_id: str, run_id: str) -> dict[str, str | None]:
    steps = ok(Steps.list(run_id, thread_id=thread_id, order="asc")).data
    return {
        call["id"]: call[call["type"]]["output"]
        for step in steps if step.type == "tool_calls"
        for call in step.step_details.tool_calls
    }  # fmt: skip


def test_the_calls_of_one_round_run_at_once(
    plugin_server: RunningServer, fake_model: FakeModel, slow: SlowServer
) -> None:
    calls = [("slow_fetch", {"url": slow.url(name, 1)}) for name in "abc"]
    with sdk_on(plugin_server):
        _, thread_id, run_id = _start(fake_model, ToolCalls(calls), Reply("Fetched."))
        done = settle(thread_id, run_id)
        assert done.status == "completed", as_json(done)
        outputs = [json.loads(str(o)) for o in _outputs(thread_id, run_id).values()]
    assert sorted(o["id"] for o in outputs) == ["a", "b", "c"]
    # All three were in flight together: each started before any of them ended.
    assert slow.log.most_in_flight == 3
    assert max(o["started"] for o in outputs) < min(o["ended"] for o in outputs)


def test_a_call_that_overruns_its_limit_is_stopped_and_the_model_told(
    plugin_server: RunningServer, fake_model: FakeModel, slow: SlowServer
) -> None:
    calls = [
        ("slow_fetch", {"url": slow.url("late", 30)}),
        ("patient_fetch", {"url": slow.url("patient", 4)}),  # over 3 s, within its own 30 s
    ]
    with sdk_on(plugin_server):
        model, thread_id, run_id = _start(fake_model, ToolCalls(calls), Reply("One came."))
        done = settle(thread_id, run_id)
        assert done.status == "completed", as_json(done)
        late, patient = _outputs(thread_id, run_id).values()
    assert late is not None and "did not answer within 3 s" in late
    assert json.loads(str(patient))["id"] == "patient"
    told = [m["content"] for m in fake_model.requests(model)[-1]["messages"] if m["role"] == "tool"]
    assert told == [late, patient]
    slow.wait_abandoned(1)
    assert slow.log.abandoned == ["late"] and slow.log.answered == ["patient"]


def test_cancelling_a_run_abandons_its_tool_calls(
    plugin_server: RunningServer, fake_model: FakeModel, slow: SlowServer
) -> None:
    calls = [("patient_fetch", {"url": slow.url(name, 25)}) for name in ("x", "y")]
    with sdk_on(plugin_server):
        _, thread_id, run_id = _start(fake_model, ToolCalls(calls), Reply("never said"))
        slow.wait_started(2)
        wait_for(thread_id, run_id, "in_progress")
        ok(Runs.cancel(run_id, thread_id=thread_id))
        done = wait_done(thread_id, run_id)
        assert done.status == "cancelled", as_json(done)
        slow.wait_abandoned(2)
        [step] = ok(Steps.list(run_id, thread_id=thread_id)).data
        assert step.type == "tool_calls" and step.status == "cancelled"
        assert list(_outputs(thread_id, run_id).values()) == [None, None]
    assert sorted(slow.log.abandoned) == ["x", "y"] and slow.log.answered == []
