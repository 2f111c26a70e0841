"""Creating a thread and its run in one call: Threads.create_and_run (never streamed by the
SDK) and Runs.create_thread_and_run (streamed, starting with thread.created)."""

from __future__ import annotations

from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.helpers import WEATHER, collect, delta_text, names, ok, wait_done
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json, assert_error


def test_threads_create_and_run(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Hello there."))
    assistant = ok(Assistants.create(model=model, instructions="Greet."))
    run = ok(
        Threads.create_and_run(
            assistant_id=assistant.id,
            thread={
                "messages": [{"role": "user", "content": "Hi!"}],
                "metadata": {"channel": "web"},
            },
            metadata={"source": "test"},
        )
    )
    assert run.object == "thread.run" and run.status in ("queued", "in_progress")
    assert run.metadata == {"source": "test"}
    thread = ok(Threads.retrieve(run.thread_id))
    assert thread.metadata == {"channel": "web"}
    done = wait_done(run.thread_id, run.id)
    assert done.status == "completed", as_json(done)
    messages = ok(Messages.list(run.thread_id, order="asc")).data
    assert [(m.role, m.content[0].text.value) for m in messages] == [
        ("user", "Hi!"), ("assistant", "Hello there."),
    ]  # fmt: skip
    sent = fake_model.requests(model)[0]["messages"]
    assert sent == [{"role": "system", "content": "Greet."}, {"role": "user", "content": "Hi!"}]


def test_create_thread_and_run_streamed(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Streamed hello."))
    assistant = ok(Assistants.create(model=model))
    events = collect(
        Runs.create_thread_and_run(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "Hi"}]},
            stream=True,
        )
    )
    assert names(events)[:4] == [
        "thread.created", "thread.run.created", "thread.run.queued", "thread.run.in_progress",
    ]  # fmt: skip
    assert names(events)[-1] == "thread.run.completed"
    thread = events[0][1]
    assert thread.object == "thread" and thread.id.startswith("thread")
    run = events[1][1]
    assert run.thread_id == thread.id
    assert delta_text(events) == "Streamed hello."
    assert ok(Messages.list(thread.id)).data[0].content[0].text.value == "Streamed hello."
    assert ok(Runs.retrieve(run.id, thread_id=thread.id)).status == "completed"


def test_create_thread_and_run_with_a_function_call(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Rome"})]), Reply("Warm."))
    assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
    events = collect(
        Runs.create_thread_and_run(
            assistant_id=assistant.id,
            thread={"messages": [{"role": "user", "content": "Weather in Rome?"}]},
            stream=True,
        )
    )
    assert names(events)[0] == "thread.created"
    assert names(events)[-1] == "thread.run.requires_action"
    run = events[-1][1]
    rest = collect(
        Runs.submit_tool_outputs(
            run.id, thread_id=run.thread_id, tool_outputs=[{"output": "25C"}], stream=True
        )
    )
    assert names(rest)[0] != "thread.created" and names(rest)[-1] == "thread.run.completed"
    assert delta_text(rest) == "Warm."


def test_create_and_run_with_unknown_assistant_is_404(ds: str) -> None:
    missing = Threads.create_and_run(assistant_id="asst_nope")
    assert_error(missing, 404, "NotFound", "asst_nope")
    streamed = collect(Runs.create_thread_and_run(assistant_id="asst_nope", stream=True))
    assert len(streamed) == 1 and streamed[0][0] is None
    assert streamed[0][1]["status_code"] == 404 and "asst_nope" in streamed[0][1]["message"]
