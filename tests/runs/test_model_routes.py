"""Model routes from the configuration (ASSISTD_MODELS, the JSON form of the TOML
[models.*] tables): a small context window cuts a long thread (oldest messages first,
never the instructions, never the newest message), and an aliased name is shown to the
client as asked while the upstream name goes to the backend."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.conftest import StartServer, sdk_on
from tests.runs.helpers import ok, settle
from tests.support.fake_model import FakeModel, Reply

WINDOW = 300  # tokens; the thread below is several times longer
INSTRUCTIONS = "KEEP-THESE-INSTRUCTIONS: answer in one word."


@pytest.fixture(scope="module")
def routed_server(start_module_server: StartServer, fake_model: FakeModel) -> tuple[Any, str]:
    """A server whose every name goes to the fake model with a 300-token window, except
    `qwen-max`, which goes there under a fresh upstream name: (server, upstream name)."""
    upstream = fake_model.new_model()
    routes = {
        "*": {
            "backend": "openai_compat",
            "base_url": fake_model.base_url,
            "context_window": WINDOW,
        },
        "qwen-max": {
            "backend": "openai_compat",
            "base_url": fake_model.base_url,
            "upstream_model": upstream,
        },
    }
    return start_module_server(ASSISTD_MODELS=json.dumps(routes)), upstream


@pytest.fixture
def routed(routed_server: tuple[Any, str]) -> Iterator[str]:
    """The SDK on the routed server, in a fresh workspace; yields the upstream name."""
    server, upstream = routed_server
    with sdk_on(server):
        yield upstream


def _thread_texts(count: int) -> list[str]:
    filler = "lorem ipsum dolor sit amet " * 4
    return [f"m{i:02d} {filler}m{i:02d}" for i in range(count)]


def _sent_markers(request: dict[str, Any]) -> list[str]:
    return [str(m["content"])[:3] for m in request["messages"] if m["role"] != "system"]


def test_a_long_thread_is_cut_to_the_window(routed: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Done."))
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS))
    texts = _thread_texts(14)
    thread = ok(Threads.create(messages=[{"role": "user", "content": t} for t in texts[:7]]))
    for text in texts[7:]:
        ok(Messages.create(thread.id, content=text))
    ok(Messages.create(thread.id, content="NEW question, the newest message"))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert settle(thread.id, run.id).status == "completed"

    [request] = fake_model.requests(model)
    messages = request["messages"]
    assert messages[0] == {"role": "system", "content": INSTRUCTIONS}
    assert messages[-1] == {"role": "user", "content": "NEW question, the newest message"}
    sent = _sent_markers(request)
    kept_history = sent[:-1]
    assert "m00" not in sent, sent  # the oldest went first
    assert len(kept_history) >= 1, sent  # ... but not everything went
    # What is kept is the newest part of the thread, in order.
    markers = [t[:3] for t in texts]
    assert kept_history == markers[len(markers) - len(kept_history) :], sent
    # Rough size check: what was sent fits the window (about 3 characters a token).
    assert len(json.dumps(messages)) < WINDOW * 4


def test_the_newest_message_is_kept_even_if_it_alone_is_too_long(
    routed: str, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Reply("Long."))
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS))
    huge = "word " * 1000
    thread = ok(Threads.create(messages=[{"role": "user", "content": "an older message"}]))
    ok(Messages.create(thread.id, content=huge))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert settle(thread.id, run.id).status == "completed"
    [request] = fake_model.requests(model)
    assert request["messages"] == [
        {"role": "system", "content": INSTRUCTIONS},
        {"role": "user", "content": huge},
    ]


def test_short_threads_are_sent_whole(routed: str, fake_model: FakeModel) -> None:
    model = fake_model.new_model(Reply("Fine."))
    assistant = ok(Assistants.create(model=model, instructions=INSTRUCTIONS))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "a"}]))
    ok(Messages.create(thread.id, content="b"))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert settle(thread.id, run.id).status == "completed"
    [request] = fake_model.requests(model)
    assert [m["content"] for m in request["messages"]] == [INSTRUCTIONS, "a", "b"]


def test_the_run_shows_the_name_the_client_asked_for(routed: str, fake_model: FakeModel) -> None:
    assistant = ok(Assistants.create(model="qwen-max"))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "who serves me?"}]))
    before = len(fake_model.requests("qwen-max"))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert run.model == "qwen-max"
    done = settle(thread.id, run.id)
    assert (done.status, done.model) == ("completed", "qwen-max")
    [request] = fake_model.requests(routed)
    assert request["model"] == routed
    assert len(fake_model.requests("qwen-max")) == before
    # A run-level override to the aliased name is shown as asked, too.
    other = ok(Assistants.create(model=fake_model.new_model()))
    ok(Messages.create(thread.id, content="again"))
    run2 = ok(Runs.create(thread.id, assistant_id=other.id, model="qwen-max"))
    assert run2.model == "qwen-max"
    assert settle(thread.id, run2.id).status == "completed"
    assert len(fake_model.requests(routed)) == 2
