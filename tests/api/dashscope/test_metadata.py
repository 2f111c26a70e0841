"""Metadata is up to 16 pairs of strings (keys up to 64 characters, values up to 512), as
the vendors document, on every object that takes it. Anything else is a 400 naming the
key: a stored number or object used to come back to the SDK as something else, and
`{"object": "thread.run", ...}` made `Threads.retrieve` raise TypeError (spec 13.16)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from dashscope import Assistants, Messages, Runs, Threads

from tests.runs.helpers import ok, settle
from tests.support.sdk import as_json, assert_error, assert_raw_error, raw_client
from tests.support.server import RunningServer

VALID = {
    **{f"k{i}": f"v{i}" for i in range(10)},
    "k" * 64: "v" * 512,
    "object": "car",  # a word the SDK does not know as a type is just a string
    "tools": "",
    "猫": "ragdoll 🐈",
    "": "an empty key",
    "spaces in key": "line\nbreak",
}
BAD: list[tuple[dict[str, Any], str]] = [
    ({"n": 1}, "'metadata.n' must be a string, not a number"),
    ({"flag": True}, "'metadata.flag' must be a string, not a boolean"),
    ({"none": None}, "'metadata.none' must be a string, not null"),
    ({"deep": {"er": "x"}}, "'metadata.deep' must be a string, not an object"),
    ({"listed": ["a"]}, "'metadata.listed' must be a string, not an array"),
    ({"object": "thread.run", "tools": None}, "'metadata.object' must not be 'thread.run'"),
    ({"object": "thread.run"}, "'metadata.object'"),
    ({"object": "assistant"}, "'metadata.object'"),
    ({"object": "thread.message", "content": "x"}, "'metadata.object'"),
    ({"nul\x00key": "v"}, "NUL"),
    ({"key": "nul\x00value"}, "'metadata.key' must not contain NUL"),
    ({"k" * 65: "v"}, "longer than 64"),
    ({"key": "v" * 513}, "'metadata.key' is longer than 512"),
    ({f"k{i}": "v" for i in range(17)}, "17 keys"),
]


def _same(got: Any) -> None:
    assert got == VALID, got


def test_valid_metadata_round_trips_through_the_sdk(ds: str) -> None:
    assert len(VALID) == 16
    assistant = ok(Assistants.create(model="qwen-max", metadata=VALID))
    _same(assistant.metadata)
    _same(ok(Assistants.retrieve(assistant.id)).metadata)
    _same(ok(Assistants.list()).data[0].metadata)
    _same(ok(Assistants.update(assistant.id, metadata=VALID)).metadata)

    thread = ok(Threads.create(metadata=VALID, messages=[{"content": "a", "metadata": VALID}]))
    _same(ok(Threads.retrieve(thread.id)).metadata)
    _same(ok(Threads.update(thread.id, metadata=VALID)).metadata)
    (first,) = ok(Messages.list(thread.id)).data
    _same(first.metadata)
    message = ok(Messages.create(thread.id, content="b", metadata=VALID))
    _same(ok(Messages.retrieve(message.id, thread_id=thread.id)).metadata)
    _same(ok(Messages.update(message.id, thread_id=thread.id, metadata=VALID)).metadata)

    run = ok(Runs.create(thread.id, assistant_id=assistant.id, metadata=VALID))
    _same(ok(Runs.retrieve(run.id, thread_id=thread.id)).metadata)
    _same(ok(Runs.update(run.id, thread_id=thread.id, metadata=VALID)).metadata)
    both = ok(
        Runs.create_thread_and_run(
            assistant_id=assistant.id, thread={"metadata": VALID}, metadata=VALID
        )
    )
    _same(both.metadata)
    _same(ok(Threads.retrieve(both.thread_id)).metadata)
    as_json(both)


def _surfaces(assistant: Any, thread: Any, message: Any, run: Any) -> list[Callable[..., Any]]:
    """Each call sends `metadata` where one of the SDK's methods takes it; each returns the
    SDK's result and the field the error must name."""
    return [
        lambda m: (Assistants.create(model="qwen-max", metadata=m), "metadata"),
        lambda m: (Assistants.update(assistant.id, metadata=m), "metadata"),
        lambda m: (Threads.create(metadata=m), "metadata"),
        lambda m: (Threads.update(thread.id, metadata=m), "metadata"),
        lambda m: (
            Threads.create(messages=[{"content": "x", "metadata": m}]),
            "messages[0].metadata",
        ),
        lambda m: (Messages.create(thread.id, content="x", metadata=m), "metadata"),
        lambda m: (Messages.update(message.id, thread_id=thread.id, metadata=m), "metadata"),
        lambda m: (Runs.create(thread.id, assistant_id=assistant.id, metadata=m), "metadata"),
        lambda m: (Runs.update(run.id, thread_id=thread.id, metadata=m), "metadata"),
        lambda m: (Runs.create_thread_and_run(assistant_id=assistant.id, metadata=m), "metadata"),
        lambda m: (
            Runs.create_thread_and_run(assistant_id=assistant.id, thread={"metadata": m}),
            "thread.metadata",
        ),
    ]


@pytest.mark.parametrize(("metadata", "words"), BAD)
def test_bad_metadata_is_400_naming_the_key(ds: str, metadata: dict[str, Any], words: str) -> None:
    assistant = ok(Assistants.create(model="qwen-max", metadata={"keep": "me"}))
    thread = ok(Threads.create(metadata={"keep": "me"}, messages=[{"content": "hi"}]))
    (message,) = ok(Messages.list(thread.id)).data
    run = ok(Runs.create(thread.id, assistant_id=assistant.id, metadata={"keep": "me"}))
    settle(thread.id, run.id)  # the thread is free again
    for call in _surfaces(assistant, thread, message, run):
        result, field = call(metadata)
        where_words = words.replace("'metadata", f"'{field}")
        assert_error(result, 400, "InvalidParameter", where_words)
    assert ok(Assistants.retrieve(assistant.id)).metadata == {"keep": "me"}
    assert ok(Threads.retrieve(thread.id)).metadata == {"keep": "me"}
    assert ok(Messages.retrieve(message.id, thread_id=thread.id)).metadata == {}
    assert ok(Runs.retrieve(run.id, thread_id=thread.id)).metadata == {"keep": "me"}
    assert len(ok(Runs.list(thread.id)).data) == 1
    assert len(ok(Messages.list(thread.id)).data) == 2  # "hi" and the run's reply


def test_the_metadata_that_crashed_the_sdk_is_refused(server: RunningServer, ds: str) -> None:
    with raw_client(server) as client:
        response = client.post(
            "/threads", json={"metadata": {"object": "thread.run", "tools": None}}
        )
        assert_raw_error(response, 400, "InvalidParameter", "'metadata.object'", "dashscope SDK")
        harmless = client.post("/threads", json={"metadata": {"object": "car", "tools": "x"}})
        assert harmless.status_code == 200, harmless.text
    thread = ok(Threads.retrieve(harmless.json()["id"]))
    assert thread.metadata == {"object": "car", "tools": "x"}
