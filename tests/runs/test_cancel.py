"""Cancelling runs: while the model is thinking, while it is writing, while the run waits
for tool outputs, and (refused) once the run is over."""

from __future__ import annotations

from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import WEATHER, collect, names, ok, settle, wait_done, wait_for
from tests.support.fake_model import FakeModel, Hang, Reply, ToolCalls
from tests.support.sdk import as_json, assert_error


def _thread_with_question() -> str:
    return str(ok(Threads.create(messages=[{"role": "user", "content": "Take your time."}])).id)


def test_cancel_while_the_model_is_silent(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Hang(60))
    assistant = ok(Assistants.create(model=model))
    thread_id = _thread_with_question()
    run = ok(Runs.create(thread_id, assistant_id=assistant.id))
    wait_for(thread_id, run.id, "in_progress")
    # In progress is not yet asked: cancelled before its request, the run would leave the
    # Hang scripted, and the next run below would get it instead of its quick reply.
    fake_model.wait_asked(model)
    cancelled = ok(Runs.cancel(run.id, thread_id=thread_id))
    assert cancelled.id == run.id and cancelled.status in ("cancelling", "cancelled")
    done = wait_done(thread_id, run.id)
    assert done.status == "cancelled", as_json(done)
    assert done.cancelled_at is not None and done.completed_at is None
    assert done.last_error is None
    # Nothing was written, and the thread takes a new run at once.
    assert [m.role for m in ok(Messages.list(thread_id)).data] == ["user"]
    assert ok(Steps.list(run.id, thread_id=thread_id)).data == []
    fake_model.script(model, Reply("now quick"))
    again = ok(Runs.create(thread_id, assistant_id=assistant.id))
    assert settle(thread_id, again.id).status == "completed"


def test_cancel_while_streaming_text(ds: str, fake_model: FakeModel) -> None:
    words = " ".join(f"w{i}" for i in range(200))
    model = fake_model.new_model(Reply(words, tokens_per_s=20))
    assistant = ok(Assistants.create(model=model))
    thread_id = _thread_with_question()
    stream = iter(Runs.create(thread_id, assistant_id=assistant.id, stream=True))
    seen = []
    run_id = ""
    for name, data in stream:
        seen.append((name, data))
        run_id = run_id or data.id
        if name == "thread.message.delta":
            ok(Runs.cancel(run_id, thread_id=thread_id))
            break
    seen.extend(collect(stream))  # the same stream goes on to the end of the run
    assert names(seen)[-1] == "thread.run.cancelled", names(seen)
    assert "thread.message.incomplete" in names(seen)
    assert "thread.run.completed" not in names(seen)
    assert "thread.run.step.cancelled" in names(seen)
    done = wait_done(thread_id, run_id)
    assert done.status == "cancelled"
    message = ok(Messages.list(thread_id)).data[0]
    assert message.role == "assistant" and message.status == "incomplete"
    partial = message.content[0].text.value
    assert partial and words.startswith(partial) and partial != words
    [step] = ok(Steps.list(run_id, thread_id=thread_id)).data
    assert step.status == "cancelled" and step.cancelled_at is not None


def test_cancel_while_waiting_for_tool_outputs(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Oslo"})]))
    assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
    thread_id = _thread_with_question()
    run = ok(Runs.create(thread_id, assistant_id=assistant.id))
    assert wait_done(thread_id, run.id).status == "requires_action"
    cancelled = ok(Runs.cancel(run.id, thread_id=thread_id))
    assert cancelled.status == "cancelled" and cancelled.required_action is None
    assert wait_done(thread_id, run.id).status == "cancelled"
    [step] = ok(Steps.list(run.id, thread_id=thread_id)).data
    assert step.type == "tool_calls" and step.status == "cancelled"
    late = Runs.submit_tool_outputs(run.id, thread_id=thread_id, tool_outputs=[{"output": "x"}])
    assert_error(late, 409, "Conflict", run.id)
    assert len(fake_model.requests(model)) == 1  # the model was not asked again


def test_cancelling_a_finished_run_is_409(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("done"))
    assistant = ok(Assistants.create(model=model))
    thread_id = _thread_with_question()
    run = ok(Runs.create(thread_id, assistant_id=assistant.id))
    assert wait_done(thread_id, run.id).status == "completed"
    assert_error(Runs.cancel(run.id, thread_id=thread_id), 409, "Conflict", run.id, "completed")
    assert ok(Runs.retrieve(run.id, thread_id=thread_id)).status == "completed"
    assert_error(Runs.cancel("run_nope", thread_id=thread_id), 404, "NotFound", "run_nope")


def test_cancelling_twice_is_409(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Oslo"})]))
    assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
    thread_id = _thread_with_question()
    run = ok(Runs.create(thread_id, assistant_id=assistant.id))
    settle(thread_id, run.id)
    ok(Runs.cancel(run.id, thread_id=thread_id))
    assert_error(Runs.cancel(run.id, thread_id=thread_id), 409, "Conflict", "cancelled")


def test_cancel_a_queued_run(start_server: StartServer, fake_model: FakeModel) -> None:
    server = start_server(ASSISTD_RUN_WORKERS="1", ASSISTD_OPENAI_BASE_URL=fake_model.base_url)
    with sdk_on(server):
        blocker_model = fake_model.new_model(Hang(60))
        blocker = ok(Assistants.create(model=blocker_model))
        busy_thread = _thread_with_question()
        busy = ok(Runs.create(busy_thread, assistant_id=blocker.id))
        wait_for(busy_thread, busy.id, "in_progress")
        fake_model.wait_asked(blocker_model)  # else its Hang could outlive the cancel

        waiting_model = fake_model.new_model(Reply("never asked"))
        waiting_thread = _thread_with_question()
        queued = ok(
            Runs.create(waiting_thread, assistant_id=ok(Assistants.create(model=waiting_model)).id)
        )
        assert ok(Runs.retrieve(queued.id, thread_id=waiting_thread)).status == "queued"
        cancelled = ok(Runs.cancel(queued.id, thread_id=waiting_thread))
        assert cancelled.status == "cancelled" and cancelled.cancelled_at is not None
        assert wait_done(waiting_thread, queued.id).status == "cancelled"

        ok(Runs.cancel(busy.id, thread_id=busy_thread))
        assert wait_done(busy_thread, busy.id).status == "cancelled"
        # The worker is free again; the cancelled run was never started.
        fake_model.script(blocker_model, Reply("next"))
        ok(Messages.create(busy_thread, content="next"))
        after = ok(Runs.create(busy_thread, assistant_id=blocker.id))
        assert settle(busy_thread, after.id).status == "completed"
        assert fake_model.requests(waiting_model) == []
        final = ok(Runs.retrieve(queued.id, thread_id=waiting_thread))
        assert final.status == "cancelled" and final.started_at is None
