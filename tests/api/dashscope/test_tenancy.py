"""Tenancy through the real dashscope SDK: another workspace's objects are invisible.

Workspace A owns one object of every kind. A plain key of workspace B then tries every
verb the SDK offers on each of them: each answer must be exactly the answer for an id
that never existed (same status, same code, the same message once the ids are masked),
B's lists never show A's objects, and afterwards A's objects are all as they were.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Threads
from dashscope.assistants import files as assistant_files
from dashscope.threads.messages import files as message_files

from tests.conftest import make_workspace
from tests.support.server import RunningServer

KINDS = ("asst", "thread", "msg", "file")
SENTINEL_KEY = "sk-no-key-was-passed-to-this-call"


@contextmanager
def sdk_at(server: RunningServer) -> Iterator[None]:
    """Points the SDK at the server. The global key is a dud, so every call of these tests
    must name its key: a call that forgot would fail with 401 rather than pass by luck."""
    saved = dashscope.base_http_api_url, dashscope.api_key
    dashscope.base_http_api_url = server.dashscope_url
    dashscope.api_key = SENTINEL_KEY
    try:
        yield
    finally:
        dashscope.base_http_api_url, dashscope.api_key = saved


@pytest.fixture(autouse=True)
def _sdk(server: RunningServer) -> Iterator[None]:
    with sdk_at(server):
        yield


def ok(result: Any) -> Any:
    assert result.status_code == 200, result
    return result


def upload(path: Path, key: str, workspace: str | None = None) -> str:
    uploaded = dashscope.Files.upload(
        str(path), purpose="assistants", api_key=key, workspace=workspace
    )
    assert uploaded.status_code == 200, uploaded
    return str(uploaded.output["uploaded_files"][0]["file_id"])


def populate(key: str, tmp: Path, label: str) -> dict[str, str]:
    """One object of every kind in the key's workspace: a file, an assistant linked to it,
    a thread and a message carrying the file."""
    path = tmp / f"{label}.txt"
    path.write_text(f"the secret notes of workspace {label}\n")
    file_id = upload(path, key)
    assistant = ok(
        Assistants.create(
            model="qwen-max",
            name=f"{label}-assistant",
            instructions=f"{label} only.",
            metadata={"owner": label},
            api_key=key,
        )
    )
    ok(assistant_files.Files.create(assistant.id, file_id=file_id, api_key=key))
    thread = ok(Threads.create(metadata={"owner": label}, api_key=key))
    message = ok(
        Messages.create(
            thread.id,
            content=f"{label} private message",
            file_ids=[file_id],
            metadata={"owner": label},
            api_key=key,
        )
    )
    return {"asst": assistant.id, "thread": thread.id, "msg": message.id, "file": file_id}


def ghost_ids(real: dict[str, str]) -> dict[str, str]:
    """Ids of the same shape that no workspace has ever used."""
    return {kind: f"{real[kind].split('_')[0]}_{secrets.token_hex(12)}" for kind in KINDS}


@dataclass
class World:
    server: RunningServer
    ws_a: str
    key_a: str
    ws_b: str
    key_b: str
    a: dict[str, str]  # A's objects
    b: dict[str, str]  # B's own objects, for the verbs that mix B's parents with A's ids
    ghost: dict[str, str]
    snapshot: dict[str, Any]


def snapshot(server: RunningServer, key: str, ids: dict[str, str]) -> dict[str, Any]:
    """Everything workspace A can see of its objects, read with A's key."""
    assistant = ok(Assistants.retrieve(ids["asst"], api_key=key))
    thread = ok(Threads.retrieve(ids["thread"], api_key=key))
    messages = ok(Messages.list(ids["thread"], api_key=key)).data
    file_info = dashscope.Files.get(ids["file"], api_key=key)
    assert file_info.status_code == 200, file_info
    content = httpx.get(
        f"{server.dashscope_url}/files/{ids['file']}/content",
        headers={"Authorization": f"Bearer {key}"},
    )
    assert content.status_code == 200, content.text
    afiles = ok(assistant_files.Files.list(ids["asst"], api_key=key)).data
    mfiles = ok(message_files.Files.list(ids["msg"], thread_id=ids["thread"], api_key=key)).data
    files = dashscope.Files.list(page_size=100, api_key=key)
    assert files.status_code == 200, files
    return {
        "assistant": {
            name: getattr(assistant, name, None)
            for name in ("id", "name", "model", "instructions", "metadata", "file_ids")
        },
        "assistants": [a.id for a in ok(Assistants.list(limit=100, api_key=key)).data],
        "assistant_files": [f.id for f in afiles],
        "thread": (thread.id, thread.metadata),
        "messages": [(m.id, m.content[0].text.value, m.metadata, m.file_ids) for m in messages],
        "message_files": [f.id for f in mfiles],
        "file": dict(file_info.output),
        "files": sorted(f["file_id"] for f in files.output["files"]),
        "content": content.content,
    }


