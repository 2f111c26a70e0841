"""The seed's object calls through the unmodified SDK."""

from __future__ import annotations

from dashscope import Assistants, Messages, Threads


def test_seed_object_calls(ds: str) -> None:
    assistant = Assistants.create(model="qwen-max", name="Painter", instructions="Draw.")
    assert assistant.status_code == 200, assistant
    thread = Threads.create()
    assert thread.status_code == 200
    message = Messages.create(thread.id, content="Please help me draw a picture of a ragdoll cat.")
    assert message.status_code == 200
    listed = Messages.list(thread.id)
    assert [m.id for m in listed.data] == [message.id]
    assert listed.data[0].content[0].text.value.startswith("Please help")
    deleted = Threads.delete(thread.id)
    assert deleted.status_code == 200 and deleted.deleted is True
    assert Threads.retrieve(thread.id).status_code == 404
