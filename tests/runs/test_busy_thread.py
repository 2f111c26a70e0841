"""One active run per thread: a second run, or a new message, on a thread whose run is
still going is a 400 naming that run, so the client knows to wait or cancel."""

from __future__ import annotations

from typing import Any

from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.helpers import WEATHER, collect, ok, settle, wait_for
from tests.support.fake_model import FakeModel, Hang, Reply, ToolCalls
from tests.support.sdk import assert_error


def _assert_busy(result: Any, run_id: str) -> None:
    assert_error(result, 400, "InvalidParameter", run_id)


def test_second_run_and_message_on_a_running_thread(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Hang(60))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "think hard"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))

    # Busy while queued or in progress (whichever it is at the moment of asking).
    _assert_busy(Runs.create(thread.id, assistant_id=assistant.id), run.id)
    wait_for(thread.id, run.id, "in_progress")
    _assert_busy(Runs.create(thread.id, assistant_id=assistant.id), run.id)
    _assert_busy(Messages.create(thread.id, content="are you there?"), run.id)
    streamed = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert len(streamed) == 1 and streamed[0][0] is None, streamed
    assert streamed[0][1]["status_code"] == 400 and run.id in streamed[0][1]["message"]

    assert [r.id for r in ok(Runs.list(thread.id)).data] == [run.id]
    assert [m.content[0].text.value for m in ok(Messages.list(thread.id)).data] == ["think hard"]

    ok(Runs.cancel(run.id, thread_id=thread.id))
    assert settle(thread.id, run.id).status == "cancelled"
    ok(Messages.create(thread.id, content="never mind"))
    quick = ok(Assistants.create(model=fake_model.new_model(Reply("ok"))))
    assert settle(thread.id, ok(Runs.create(thread.id, assistant_id=quick.id)).id).status == (
        "completed"
    )


def test_a_run_waiting_for_outputs_keeps_the_thread_busy(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Lima"})]), Reply("Mild."))
    assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "weather?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert settle(thread.id, run.id).status == "requires_action"
    _assert_busy(Runs.create(thread.id, assistant_id=assistant.id), run.id)
    _assert_busy(Messages.create(thread.id, content="hurry"), run.id)
    ok(Runs.submit_tool_outputs(run.id, thread_id=thread.id, tool_outputs=[{"output": "15C"}]))
    assert settle(thread.id, run.id).status == "completed"
    ok(Messages.create(thread.id, content="thanks"))


def test_other_threads_are_not_blocked(ds: str, fake_model: FakeModel) -> None:
    slow = ok(Assistants.create(model=fake_model.new_model(Hang(60))))
    fast = ok(Assistants.create(model=fake_model.new_model(Reply("quick"))))
    busy = ok(Threads.create(messages=[{"role": "user", "content": "slow"}]))
    free = ok(Threads.create(messages=[{"role": "user", "content": "fast"}]))
    blocked = ok(Runs.create(busy.id, assistant_id=slow.id))
    wait_for(busy.id, blocked.id, "in_progress")
    other = ok(Runs.create(free.id, assistant_id=fast.id))
    assert settle(free.id, other.id).status == "completed"
    ok(Runs.cancel(blocked.id, thread_id=busy.id))
    assert settle(busy.id, blocked.id).status == "cancelled"