@pytest.fixture(scope="module")
def world(server: RunningServer, tmp_path_factory: pytest.TempPathFactory) -> World:
    tmp = tmp_path_factory.mktemp("tenancy")
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        ws_a, key_a = make_workspace(admin, "tenant-a")
        ws_b, key_b = make_workspace(admin, "tenant-b")
    with sdk_at(server):
        a = populate(key_a, tmp, "A")
        b = populate(key_b, tmp, "B")
        before = snapshot(server, key_a, a)
    assert before["assistant_files"] == [a["file"]] and before["message_files"] == [a["file"]]
    return World(server, ws_a, key_a, ws_b, key_b, a, b, ghost_ids(a), before)


# ---- what an answer looks like, ids masked ----------------------------------------------


def outcome(result: Any, ids: dict[str, str]) -> tuple[Any, ...] | None:
    """(status, code, message with the target ids masked) of an SDK result or an HTTP
    response; None for the SDK calls that turn every failure into None."""
    if result is None:
        return None
    if isinstance(result, httpx.Response):
        body = result.json()
        assert set(body) == {"request_id", "code", "message"}, body
        status, code, message, request_id = (
            result.status_code,
            body["code"],
            body["message"],
            body["request_id"],
        )
    else:
        status, code, message = result.status_code, result.code, result.message
        request_id = result.request_id
    assert request_id, f"no request_id in {result}"
    for kind in KINDS:
        message = message.replace(ids[kind], f"<{kind}>")
    return status, code, message


Call = Callable[[dict[str, str], dict[str, str], str, RunningServer], Any]


def _content(t: dict[str, str], key: str, server: RunningServer) -> httpx.Response:
    return httpx.get(
        f"{server.dashscope_url}/files/{t['file']}/content",
        headers={"Authorization": f"Bearer {key}"},
    )


