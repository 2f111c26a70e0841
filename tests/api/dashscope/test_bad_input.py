"""Bad input answers 400 naming the field, and a failed request writes nothing.

Everything the SDK can send goes through the SDK (it passes most values through
unchecked); raw HTTP only for what it cannot send, such as malformed JSON.
"""

from __future__ import annotations

from typing import Any

import pytest
from dashscope import Assistants, Messages, Threads

from tests.support.sdk import as_json, assert_error, assert_ok, assert_raw_error, raw_client
from tests.support.server import RunningServer

SEVENTEEN_KEYS = {f"k{i}": "v" for i in range(17)}
SIXTEEN_KEYS = {f"k{i}": "v" for i in range(16)}
BAD_METADATA: list[tuple[Any, str]] = [
    (SEVENTEEN_KEYS, "17 keys"),
    ({"k" * 65: "v"}, "longer than 64"),
    ({"key": "v" * 513}, "longer than 512"),
    ({"nested": {"object": "inside"}}, "metadata.nested"),
    ({"listed": ["a", "b"]}, "metadata.listed"),
    ("not an object", "metadata"),
]
GOOD_METADATA = {**{f"k{i}": "v" for i in range(14)}, "k" * 64: "v" * 512, "n": "1"}


def _count_assistants() -> int:
    listed = Assistants.list(limit=100)
    assert_ok(listed)
    return len(listed.data)


@pytest.fixture
def existing(ds: str) -> Any:
    """One assistant, so that "nothing was written" compares against a non-empty list."""
    assistant = Assistants.create(model="qwen-max", name="existing", metadata={"keep": "me"})
    assert_ok(assistant)
    return assistant


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": 12345}, "name"),
        ({"description": ["a", "list"]}, "description"),
        ({"instructions": 3.5}, "instructions"),
        ({"model": 7}, "model"),
        ({"model": "   "}, "model"),
        ({"tools": "code_interpreter"}, "tools"),
        ({"tools": ["code_interpreter"]}, "tools[0]"),
        ({"file_ids": "file_abc"}, "file_ids"),
        ({"file_ids": [1, 2]}, "file_ids"),
        ({"metadata": 5}, "metadata"),
        ({"temperature": "hot"}, "temperature"),
        ({"temperature": 2.5}, "temperature"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 1.5}, "top_k"),
        ({"top_k": -1}, "top_k"),
        ({"max_tokens": "many"}, "max_tokens"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"name": "n" * 257}, "name"),
        ({"description": "d" * 513}, "description"),
        ({"name": "nul\x00inside"}, "name"),
        ({"instructions": "nul\x00inside"}, "instructions"),
    ],
)
def test_assistant_create_refuses(existing: Any, kwargs: dict[str, Any], field: str) -> None:
    fields: dict[str, Any] = {"model": "qwen-max", **kwargs}
    result = Assistants.create(**fields)
    assert_error(result, 400, "InvalidParameter", f"'{field}")
    as_json(result)
    assert [a.id for a in Assistants.list().data] == [existing.id]


@pytest.mark.parametrize(("metadata", "words"), BAD_METADATA)
def test_assistant_metadata_limits(existing: Any, metadata: Any, words: str) -> None:
    assert_error(
        Assistants.create(model="qwen-max", metadata=metadata), 400, "InvalidParameter", words
    )
    assert_error(Assistants.update(existing.id, metadata=metadata), 400, "InvalidParameter")
    assert _count_assistants() == 1
    assert Assistants.retrieve(existing.id).metadata == {"keep": "me"}


def test_limits_are_inclusive(existing: Any) -> None:
    at_limit = Assistants.create(
        model="qwen-max", name="n" * 256, description="d" * 512, metadata=GOOD_METADATA
    )
    assert_ok(at_limit)
    assert at_limit.name == "n" * 256 and at_limit.description == "d" * 512
    assert at_limit.metadata == GOOD_METADATA
    assert_ok(Assistants.create(model="qwen-max", metadata=SIXTEEN_KEYS))
    assert _count_assistants() == 3


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"name": "n" * 257}, "name"),
        ({"description": "d" * 513}, "description"),
        ({"name": 99}, "name"),
        ({"model": "m" * 257}, "model"),
        ({"tools": [{"type": "warp_drive"}]}, "tools"),
        ({"temperature": -0.1}, "temperature"),
        ({"file_ids": ["file_missing"]}, "file_ids"),
    ],
)
def test_assistant_update_refuses_and_changes_nothing(
    existing: Any, kwargs: dict[str, Any], field: str
) -> None:
    before = as_json(Assistants.retrieve(existing.id))
    assert_error(Assistants.update(existing.id, **kwargs), 400, "InvalidParameter", field)
    after = as_json(Assistants.retrieve(existing.id))
    before.pop("request_id")
    after.pop("request_id")
    assert after == before


