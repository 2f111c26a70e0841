"""Runs and steps as objects: a non-streamed run waited for with Runs.wait, then read back
with Runs.retrieve/list/update, Messages.list and Steps.list/retrieve."""

from __future__ import annotations

from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.helpers import BIG_ADD, assert_full_usage, ok, wait_done
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json, assert_error


def test_non_streamed_run_answers_and_reads_back(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Ragdolls are calm cats."))
    assistant = ok(Assistants.create(model=model, name="cats", instructions="Talk about cats."))
    thread = ok(Threads.create())
    question = ok(Messages.create(thread.id, content="Tell me about ragdolls."))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert run.object == "thread.run"
    assert run.status in ("queued", "in_progress")
    assert (run.thread_id, run.assistant_id, run.model) == (thread.id, assistant.id, model)
    assert run.instructions == "Talk about cats."
    assert run.tools == [] and run.required_action is None and run.last_error is None

    done = wait_done(thread.id, run.id)
    assert done.status == "completed", as_json(done)
    assert done.completed_at is not None and done.started_at is not None
    assert done.completed_at >= done.started_at >= done.created_at
    assert done.failed_at is None and done.cancelled_at is None and done.expires_at is None
    assert done.usage == {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}

    listed = ok(Messages.list(thread.id))
    assert [m.id for m in listed.data][1:] == [question.id]  # newest first
    answer = listed.data[0]
    assert answer.role == "assistant"
    assert (answer.run_id, answer.assistant_id) == (run.id, assistant.id)
    assert answer.content[0].text.value == "Ragdolls are calm cats."
    assert answer.status == "completed"
    assert as_json(listed)["data"][0]["content"][0]["text"]["value"] == "Ragdolls are calm cats."


def test_retrieve_list_and_update_runs(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("one"), Reply("two"))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "count"}]))
    first = ok(Runs.create(thread.id, assistant_id=assistant.id, metadata={"n": "1"}))
    wait_done(thread.id, first.id)
    ok(Messages.create(thread.id, content="again"))
    second = ok(Runs.create(thread.id, assistant_id=assistant.id))
    wait_done(thread.id, second.id)

    got = ok(Runs.retrieve(first.id, thread_id=thread.id))
    assert (got.id, got.status, got.metadata) == (first.id, "completed", {"n": "1"})
    assert [r.id for r in ok(Runs.list(thread.id)).data] == [second.id, first.id]
    assert [r.id for r in ok(Runs.list(thread.id, order="asc")).data] == [first.id, second.id]
    page = ok(Runs.list(thread.id, limit=1))
    assert [r.id for r in page.data] == [second.id] and page.has_more is True
    rest = ok(Runs.list(thread.id, limit=1, after=page.last_id))
    assert [r.id for r in rest.data] == [first.id] and rest.has_more is False

    updated = ok(Runs.update(first.id, thread_id=thread.id, metadata={"n": "1", "seen": "yes"}))
    assert updated.metadata == {"n": "1", "seen": "yes"}
    assert updated.status == "completed"
    # The SDK sends {"metadata": null} when metadata is omitted: nothing changes.
    unchanged = ok(Runs.update(first.id, thread_id=thread.id))
    assert unchanged.metadata == {"n": "1", "seen": "yes"}
    again = ok(Runs.retrieve(first.id, thread_id=thread.id))
    assert again.metadata == {"n": "1", "seen": "yes"}

    assert_error(Runs.retrieve("run_nope", thread_id=thread.id), 404, "NotFound", "run_nope")
    assert_error(Runs.list("thread_nope"), 404, "NotFound", "thread_nope")