# Each verb: (t, own, key, server) -> result, where `t` are the target ids (A's objects, or
# ghosts that never existed) and `own` are B's own objects. 404 unless noted.
VERBS: dict[str, tuple[int, Call]] = {
    # assistants
    "Assistants.retrieve": (404, lambda t, o, k, s: Assistants.retrieve(t["asst"], api_key=k)),
    "Assistants.get": (404, lambda t, o, k, s: Assistants.get(t["asst"], api_key=k)),
    "Assistants.update": (
        404,
        lambda t, o, k, s: Assistants.update(t["asst"], name="hijacked", api_key=k),
    ),
    "Assistants.update(metadata, instructions)": (
        404,
        lambda t, o, k, s: Assistants.update(
            t["asst"],
            model="qwen-plus",
            instructions="Obey B.",
            metadata={"owner": "B"},
            api_key=k,
        ),
    ),
    "Assistants.delete": (404, lambda t, o, k, s: Assistants.delete(t["asst"], api_key=k)),
    "Assistants.list(after=)": (
        400,
        lambda t, o, k, s: Assistants.list(after=t["asst"], api_key=k),
    ),
    "Assistants.list(before=)": (
        400,
        lambda t, o, k, s: Assistants.list(before=t["asst"], api_key=k),
    ),
    "Assistants.create(file_ids=[A's file])": (
        400,
        lambda t, o, k, s: Assistants.create(model="qwen-max", file_ids=[t["file"]], api_key=k),
    ),
    "Assistants.update(own, file_ids=[A's file])": (
        400,
        lambda t, o, k, s: Assistants.update(o["asst"], file_ids=[t["file"]], api_key=k),
    ),
    # assistant files
    "assistant Files.create": (
        404,
        lambda t, o, k, s: assistant_files.Files.create(t["asst"], file_id=t["file"], api_key=k),
    ),
    "assistant Files.create(own file)": (
        404,
        lambda t, o, k, s: assistant_files.Files.create(t["asst"], file_id=o["file"], api_key=k),
    ),
    "assistant Files.create(own assistant)": (
        400,
        lambda t, o, k, s: assistant_files.Files.create(o["asst"], file_id=t["file"], api_key=k),
    ),
    "assistant Files.list": (
        404,
        lambda t, o, k, s: assistant_files.Files.list(t["asst"], api_key=k),
    ),
    "assistant Files.list(own assistant, after=)": (
        400,
        lambda t, o, k, s: assistant_files.Files.list(o["asst"], after=t["file"], api_key=k),
    ),
    "assistant Files.retrieve": (
        404,
        lambda t, o, k, s: assistant_files.Files.retrieve(
            t["file"], assistant_id=t["asst"], api_key=k
        ),
    ),
    "assistant Files.retrieve(own assistant)": (
        404,
        lambda t, o, k, s: assistant_files.Files.retrieve(
            t["file"], assistant_id=o["asst"], api_key=k
        ),
    ),
    "assistant Files.get": (
        0,  # this SDK call answers None for any failure
        lambda t, o, k, s: assistant_files.Files.get(t["file"], assistant_id=t["asst"], api_key=k),
    ),
    "assistant Files.delete": (
        404,
        lambda t, o, k, s: assistant_files.Files.delete(
            t["file"], assistant_id=t["asst"], api_key=k
        ),
    ),
    "assistant Files.delete(own assistant)": (
        404,
        lambda t, o, k, s: assistant_files.Files.delete(
            t["file"], assistant_id=o["asst"], api_key=k
        ),
    ),
    # threads
    "Threads.retrieve": (404, lambda t, o, k, s: Threads.retrieve(t["thread"], api_key=k)),
    "Threads.get": (404, lambda t, o, k, s: Threads.get(t["thread"], api_key=k)),
    "Threads.update": (
        404,
        lambda t, o, k, s: Threads.update(t["thread"], metadata={"owner": "B"}, api_key=k),
    ),
    "Threads.delete": (404, lambda t, o, k, s: Threads.delete(t["thread"], api_key=k)),
    "Threads.create(messages with A's file)": (
        400,
        lambda t, o, k, s: Threads.create(
            messages=[{"role": "user", "content": "hi", "file_ids": [t["file"]]}], api_key=k
        ),
    ),
    # messages
    "Messages.create": (
        404,
        lambda t, o, k, s: Messages.create(t["thread"], content="from B", api_key=k),
    ),
    "Messages.create(own thread, A's file)": (
        400,
        lambda t, o, k, s: Messages.create(
            o["thread"], content="from B", file_ids=[t["file"]], api_key=k
        ),
    ),
    "Messages.list": (404, lambda t, o, k, s: Messages.list(t["thread"], api_key=k)),
    "Messages.list(own thread, after=)": (
        400,
        lambda t, o, k, s: Messages.list(o["thread"], after=t["msg"], api_key=k),
    ),
    "Messages.retrieve": (
        404,
        lambda t, o, k, s: Messages.retrieve(t["msg"], thread_id=t["thread"], api_key=k),
    ),
    "Messages.retrieve(own thread)": (
        404,
        lambda t, o, k, s: Messages.retrieve(t["msg"], thread_id=o["thread"], api_key=k),
    ),
    "Messages.get": (
        404,
        lambda t, o, k, s: Messages.get(t["msg"], thread_id=t["thread"], api_key=k),
    ),
    "Messages.update": (
        404,
        lambda t, o, k, s: Messages.update(
            t["msg"], thread_id=t["thread"], metadata={"owner": "B"}, api_key=k
        ),
    ),
    "Messages.update(own thread)": (
        404,
        lambda t, o, k, s: Messages.update(
            t["msg"], thread_id=o["thread"], metadata={"owner": "B"}, api_key=k
        ),
    ),
    # message files
    "message Files.list": (
        404,
        lambda t, o, k, s: message_files.Files.list(t["msg"], thread_id=t["thread"], api_key=k),
    ),
    "message Files.list(own thread)": (
        404,
        lambda t, o, k, s: message_files.Files.list(t["msg"], thread_id=o["thread"], api_key=k),
    ),
    "message Files.retrieve": (
        404,
        lambda t, o, k, s: message_files.Files.retrieve(
            t["file"], thread_id=t["thread"], message_id=t["msg"], api_key=k
        ),
    ),
    "message Files.retrieve(own message)": (
        404,
        lambda t, o, k, s: message_files.Files.retrieve(
            t["file"], thread_id=o["thread"], message_id=o["msg"], api_key=k
        ),
    ),
    "message Files.get": (
        404,
        lambda t, o, k, s: message_files.Files.get(
            t["file"], thread_id=t["thread"], message_id=t["msg"], api_key=k
        ),
    ),
    # files
    "Files.get": (404, lambda t, o, k, s: dashscope.Files.get(t["file"], api_key=k)),
    "Files.delete": (404, lambda t, o, k, s: dashscope.Files.delete(t["file"], api_key=k)),
    "GET /files/{id}/content": (404, lambda t, o, k, s: _content(t, k, s)),
}