@pytest.mark.parametrize(("metadata", "words"), BAD_METADATA)
def test_thread_and_message_metadata_limits(ds: str, metadata: Any, words: str) -> None:
    assert_error(Threads.create(metadata=metadata), 400, "InvalidParameter", words)
    thread = Threads.create(metadata={"keep": "me"}, messages=[{"role": "user", "content": "a"}])
    assert_error(Threads.update(thread.id, metadata=metadata), 400, "InvalidParameter", words)
    assert Threads.retrieve(thread.id).metadata == {"keep": "me"}

    (message,) = Messages.list(thread.id).data
    assert_error(
        Messages.create(thread.id, content="b", metadata=metadata), 400, "InvalidParameter", words
    )
    assert_error(
        Messages.update(message.id, thread_id=thread.id, metadata=metadata),
        400,
        "InvalidParameter",
        words,
    )
    assert_error(
        Threads.create(messages=[{"role": "user", "content": "c", "metadata": metadata}]),
        400,
        "InvalidParameter",
        "messages[0].metadata",
    )
    assert [m.id for m in Messages.list(thread.id).data] == [message.id]
    assert Messages.retrieve(message.id, thread_id=thread.id).metadata == {}


def test_thread_wrong_types(ds: str) -> None:
    assert_error(Threads.create(messages="hello"), 400, "InvalidParameter", "'messages'")
    assert_error(Threads.create(messages=["hello"]), 400, "InvalidParameter", "'messages[0]'")
    assert_error(
        Threads.create(messages=[{"role": "user", "content": "x", "file_ids": "f"}]),
        400,
        "InvalidParameter",
        "file_ids",
    )
    assert_error(
        Threads.create(messages=[{"role": "user", "content": ""}]),
        400,
        "InvalidParameter",
        "messages[0].content",
    )
    too_many = [{"role": "user", "content": str(i)} for i in range(33)]
    assert_error(Threads.create(messages=too_many), 400, "InvalidParameter", "'messages'")
    ok = Threads.create(messages=too_many[:32])
    assert_ok(ok)
    assert len(Messages.list(ok.id, limit=100).data) == 32


def test_message_too_many_files_and_wrong_types(ds: str) -> None:
    thread = Threads.create()
    assert_error(
        Messages.create(thread.id, content="x", file_ids=[f"file_{i}" for i in range(11)]),
        400,
        "InvalidParameter",
        "file_ids",
    )
    assert_error(Messages.create(thread.id, content="x", role=5), 400, "InvalidParameter", "role")
    assert_error(
        Messages.create(thread.id, content="x", metadata=["a"]), 400, "InvalidParameter", "metadata"
    )
    assert Messages.list(thread.id).data == []


@pytest.mark.parametrize(
    "body",
    [
        b'{"model": "qwen-max",',
        b"{'model': 'qwen-max'}",
        b'{"model": "qwen-max"} trailing',
        b"\xff\xfe{}",
        b'{"model": "\\ud800"}',
    ],
)
def test_malformed_json(server: RunningServer, existing: Any, body: bytes) -> None:
    thread = Threads.create(messages=[{"role": "user", "content": "only me"}])
    headers = {"Content-Type": "application/json; charset=utf-8"}
    with raw_client(server) as client:
        for path in (
            "/assistants",
            f"/assistants/{existing.id}",
            "/threads",
            f"/threads/{thread.id}",
            f"/threads/{thread.id}/messages",
        ):
            response = client.post(path, content=body, headers=headers)
            assert_raw_error(response, 400, "InvalidParameter", "not valid JSON")
    assert [a.id for a in Assistants.list().data] == [existing.id]
    assert Assistants.retrieve(existing.id).name == "existing"
    assert len(Messages.list(thread.id).data) == 1


@pytest.mark.parametrize("body", [b"[1, 2]", b"42", b"null", b'"text"', b"true"])
def test_body_must_be_an_object(server: RunningServer, existing: Any, body: bytes) -> None:
    with raw_client(server) as client:
        for path in ("/assistants", "/threads", f"/assistants/{existing.id}"):
            response = client.post(path, content=body)
            assert_raw_error(response, 400, "InvalidParameter", "JSON object")
    assert [a.id for a in Assistants.list().data] == [existing.id]


def test_empty_bodies_as_the_sdk_sends_them(server: RunningServer, ds: str) -> None:
    """`""` and an empty body mean "no fields": fine for a thread, not for an assistant."""
    with raw_client(server) as client:
        for body in (b'""', b"", b"  "):
            created = client.post("/threads", content=body)
            assert created.status_code == 200, created.text
            assert created.json()["metadata"] == {}
            assert_raw_error(
                client.post("/assistants", content=body), 400, "InvalidParameter", "'model'"
            )
