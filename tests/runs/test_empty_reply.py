"""A run never ends with an empty assistant message: a blank answer is asked for once more,
and a second blank one fails the run with a `last_error` saying the model returned no text.
No empty message is left in the thread either way."""

from __future__ import annotations

from typing import Any

from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.runs.helpers import collect, delta_text, names, ok, wait_done
from tests.support.fake_model import FakeModel, Reply
from tests.support.sdk import as_json


def _run(fake_model: FakeModel, *replies: Reply) -> tuple[str, str, Any]:
    """A run of a fresh model scripted with `replies`; (model, thread id, the ended run)."""
    model = fake_model.new_model(*replies)
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    return model, thread.id, wait_done(thread.id, run.id)


def test_an_empty_reply_is_asked_for_once_more(ds: str, fake_model: FakeModel) -> None:
    model, thread_id, run = _run(fake_model, Reply(""), Reply("hi"))
    assert run.status == "completed", as_json(run)
    messages = ok(Messages.list(thread_id)).data
    assert [m.role for m in messages] == ["assistant", "user"]
    assert messages[0].content[0]["text"]["value"] == "hi"
    assert len(fake_model.requests(model)) == 2
    steps = ok(Steps.list(run.id, thread_id=thread_id)).data
    assert [s.type for s in steps] == ["message_creation"]  # none for the blank answer
    # Both answers' tokens are the run's: the fake counts 10 prompt tokens per request.
    assert run.usage["prompt_tokens"] == 20, as_json(run)


def test_two_empty_replies_fail_the_run(ds: str, fake_model: FakeModel) -> None:
    model, thread_id, run = _run(fake_model, Reply(""), Reply(""))
    assert run.status == "failed", as_json(run)
    error = run.last_error
    assert error["code"] == "empty_reply", error
    assert "no text" in error["message"], error
    assert len(fake_model.requests(model)) == 2
    # No empty message is left behind, and the thread takes its next run.
    assert [m.role for m in ok(Messages.list(thread_id)).data] == ["user"]
    assert ok(Steps.list(run.id, thread_id=thread_id)).data == []
    healthy = ok(Assistants.create(model=fake_model.new_model(Reply("back"))))
    again = wait_done(thread_id, ok(Runs.create(thread_id, assistant_id=healthy.id)).id)
    assert again.status == "completed", as_json(again)


def test_a_blank_reply_counts_as_empty(ds: str, fake_model: FakeModel) -> None:
    _, thread_id, run = _run(fake_model, Reply(" \n "), Reply("  "))
    assert run.status == "failed", as_json(run)
    assert run.last_error["code"] == "empty_reply"
    assert [m.role for m in ok(Messages.list(thread_id)).data] == ["user"]


def test_streamed_retry_shows_only_the_real_message(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply(" "), Reply(" hello there"))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events).count("thread.message.created") == 1, names(events)
    assert names(events)[-1] == "thread.run.completed", names(events)
    assert delta_text(events) == " hello there"
    (message, _) = ok(Messages.list(thread.id)).data
    assert message.content[0]["text"]["value"] == " hello there"