@pytest.mark.parametrize("verb", list(VERBS))
def test_foreign_object_answers_like_a_missing_one(world: World, verb: str) -> None:
    expected_status, call = VERBS[verb]
    foreign = outcome(call(world.a, world.b, world.key_b, world.server), world.a)
    missing = outcome(call(world.ghost, world.b, world.key_b, world.server), world.ghost)
    assert foreign == missing
    if expected_status:
        assert missing is not None
        code = "NotFound" if expected_status == 404 else "InvalidParameter"
        assert missing[:2] == (expected_status, code)
    else:
        assert missing is None
    assert snapshot(world.server, world.key_a, world.a) == world.snapshot


# ---- B's lists never show A's objects ---------------------------------------------------

LISTS: dict[str, Callable[[World], list[str]]] = {
    "Assistants.list": lambda w: [
        a.id for a in ok(Assistants.list(limit=100, api_key=w.key_b)).data
    ],
    "Assistants.list(asc)": lambda w: [
        a.id for a in ok(Assistants.list(limit=100, order="asc", api_key=w.key_b)).data
    ],
    "assistant Files.list": lambda w: [
        f.id for f in ok(assistant_files.Files.list(w.b["asst"], api_key=w.key_b)).data
    ],
    "Messages.list": lambda w: [
        m.id for m in ok(Messages.list(w.b["thread"], limit=100, api_key=w.key_b)).data
    ],
    "message Files.list": lambda w: [
        f.id
        for f in ok(
            message_files.Files.list(w.b["msg"], thread_id=w.b["thread"], api_key=w.key_b)
        ).data
    ],
    "Files.list": lambda w: [
        f["file_id"] for f in dashscope.Files.list(page_size=100, api_key=w.key_b).output["files"]
    ],
}


@pytest.mark.parametrize("listing", list(LISTS))
def test_lists_never_show_foreign_objects(world: World, listing: str) -> None:
    seen = LISTS[listing](world)
    assert seen, "B's own object should be listed"
    assert set(seen) <= set(world.b.values())
    assert not set(seen) & set(world.a.values())


def test_file_listing_total_counts_only_own_files(world: World) -> None:
    listed = dashscope.Files.list(page_size=100, api_key=world.key_b)
    assert listed.status_code == 200, listed
    assert listed.output["total"] == len(listed.output["files"]) == 1


def test_foreign_objects_are_intact(world: World) -> None:
    after = snapshot(world.server, world.key_a, world.a)
    assert after == world.snapshot
    assert after["assistant"]["name"] == "A-assistant"
    assert after["thread"][1] == {"owner": "A"}
    assert after["messages"][0][1] == "A private message"
    assert after["content"] == b"the secret notes of workspace A\n"


# ---- naming a workspace -----------------------------------------------------------------


def test_plain_key_naming_another_workspace_is_denied(world: World) -> None:
    """403 whether the named workspace exists or not, with the same message: the answer
    does not tell B which workspaces exist."""
    messages = set()
    for target in (world.ws_a, "default", f"ws_{secrets.token_hex(12)}", "no-such-name"):
        denied = Assistants.retrieve(world.a["asst"], workspace=target, api_key=world.key_b)
        assert (denied.status_code, denied.code) == (403, "AccessDenied"), (target, denied)
        assert denied.message and denied.request_id
        messages.add(denied.message.replace(target, "<workspace>"))
        listed = Assistants.list(workspace=target, api_key=world.key_b)
        assert (listed.status_code, listed.code) == (403, "AccessDenied")
        assert listed.data == []
        created = Assistants.create(model="qwen-max", workspace=target, api_key=world.key_b)
        assert (created.status_code, created.code) == (403, "AccessDenied")
        files = dashscope.Files.get(world.a["file"], workspace=target, api_key=world.key_b)
        assert (files.status_code, files.code) == (403, "AccessDenied")
    assert len(messages) == 1, messages
    assert snapshot(world.server, world.key_a, world.a) == world.snapshot


