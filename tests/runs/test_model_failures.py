"""A model backend that fails or cannot be reached ends the run `failed`, with a
`last_error` a user can act on; Runs.wait ends and the thread takes a new run."""

from __future__ import annotations

from typing import Any

import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads

from tests.ops.helpers import wait_for_log
from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import collect, names, ok, settle, wait_done
from tests.support.fake_model import Fail, FakeModel, Reply
from tests.support.sdk import as_json
from tests.support.server import RunningServer, free_port

# More failures than the backend's retries, so every attempt of the turn fails.
FAILURES = [Fail(500, "the GPU caught fire")] * 6


def _assert_failed(run: object) -> dict[str, str]:
    assert getattr(run, "status", None) == "failed", as_json(run)
    error = getattr(run, "last_error", None)
    assert isinstance(error, dict) and set(error) >= {"code", "message"}, error
    assert isinstance(error["code"], str) and error["code"]
    assert isinstance(error["message"], str) and error["message"]
    assert getattr(run, "failed_at", None) is not None
    assert getattr(run, "completed_at", "x") is None
    return error


def test_model_500_fails_the_run(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(*FAILURES)
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    error = _assert_failed(wait_done(thread.id, run.id))
    assert "500" in error["message"], error
    assert [m.role for m in ok(Messages.list(thread.id)).data] == ["user"]
    assert ok(Steps.list(run.id, thread_id=thread.id)).data == []
    # The thread is free for the next run, here with a model that answers.
    healthy = ok(Assistants.create(model=fake_model.new_model(Reply("back"))))
    again = ok(Runs.create(thread.id, assistant_id=healthy.id))
    assert settle(thread.id, again.id).status == "completed"


def test_model_400_fails_the_streamed_run(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Fail(400, "context too long for this model"))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events) == ["thread.run.created", "thread.run.queued", "thread.run.in_progress",
                             "thread.run.failed"]  # fmt: skip
    failed = events[-1][1]
    error = _assert_failed(failed)
    assert "400" in error["message"], error
    assert "context too long" not in error["message"], error  # the upstream's words: log only
    assert len(fake_model.requests(model)) == 1  # a 400 is not retried
    again = ok(Runs.retrieve(failed.id, thread_id=thread.id))
    assert again.last_error == failed.last_error


def _answered(model: str) -> Any:
    """A run of `model`, ended: the reply it gave."""
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    run = settle(thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id)
    assert run.status == "completed", as_json(run)
    return ok(Messages.list(thread.id)).data[0].content[0].text.value


def test_a_model_500_is_asked_again_and_the_run_completes(ds: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Fail(500, "a hiccup"), Reply("second time lucky"))
    assert _answered(model) == "second time lucky"
    assert len(fake_model.requests(model)) == 2


def test_a_429_waits_the_retry_after_the_upstream_gave(ds: str, fake_model: FakeModel) -> None:
    """The backoff alone would wait at most 0.5 s before the second try."""
    model = fake_model.new_model(Fail(429, "slow down", {"Retry-After": "2"}), Reply("waited"))
    assert _answered(model) == "waited"
    first, second = fake_model.arrivals(model)
    assert second - first >= 1.9


def test_an_upstream_that_says_not_to_retry_is_not_asked_again(
    ds: str, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Fail(503, "down for good", {"x-should-retry": "false"}),
                                 Reply("never asked"))  # fmt: skip
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert "503" in _assert_failed(wait_done(thread.id, run.id))["message"]
    assert len(fake_model.requests(model)) == 1


def test_every_try_failing_asks_the_model_three_times(ds: str, fake_model: FakeModel) -> None:
    """The route's max_retries (2 by default) tries after the first, as the SDK did."""
    model = fake_model.new_model(*FAILURES)
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hello?"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    _assert_failed(wait_done(thread.id, run.id))
    assert len(fake_model.requests(model)) == 3


@pytest.fixture(scope="module")
def unreachable(start_module_server: StartServer) -> tuple[RunningServer, int]:
    """A server whose model endpoint has nothing listening: (server, that port)."""
    port = free_port()
    return start_module_server(ASSISTD_OPENAI_BASE_URL=f"http://127.0.0.1:{port}/v1"), port


def _unreachable_run(stream: bool = False) -> Any:
    assistant = ok(Assistants.create(model="qwen-max"))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "anyone there?"}]))
    if stream:
        events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        assert names(events)[-1] == "thread.run.failed", names(events)
        return events[-1][1]
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    return wait_done(thread.id, run.id)


def test_unreachable_model_endpoint_fails_the_run(unreachable: tuple[RunningServer, int]) -> None:
    server, _ = unreachable
    with sdk_on(server):
        done = _unreachable_run()
        _assert_failed(done)
        assert done.last_error["code"] == "model_unreachable", done.last_error
        streamed = _unreachable_run(stream=True)
        streamed_error = _assert_failed(streamed)  # the same, but for its own error id
        assert streamed_error["code"] == done.last_error["code"]
        assert streamed_error["message"].split("(")[0] == done.last_error["message"].split("(")[0]


def test_unreachable_model_endpoint_is_named_in_the_log(
    unreachable: tuple[RunningServer, int],
) -> None:
    server, port = unreachable
    with sdk_on(server):
        done = _unreachable_run(stream=True)
    assert f"127.0.0.1:{port}" not in done.last_error["message"], done.last_error
    error_id = done.last_error["message"].rsplit("error id ", 1)[1].rstrip(").")
    log = wait_for_log(server, lambda text: error_id in text)
    (line,) = [line for line in log.splitlines() if error_id in line]
    assert f"127.0.0.1:{port}" in line, line  # the operator learns which endpoint
