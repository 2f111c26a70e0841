"""Content filters through the real server: the built-in keyword list blocks an input
(the run fails with `content_filtered`, naming the filter and never the words) or a
reply (stored withheld); a filter loaded by import path rewrites the input the model
sees and the reply it stores; every checked message records the decision."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openai
import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.conftest import StartServer, sdk_on, workspace_key
from tests.runs.helpers import ok, settle
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import ADMIN_KEY, RunningServer, free_port, server_env

WORDS = ["forbidden-spell", "Voldemort"]
SETTINGS = {
    "blocked_words": WORDS,
    "filters": ["tests.support.content_filters:rewriter"],
}


@pytest.fixture(scope="module")
def filtered_server(start_module_server: StartServer, fake_model: FakeModel) -> RunningServer:
    return start_module_server(
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_CONTENT_FILTER=json.dumps(SETTINGS),
    )


@pytest.fixture
def filtered(filtered_server: RunningServer) -> Iterator[None]:
    with sdk_on(filtered_server):
        yield


def _run(model: str, text: str) -> tuple[Any, Any]:
    """A run on a new thread with one user message: (its end, the thread's messages)."""
    assistant = ok(Assistants.create(model=model, instructions="Be brief."))
    thread = ok(Threads.create(messages=[{"role": "user", "content": text}]))
    run = settle(thread.id, ok(Runs.create(thread.id, assistant_id=assistant.id)).id)
    messages = ok(Messages.list(thread.id, order="asc")).data
    return run, messages


def _text(message: Any) -> str:
    return "".join(p["text"]["value"] for p in message.content if p["type"] == "text")


def test_a_blocked_input_fails_the_run(filtered: None, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("never asked"))
    run, [message] = _run(model, "Tell me about voldemort, please.")  # any case blocks
    assert run.status == "failed"
    assert run.last_error["code"] == "content_filtered"
    assert "'keywords'" in run.last_error["message"]
    assert "input" in run.last_error["message"]
    assert not any(w.lower() in json.dumps(run.last_error).lower() for w in WORDS)
    assert message.metadata == {"content_filter": "blocked"}
    # Nor does a run started again on the same thread get it past the filter.
    again = settle(
        message.thread_id, ok(Runs.create(message.thread_id, assistant_id=run.assistant_id)).id
    )
    assert (again.status, again.last_error["code"]) == ("failed", "content_filtered")
    assert fake_model.requests(model) == []  # the model never saw it


def test_a_passing_input_is_unchanged(filtered: None, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Hello there."))
    run, [question, answer] = _run(model, "Hello, how are you?")
    assert run.status == "completed", run.last_error
    assert _text(question) == "Hello, how are you?"
    assert question.metadata == {"content_filter": "passed"}
    assert answer.metadata == {"content_filter": "passed"}
    [request] = fake_model.requests(model)
    assert request["messages"][-1] == {"role": "user", "content": "Hello, how are you?"}


def test_a_filter_rewrites_input_and_reply(filtered: None, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Operation BLUEBIRD is blue."))
    run, [question, answer] = _run(model, "What colour is it?")
    assert run.status == "completed", run.last_error
    [request] = fake_model.requests(model)
    assert request["messages"][-1]["content"] == "What color is it?"  # what the model saw
    assert (_text(question), question.metadata) == (
        "What color is it?",
        {"content_filter": "rewritten"},
    )
    assert (_text(answer), answer.metadata) == (
        "Operation [redacted] is blue.",
        {"content_filter": "rewritten"},
    )


def test_a_blocked_reply_is_withheld_and_fails_the_run(
    filtered_server: RunningServer, fake_model: FakeModel
) -> None:
    """Through the openai SDK this time: its code for a refused prompt."""
    model = fake_model.new_model(Reply("The forbidden-spell is this."))
    _, key = workspace_key(filtered_server)
    client = openai.OpenAI(base_url=f"{filtered_server.base_url}/v1", api_key=key)
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say it."}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, poll_interval_ms=100
    )
    assert run.status == "failed"
    assert run.last_error is not None and run.last_error.code == "invalid_prompt"
    assert "reply" in run.last_error.message and "forbidden" not in run.last_error.message
    question, answer = client.beta.threads.messages.list(thread.id, order="asc").data
    assert question.metadata == {"content_filter": "passed"}
    assert answer.metadata == {"content_filter": "blocked"}
    assert answer.content[0].type == "text"
    assert answer.content[0].text.value == "This reply was withheld by the content filter."


def test_a_filter_that_cannot_load_stops_the_server(tmp_path: Path) -> None:
    settings = json.dumps({"filters": ["no_such_module:factory"]})
    env = server_env(tmp_path, "", ADMIN_KEY, ASSISTD_CONTENT_FILTER=settings)
    serve = [sys.executable, "-m", "assistd", "serve", "--port", str(free_port())]
    done = subprocess.run(serve, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    assert "content_filter.filters: cannot load 'no_such_module:factory'" in done.stderr