def test_plain_key_may_name_its_own_workspace(world: World) -> None:
    for own in (world.ws_b, name_of(world, world.ws_b)):
        found = ok(Assistants.retrieve(world.b["asst"], workspace=own, api_key=world.key_b))
        assert found.name == "B-assistant"
        missing = Assistants.retrieve(world.a["asst"], workspace=own, api_key=world.key_b)
        assert (missing.status_code, missing.code) == (404, "NotFound")


def name_of(world: World, ws_id: str) -> str:
    headers = {"Authorization": f"Bearer {world.server.admin_key}"}
    listed = httpx.get(f"{world.server.base_url}/admin/v1/workspaces", headers=headers).json()
    return next(str(w["name"]) for w in listed["data"] if w["id"] == ws_id)


def test_default_admin_key_acts_in_any_workspace(world: World) -> None:
    admin_key = world.server.admin_key
    # Without `workspace=` the admin key acts in `default`, where A's objects do not exist.
    assert Assistants.retrieve(world.a["asst"], api_key=admin_key).status_code == 404
    for target in (world.ws_a, name_of(world, world.ws_a)):
        found = ok(Assistants.retrieve(world.a["asst"], workspace=target, api_key=admin_key))
        assert found.name == "A-assistant"
        listed = ok(Assistants.list(limit=100, workspace=target, api_key=admin_key))
        assert [a.id for a in listed.data] == [world.a["asst"]]
        messages = ok(Messages.list(world.a["thread"], workspace=target, api_key=admin_key))
        assert [m.id for m in messages.data] == [world.a["msg"]]
        info = dashscope.Files.get(world.a["file"], workspace=target, api_key=admin_key)
        assert info.status_code == 200, info
    # ... and a message it writes with `workspace=A` lands in A only.
    written = ok(Threads.create(metadata={"by": "admin"}, workspace=world.ws_a, api_key=admin_key))
    assert ok(Threads.retrieve(written.id, api_key=world.key_a)).metadata == {"by": "admin"}
    assert Threads.retrieve(written.id, api_key=world.key_b).status_code == 404
    ok(Threads.delete(written.id, workspace=world.ws_a, api_key=admin_key))
    assert Threads.retrieve(written.id, api_key=world.key_a).status_code == 404


def test_workspace_admin_key_cannot_reach_other_workspaces(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.server.admin_key}"}
    made = httpx.post(
        f"{world.server.base_url}/admin/v1/keys",
        json={"workspace": world.ws_b, "admin": True},
        headers=headers,
    )
    assert made.status_code == 200, made.text
    b_admin = made.json()["key"]
    assert ok(Assistants.retrieve(world.b["asst"], api_key=b_admin)).name == "B-assistant"
    denied = Assistants.retrieve(world.a["asst"], workspace=world.ws_a, api_key=b_admin)
    assert (denied.status_code, denied.code) == (403, "AccessDenied")
    hidden = Assistants.retrieve(world.a["asst"], api_key=b_admin)
    assert (hidden.status_code, hidden.code) == (404, "NotFound")


# ---- F7: the SDK's `workspace=` argument ------------------------------------------------


def test_f7_workspace_argument(world: World) -> None:
    """Seed flow F7: create, retrieve and delete with `workspace=`; deleting in one
    workspace never touches another."""
    key = world.server.admin_key
    in_a = ok(
        Assistants.create(
            model="qwen-max",
            name="F7 in A",
            workspace=world.ws_a,
            api_key=key,
        )
    )
    in_b = ok(
        Assistants.create(model="qwen-max", name="F7 in B", workspace=world.ws_b, api_key=key)
    )
    thread = ok(Threads.create(metadata={"flow": "F7"}, workspace=world.ws_a, api_key=key))
    found = ok(Assistants.retrieve(assistant_id=in_a.id, workspace=world.ws_a, api_key=key))
    assert found.name == "F7 in A"
    # Each workspace sees only its own; the workspace's own keys see the same.
    elsewhere = Assistants.retrieve(assistant_id=in_a.id, workspace=world.ws_b, api_key=key)
    assert elsewhere.status_code == 404
    assert ok(Assistants.retrieve(in_a.id, api_key=world.key_a)).name == "F7 in A"
    assert Assistants.retrieve(in_a.id, api_key=world.key_b).status_code == 404
    assert Threads.retrieve(thread.id, workspace=world.ws_b, api_key=key).status_code == 404
    # Deleting A's assistant in B's workspace deletes nothing.
    wrong = Assistants.delete(assistant_id=in_a.id, workspace=world.ws_b, api_key=key)
    assert (wrong.status_code, wrong.code) == (404, "NotFound")
    assert ok(Assistants.retrieve(assistant_id=in_a.id, workspace=world.ws_a, api_key=key))
    # Deleting it in A deletes it there, and B's assistant stays.
    deleted = ok(Assistants.delete(assistant_id=in_a.id, workspace=world.ws_a, api_key=key))
    assert deleted.deleted is True and deleted.id == in_a.id
    gone = Assistants.retrieve(assistant_id=in_a.id, workspace=world.ws_a, api_key=key)
    assert gone.status_code == 404
    assert ok(Assistants.retrieve(assistant_id=in_b.id, workspace=world.ws_b, api_key=key))
    ok(Assistants.delete(assistant_id=in_b.id, workspace=world.ws_b, api_key=key))
    ok(Threads.delete(thread.id, workspace=world.ws_a, api_key=key))
    assert snapshot(world.server, world.key_a, world.a) == world.snapshot