def test_steps_list_and_retrieve(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        ToolCalls([("big_add", {"left": 2, "right": 3})]), Reply("The sum is 5.")
    )
    assistant = ok(Assistants.create(model=model, tools=[BIG_ADD]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "2+3?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    waiting = wait_done(thread.id, run.id)
    assert waiting.status == "requires_action", as_json(waiting)
    [call] = waiting.required_action.submit_tool_outputs.tool_calls
    pending = ok(Steps.list(run.id, thread_id=thread.id)).data
    assert [(s.type, s.status) for s in pending] == [("tool_calls", "in_progress")]
    assert pending[0].step_details.tool_calls[0].function.output is None
    ok(Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[{"output": "5"}]))
    done = wait_done(thread.id, run.id)
    assert done.status == "completed", as_json(done)

    steps = ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert ok(Steps.list(run.id, thread_id=thread.id)).data[0].id == steps[1].id  # newest first
    tool_step, message_step = steps
    for step in steps:
        assert step.object == "thread.run.step" and step.status == "completed"
        assert (step.run_id, step.thread_id, step.assistant_id) == (run.id, thread.id, assistant.id)
        assert step.completed_at is not None and step.last_error is None
        assert_full_usage(step.usage)

    assert tool_step.step_details.type == "tool_calls"
    [recorded] = tool_step.step_details.tool_calls
    assert (recorded.id, recorded.type) == (call.id, "function")
    assert recorded.function.name == "big_add"
    assert recorded.function.arguments == call.function.arguments
    assert recorded.function.output == "5"
    assert message_step.step_details.type == "message_creation"
    answer = ok(Messages.list(thread.id)).data[0]
    assert message_step.step_details.message_creation.message_id == answer.id
    assert answer.content[0].text.value == "The sum is 5."

    # The run's usage is the sum of its steps'.
    assert done.usage["total_tokens"] == sum(s.usage.total_tokens for s in steps)
    assert message_step.usage.completion_tokens == 4  # one fake token per word

    for step in steps:
        got = ok(Steps.retrieve(step.id, thread_id=thread.id, run_id=run.id))
        assert _without_request_id(as_json(got)) == _without_request_id(as_json(step))
    assert_error(Steps.retrieve("step_nope", thread_id=thread.id, run_id=run.id), 404, "NotFound")
    assert_error(Steps.list("run_nope", thread_id=thread.id), 404, "NotFound", "run_nope")


def _without_request_id(obj: dict[str, object]) -> dict[str, object]:
    return {k: v for k, v in obj.items() if k not in ("request_id", "status_code")}


def test_the_model_sees_the_thread_in_order_with_roles(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("third answer"))
    assistant = ok(Assistants.create(model=model, instructions="Be kind."))
    thread = ok(
        Threads.create(
            messages=[
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "first answer"},
            ]
        )
    )
    ok(Messages.create(thread.id, content="second question"))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert wait_done(thread.id, run.id).status == "completed"
    [request] = fake_model.requests(model)
    assert request["messages"] == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "first answer"},
        {"role": "user", "content": "second question"},
    ]
    assert request["stream"] is True
    # The next run sees this run's answer as an assistant turn.
    fake_model.script(model, Reply("fourth"))
    ok(Messages.create(thread.id, content="and then?"))
    run2 = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert wait_done(thread.id, run2.id).status == "completed"
    assert fake_model.requests(model)[1]["messages"][-2:] == [
        {"role": "assistant", "content": "third answer"},
        {"role": "user", "content": "and then?"},
    ]


def test_steps_pagination(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(
        ToolCalls([("big_add", {"left": 1, "right": 1})]),
        ToolCalls([("big_add", {"left": 2, "right": 2})]),
        Reply("2 and 4"),
    )
    assistant = ok(Assistants.create(model=model, tools=[BIG_ADD]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "sums"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    for output in ("2", "4"):
        assert wait_done(thread.id, run.id).status == "requires_action"
        ok(Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[{"output": output}]))
    assert wait_done(thread.id, run.id).status == "completed"
    everything = [s.id for s in ok(Steps.list(run.id, thread_id=thread.id, order="asc")).data]
    assert len(everything) == 3
    seen: list[str] = []
    after = None
    while True:
        page = ok(Steps.list(run.id, thread_id=thread.id, order="asc", limit=1, after=after))
        seen += [s.id for s in page.data]
        if not page.has_more:
            break
        after = page.last_id
    assert seen == everything
