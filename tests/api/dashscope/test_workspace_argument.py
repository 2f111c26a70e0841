"""Seed flow F7: every call may pass `workspace="<id>"` (the X-DashScope-WorkSpace header).
An admin key of `default` acting with workspace=<id> creates objects that are visible
there only; deleting in one workspace never touches another."""

from __future__ import annotations

from pathlib import Path

import dashscope
import httpx
from dashscope import Assistants, Messages, Threads
from dashscope.assistants import files as assistant_files

from tests.conftest import make_workspace
from tests.support.sdk import assert_error, assert_ok, upload
from tests.support.server import RunningServer


def test_objects_live_in_the_named_workspace(
    server: RunningServer, admin: httpx.Client, ds: str
) -> None:
    ws_a, key_a = ds, dashscope.api_key
    ws_b, key_b = make_workspace(admin)
    root = server.admin_key

    assistant = Assistants.create(
        model="qwen-max", name="tenant A", metadata={"owner": "a"}, workspace=ws_a, api_key=root
    )
    assert_ok(assistant)
    thread = Threads.create(metadata={"session_owner": "User123"}, workspace=ws_a, api_key=root)
    assert_ok(thread)
    message = Messages.create(thread.id, content="hello from A", workspace=ws_a, api_key=root)
    assert_ok(message)

    # Visible with workspace=A, and to A's own key without the argument.
    found = Assistants.retrieve(assistant_id=assistant.id, workspace=ws_a, api_key=root)
    assert_ok(found)
    assert found.name == "tenant A"
    assert [a.id for a in Assistants.list(api_key=key_a).data] == [assistant.id]
    assert Threads.retrieve(thread.id, api_key=key_a).metadata == {"session_owner": "User123"}
    listed = Messages.list(thread.id, api_key=key_a)
    assert [m.id for m in listed.data] == [message.id]

    # Invisible from B (by workspace argument or by B's key) and from the admin's own
    # workspace.
    for kwargs in ({"workspace": ws_b, "api_key": root}, {"api_key": key_b}, {"api_key": root}):
        assert_error(Assistants.retrieve(assistant.id, **kwargs), 404, "NotFound")
        assert_error(Threads.retrieve(thread.id, **kwargs), 404, "NotFound")
        assert_error(Messages.list(thread.id, **kwargs), 404, "NotFound")
        assert assistant.id not in [a.id for a in Assistants.list(**kwargs).data]

    # Deleting in B touches nothing in A.
    assert_error(
        Assistants.delete(assistant_id=assistant.id, workspace=ws_b, api_key=root), 404, "NotFound"
    )
    assert_error(Threads.delete(thread.id, workspace=ws_b, api_key=root), 404, "NotFound")
    assert_ok(Assistants.retrieve(assistant.id, api_key=key_a))
    assert_ok(Threads.retrieve(thread.id, api_key=key_a))

    deleted = Assistants.delete(assistant_id=assistant.id, workspace=ws_a, api_key=root)
    assert_ok(deleted)
    assert deleted.deleted is True
    assert_error(Assistants.retrieve(assistant.id, api_key=key_a), 404, "NotFound")


def test_same_calls_in_two_workspaces_stay_apart(
    server: RunningServer, admin: httpx.Client, ds: str
) -> None:
    ws_a = ds
    ws_b, _ = make_workspace(admin)
    root = server.admin_key
    in_a = Assistants.create(model="qwen-max", name="same", workspace=ws_a, api_key=root)
    in_b = Assistants.create(model="qwen-max", name="same", workspace=ws_b, api_key=root)
    assert in_a.id != in_b.id
    assert [a.id for a in Assistants.list(workspace=ws_a, api_key=root).data] == [in_a.id]
    assert [a.id for a in Assistants.list(workspace=ws_b, api_key=root).data] == [in_b.id]
    assert_ok(Assistants.delete(in_b.id, workspace=ws_b, api_key=root))
    assert [a.id for a in Assistants.list(workspace=ws_a, api_key=root).data] == [in_a.id]


def test_files_follow_the_workspace(
    server: RunningServer, admin: httpx.Client, ds: str, text_file: Path
) -> None:
    ws_a, key_a = ds, dashscope.api_key
    ws_b, key_b = make_workspace(admin)
    root = server.admin_key
    file_a = upload(text_file, workspace=ws_a, api_key=root)
    file_b = upload(text_file, api_key=key_b)

    listed_a = dashscope.Files.list(api_key=key_a)
    assert [f["file_id"] for f in listed_a.output["files"]] == [file_a]
    listed_b = dashscope.Files.list(workspace=ws_b, api_key=root)
    assert [f["file_id"] for f in listed_b.output["files"]] == [file_b]
    assert dashscope.Files.get(file_b, api_key=key_a).status_code == 404

    # A file of B cannot be attached to an assistant of A, even by the admin key.
    assistant = Assistants.create(model="qwen-max", workspace=ws_a, api_key=root)
    refused = assistant_files.Files.create(
        assistant.id, file_id=file_b, workspace=ws_a, api_key=root
    )
    assert_error(refused, 400, "InvalidParameter", file_b)
    attached = assistant_files.Files.create(
        assistant.id, file_id=file_a, workspace=ws_a, api_key=root
    )
    assert_ok(attached)
    assert Assistants.retrieve(assistant.id, api_key=key_a).file_ids == [file_a]


def test_a_plain_key_cannot_name_another_workspace(admin: httpx.Client, ds: str) -> None:
    ws_b, _ = make_workspace(admin)
    refused = Assistants.create(model="qwen-max", workspace=ws_b)
    assert_error(refused, 403, "AccessDenied", ws_b)
    assert_ok(Assistants.list(workspace=ds))  # its own workspace, named, is fine
    assert Assistants.list().data == []