# ---- keys: missing, wrong, revoked ------------------------------------------------------


def _invalid_key(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"request_id", "code", "message"}, body
    assert body["code"] == "InvalidApiKey"
    assert body["message"] and body["request_id"]


BAD_AUTH: dict[str, dict[str, str]] = {
    "no Authorization": {},
    "bearer without key": {"Authorization": "Bearer"},
    "not bearer": {"Authorization": "Basic dXNlcjpwYXNz"},
    "unknown key": {"Authorization": "Bearer sk-assistd-not-a-real-key"},
    "key without scheme": {"Authorization": "sk-test-admin"},
}


@pytest.mark.parametrize("auth", list(BAD_AUTH))
@pytest.mark.parametrize(
    "method,path",
    [
        ("GET", "/api/v1/assistants"),
        ("POST", "/api/v1/threads"),
        ("GET", "/api/v1/files"),
        ("GET", "/admin/v1/keys"),
    ],
)
def test_missing_or_wrong_key_is_401(
    server: RunningServer, auth: str, method: str, path: str
) -> None:
    response = httpx.request(
        method,
        f"{server.base_url}{path}",
        headers=BAD_AUTH[auth],
        json={} if method == "POST" else None,
    )
    _invalid_key(response)


def test_wrong_key_through_the_sdk(world: World) -> None:
    for key in ("sk-assistd-wrong", world.key_b + "x", world.key_b[:-1]):
        result = Assistants.retrieve(world.b["asst"], api_key=key)
        assert (result.status_code, result.code) == (401, "InvalidApiKey"), result
        assert result.message and result.request_id
        listed = Messages.list(world.b["thread"], api_key=key)
        assert (listed.status_code, listed.code) == (401, "InvalidApiKey")
        assert dashscope.Files.list(api_key=key).status_code == 401


def _new_key(world: World) -> tuple[str, str]:
    headers = {"Authorization": f"Bearer {world.server.admin_key}"}
    made = httpx.post(
        f"{world.server.base_url}/admin/v1/keys", json={"workspace": world.ws_b}, headers=headers
    )
    assert made.status_code == 200, made.text
    return made.json()["id"], made.json()["key"]


def _revoke_with_api(world: World, key_id: str) -> None:
    headers = {"Authorization": f"Bearer {world.server.admin_key}"}
    revoked = httpx.post(f"{world.server.base_url}/admin/v1/keys/{key_id}/revoke", headers=headers)
    assert revoked.status_code == 200, revoked.text
    assert revoked.json()["revoked_at"]


def _revoke_with_cli(world: World, key_id: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "assistd", "key", "revoke", key_id],
        env=world.server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr


@pytest.mark.parametrize("revoke", [_revoke_with_api, _revoke_with_cli], ids=["api", "cli"])
def test_revoked_key_stops_working_at_once(
    world: World, revoke: Callable[[World, str], None]
) -> None:
    key_id, key = _new_key(world)
    assert ok(Assistants.retrieve(world.b["asst"], api_key=key)).name == "B-assistant"
    assert ok(Assistants.list(api_key=key))
    revoke(world, key_id)
    refused = Assistants.retrieve(world.b["asst"], api_key=key)
    assert (refused.status_code, refused.code) == (401, "InvalidApiKey"), refused
    _invalid_key(
        httpx.get(
            f"{world.server.dashscope_url}/assistants", headers={"Authorization": f"Bearer {key}"}
        )
    )
    # Other keys of the workspace keep working, and nothing of B was touched.
    assert ok(Assistants.retrieve(world.b["asst"], api_key=world.key_b)).name == "B-assistant"
