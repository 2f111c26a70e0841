"""Threads, messages and message files through the real dashscope SDK (2.0.2)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from dashscope import Messages, Threads
from dashscope.threads.messages import files as message_files

from tests.support.sdk import as_json, assert_error, assert_ok, upload

CAT = "Please help me draw a picture of a ragdoll cat."


def _text(message: Any) -> str:
    return "".join(part.text.value for part in message.content)


def _two_files(tmp_path: Path) -> tuple[str, str]:
    first, second = tmp_path / "a.txt", tmp_path / "b.md"
    first.write_text("alpha\n")
    second.write_text("# beta\n")
    return upload(first), upload(second)


def test_create_empty_thread(ds: str) -> None:
    """`Threads.create()` sends the JSON string `""` as its body (spec 1.4)."""
    thread = Threads.create()
    assert_ok(thread)
    assert thread.id.startswith("thread_")
    assert thread.object == "thread"
    assert thread.metadata == {}
    assert isinstance(thread.created_at, int) and thread.created_at > 10**12
    listed = Messages.list(thread.id)
    assert_ok(listed)
    assert listed.data == []
    assert (listed.first_id, listed.last_id, listed.has_more) == (None, None, False)
    as_json(thread)


def test_create_with_messages_and_metadata(ds: str, tmp_path: Path) -> None:
    f1, f2 = _two_files(tmp_path)
    thread = Threads.create(
        messages=[
            {"role": "user", "content": CAT, "file_ids": [f1], "metadata": {"turn": "1"}},
            {"role": "assistant", "content": "Which colour should the cat be?"},
            {"role": "user", "content": "Blue-grey.", "file_ids": [f1, f2]},
        ],
        metadata={"session_owner": "User123"},
    )
    assert_ok(thread)
    assert thread.metadata == {"session_owner": "User123"}

    listed = Messages.list(thread.id)
    assert_ok(listed)
    assert [m.role for m in listed.data] == ["user", "assistant", "user"]  # newest first
    assert [_text(m) for m in listed.data] == [
        "Blue-grey.",
        "Which colour should the cat be?",
        CAT,
    ]
    newest, _, oldest = listed.data
    assert newest.file_ids == [f1, f2] and oldest.file_ids == [f1]
    assert oldest.metadata == {"turn": "1"} and newest.metadata == {}
    assert all(m.thread_id == thread.id and m.object == "thread.message" for m in listed.data)
    assert all(m.assistant_id is None and m.run_id is None for m in listed.data)
    as_json(listed)


def test_retrieve_thread(ds: str) -> None:
    thread = Threads.create(metadata={"k": "v"})
    for found in (Threads.retrieve(thread.id), Threads.get(thread.id)):
        assert_ok(found)
        assert (found.id, found.created_at, found.metadata, found.object) == (
            thread.id,
            thread.created_at,
            {"k": "v"},
            "thread",
        )
    assert_error(Threads.retrieve("thread_nope"), 404, "NotFound", "thread_nope")


def test_update_thread_metadata(ds: str) -> None:
    thread = Threads.create(metadata={"owner": "User123"})
    changed = Threads.update(thread.id, metadata={"owner": "User456", "tier": "gold"})
    assert_ok(changed)
    assert changed.metadata == {"owner": "User456", "tier": "gold"}
    # No metadata: the SDK sends {"metadata": null}, which leaves it as it is.
    unchanged = Threads.update(thread.id)
    assert_ok(unchanged)
    assert unchanged.metadata == {"owner": "User456", "tier": "gold"}
    assert Threads.retrieve(thread.id).metadata == {"owner": "User456", "tier": "gold"}
    cleared = Threads.update(thread.id, metadata={})
    assert_ok(cleared)
    assert cleared.metadata == {} and Threads.retrieve(thread.id).metadata == {}
    assert (cleared.id, cleared.created_at) == (thread.id, thread.created_at)
    assert_error(Threads.update("thread_nope", metadata={"a": "b"}), 404, "NotFound")


def test_delete_thread_cascades_to_messages(ds: str, tmp_path: Path) -> None:
    f1, _ = _two_files(tmp_path)
    thread = Threads.create(messages=[{"role": "user", "content": CAT}])
    message = Messages.create(thread.id, content="Another one.", file_ids=[f1])
    assert_ok(message)
    other = Threads.create(messages=[{"role": "user", "content": "I stay."}])

    deleted = Threads.delete(thread.id)
    assert_ok(deleted)
    assert (deleted.id, deleted.deleted) == (thread.id, True)
    as_json(deleted)

    assert_error(Threads.retrieve(thread.id), 404, "NotFound", thread.id)
    assert_error(Messages.retrieve(message.id, thread_id=thread.id), 404, "NotFound")
    assert_error(Messages.list(thread.id), 404, "NotFound", thread.id)
    assert_error(Messages.create(thread.id, content="late"), 404, "NotFound", thread.id)
    assert_error(
        Messages.update(message.id, thread_id=thread.id, metadata={"a": "b"}), 404, "NotFound"
    )
    assert_error(message_files.Files.list(message.id, thread_id=thread.id), 404, "NotFound")
    assert_error(
        message_files.Files.retrieve(f1, thread_id=thread.id, message_id=message.id),
        404,
        "NotFound",
    )
    assert_error(Threads.delete(thread.id), 404, "NotFound")
    # The other thread is untouched.
    assert [_text(m) for m in Messages.list(other.id).data] == ["I stay."]


def test_message_create_retrieve_update(ds: str, tmp_path: Path) -> None:
    f1, f2 = _two_files(tmp_path)
    thread = Threads.create()
    message = Messages.create(
        thread.id, content=CAT, role="user", file_ids=[f1, f2], metadata={"lang": "en"}
    )
    assert_ok(message)
    assert message.id.startswith("msg_")
    assert (message.thread_id, message.role, message.object) == (
        thread.id,
        "user",
        "thread.message",
    )
    assert message.file_ids == [f1, f2]
    assert message.metadata == {"lang": "en"}
    assert isinstance(message.created_at, int) and message.created_at > 10**12
    assert len(message.content) == 1
    part = message.content[0]
    assert part.type == "text" and part.text.value == CAT and part.text.annotations == []

    for found in (
        Messages.retrieve(message.id, thread_id=thread.id),
        Messages.get(message.id, thread_id=thread.id),
    ):
        assert_ok(found)
        expected = as_json(message)
        got = as_json(found)
        assert got.pop("request_id") != expected.pop("request_id")
        assert got == expected

    updated = Messages.update(message.id, thread_id=thread.id, metadata={"lang": "fr", "n": "2"})
    assert_ok(updated)
    assert updated.metadata == {"lang": "fr", "n": "2"}
    assert _text(updated) == CAT and updated.file_ids == [f1, f2]
    unchanged = Messages.update(message.id, thread_id=thread.id)  # sends metadata: null
    assert_ok(unchanged)
    assert unchanged.metadata == {"lang": "fr", "n": "2"}
    cleared = Messages.update(message.id, thread_id=thread.id, metadata={})
    assert_ok(cleared)
    assert Messages.retrieve(message.id, thread_id=thread.id).metadata == {}


def test_assistant_role_and_text_parts(ds: str) -> None:
    thread = Threads.create()
    reply = Messages.create(thread.id, content="Here is your cat.", role="assistant")
    assert_ok(reply)
    assert reply.role == "assistant"
    parts = Messages.create(
        thread.id,
        content=[{"type": "text", "text": "first part"}, {"type": "text", "text": "second"}],
    )
    assert_ok(parts)
    assert [p.text.value for p in parts.content] == ["first part", "second"]


def test_messages_are_listed_newest_first(ds: str) -> None:
    thread = Threads.create()
    ids = [Messages.create(thread.id, content=f"message {i}").id for i in range(5)]
    listed = Messages.list(thread.id)
    assert [m.id for m in listed.data] == ids[::-1]
    assert (listed.first_id, listed.last_id, listed.has_more) == (ids[4], ids[0], False)
    assert _text(listed.data[0]) == "message 4"
    ascending = Messages.list(thread.id, order="asc")
    assert [m.id for m in ascending.data] == ids


def test_message_belongs_to_its_thread(ds: str) -> None:
    one = Threads.create()
    two = Threads.create()
    message = Messages.create(one.id, content="in thread one")
    assert_error(Messages.retrieve(message.id, thread_id=two.id), 404, "NotFound", message.id)
    assert_error(Messages.update(message.id, thread_id=two.id, metadata={}), 404, "NotFound")
    assert Messages.list(two.id).data == []
    assert_error(Messages.retrieve("msg_nope", thread_id=one.id), 404, "NotFound", "msg_nope")


def test_message_files_list_and_retrieve(ds: str, tmp_path: Path) -> None:
    f1, f2 = _two_files(tmp_path)
    thread = Threads.create()
    message = Messages.create(thread.id, content=CAT, file_ids=[f1, f2])

    listed = message_files.Files.list(message.id, thread_id=thread.id)
    assert_ok(listed)
    assert [f.id for f in listed.data] == [f2, f1]  # newest first, like every list
    assert all(f.message_id == message.id for f in listed.data)
    assert all(f.object == "thread.message.file" for f in listed.data)
    assert (listed.first_id, listed.last_id, listed.has_more) == (f2, f1, False)
    as_json(listed)
    ascending = message_files.Files.list(message.id, thread_id=thread.id, order="asc")
    assert [f.id for f in ascending.data] == [f1, f2]
    one = message_files.Files.list(message.id, thread_id=thread.id, order="asc", limit=1)
    assert ([f.id for f in one.data], one.has_more) == ([f1], True)
    rest = message_files.Files.list(message.id, thread_id=thread.id, order="asc", limit=1, after=f1)
    assert ([f.id for f in rest.data], rest.has_more) == ([f2], False)

    for getter in (message_files.Files.retrieve, message_files.Files.get):
        found = getter(f1, thread_id=thread.id, message_id=message.id)
        assert_ok(found)
        assert (found.id, found.message_id, found.object) == (
            f1,
            message.id,
            "thread.message.file",
        )
        assert isinstance(found.created_at, int)
        as_json(found)

    plain = Messages.create(thread.id, content="no files")
    assert message_files.Files.list(plain.id, thread_id=thread.id).data == []
    assert_error(
        message_files.Files.retrieve(f1, thread_id=thread.id, message_id=plain.id),
        404,
        "NotFound",
        f1,
    )


def test_message_referencing_a_missing_file(ds: str, tmp_path: Path) -> None:
    f1, _ = _two_files(tmp_path)
    thread = Threads.create()
    bad = Messages.create(thread.id, content=CAT, file_ids=[f1, "file_missing"])
    assert_error(bad, 400, "InvalidParameter", "file_ids", "file_missing")
    assert Messages.list(thread.id).data == []
    bad_thread = Threads.create(
        messages=[
            {"role": "user", "content": "ok"},
            {"role": "user", "content": CAT, "file_ids": ["file_missing"]},
        ]
    )
    assert_error(bad_thread, 400, "InvalidParameter", "messages[1].file_ids", "file_missing")


def test_bad_messages(ds: str) -> None:
    thread = Threads.create()
    assert_error(
        Messages.create(thread.id, content=CAT, role="system"), 400, "InvalidParameter", "role"
    )
    assert_error(Messages.create(thread.id, content=12345), 400, "InvalidParameter", "content")
    assert_error(
        Messages.create(thread.id, content=[{"type": "image_url"}]),
        400,
        "InvalidParameter",
        "content[0]",
    )
    assert_error(
        Messages.create(thread.id, content=CAT, metadata={"deep": {"er": 1}}),
        400,
        "InvalidParameter",
        "metadata",
    )
    bad_thread = Threads.create(messages=[{"role": "robot", "content": "hi"}])
    assert_error(bad_thread, 400, "InvalidParameter", "messages[0].role")
    assert Messages.list(thread.id).data == []
