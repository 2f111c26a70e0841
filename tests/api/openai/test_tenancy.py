"""Tenancy on /v1 through the real openai SDK: another workspace's objects are invisible.

Workspace A owns one object of every kind the /v1 verbs here reach. A plain key of
workspace B then tries every verb on each of them: each answer must be exactly the answer
for an id that never existed (same status, type, param, code and message once the ids
are masked), B's lists never show A's objects, and afterwards A's objects are as they were.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import openai
import pytest

from tests.api.openai.conftest import sdk
from tests.conftest import make_workspace
from tests.support.server import RunningServer

KINDS = ("asst", "thread", "msg", "file", "vs", "vsfb")


@dataclass
class World:
    a: dict[str, str]  # A's objects
    b: dict[str, str]  # B's own objects, for verbs that mix B's parents with A's ids
    ghost: dict[str, str]  # ids of the same shape that no workspace has used
    key_a: str
    key_b: str
    before: dict[str, Any]


def populate(client: openai.OpenAI, label: str) -> dict[str, str]:
    file = client.files.create(
        file=(f"{label}.txt", f"{label}'s notes".encode()), purpose="assistants"
    )
    assistant = client.beta.assistants.create(
        model="m",
        name=f"{label}-assistant",
        tools=[{"type": "code_interpreter"}],
        tool_resources={"code_interpreter": {"file_ids": [file.id]}},
        metadata={"owner": label},
    )
    thread = client.beta.threads.create(
        metadata={"owner": label}, tool_resources={"code_interpreter": {"file_ids": [file.id]}}
    )
    message = client.beta.threads.messages.create(
        thread.id,
        role="user",
        content=f"{label}'s message",
        attachments=[{"file_id": file.id, "tools": [{"type": "code_interpreter"}]}],
        metadata={"owner": label},
    )
    store = client.vector_stores.create(name=f"{label}-store", metadata={"owner": label})
    batches = client.vector_stores.file_batches
    made = batches.create(store.id, file_ids=[file.id], attributes={"owner": label})
    batch = batches.poll(made.id, vector_store_id=store.id, poll_interval_ms=50)
    return {
        "asst": assistant.id, "thread": thread.id, "msg": message.id, "file": file.id,
        "vs": store.id, "vsfb": batch.id,
    }  # fmt: skip


def snapshot(client: openai.OpenAI, ids: dict[str, str]) -> dict[str, Any]:
    """Everything A can see of its objects, read with A's key."""
    thread, message = ids["thread"], ids["msg"]
    return {
        "assistant": client.beta.assistants.retrieve(ids["asst"]).model_dump(),
        "assistants": [a.id for a in client.beta.assistants.list()],
        "thread": client.beta.threads.retrieve(thread).model_dump(),
        "messages": [m.model_dump() for m in client.beta.threads.messages.list(thread)],
        "message": client.beta.threads.messages.retrieve(message, thread_id=thread).model_dump(),
        "file": client.files.retrieve(ids["file"]).model_dump(),
        "files": [f.id for f in client.files.list()],
        "content": client.files.content(ids["file"]).content,
        **_knowledge_snapshot(client, ids),
    }


def _knowledge_snapshot(client: openai.OpenAI, ids: dict[str, str]) -> dict[str, Any]:
    vs, file, batch = ids["vs"], ids["file"], ids["vsfb"]
    files = client.vector_stores.files
    batches = client.vector_stores.file_batches
    return {
        "vector_store": client.vector_stores.retrieve(vs).model_dump(),
        "vector_stores": [s.id for s in client.vector_stores.list()],
        "vs_files": [f.model_dump() for f in files.list(vs)],
        "vs_file": files.retrieve(file, vector_store_id=vs).model_dump(),
        "vs_content": [p.model_dump() for p in files.content(file, vector_store_id=vs)],
        "batch": batches.retrieve(batch, vector_store_id=vs).model_dump(),
        "batch_files": [f.id for f in batches.list_files(batch, vector_store_id=vs)],
    }


@pytest.fixture(scope="module")
def world(server: RunningServer) -> Iterator[World]:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        _, key_a = make_workspace(admin, "oai-tenant-a")
        _, key_b = make_workspace(admin, "oai-tenant-b")
    with sdk(server, key_a) as a_client, sdk(server, key_b) as b_client:
        a = populate(a_client, "A")
        b = populate(b_client, "B")
        before = snapshot(a_client, a)
    ghost = {kind: f"{a[kind].split('_')[0]}_{secrets.token_hex(12)}" for kind in KINDS}
    yield World(a, b, ghost, key_a, key_b, before)


def outcome(call: Callable[[], Any], ids: dict[str, str]) -> tuple[Any, ...]:
    """(status, type, param, code, message with the target ids masked) of a refused call."""
    try:
        result = call()
    except openai.APIStatusError as exc:
        body = exc.body if isinstance(exc.body, dict) else {}
        message = str(body.get("message"))
        for kind in KINDS:
            message = message.replace(ids[kind], f"<{kind}>")
        return exc.status_code, body.get("type"), body.get("param"), body.get("code"), message
    raise AssertionError(f"the call was not refused: {result!r}")


Verb = Callable[[openai.OpenAI, dict[str, str], dict[str, str]], Any]


def _file_resources(t: dict[str, str]) -> Any:
    return {"code_interpreter": {"file_ids": [t["file"]]}}


def _attached(t: dict[str, str]) -> Any:
    return [{"file_id": t["file"], "tools": [{"type": "code_interpreter"}]}]


# Each verb: (B's client, target ids (A's, or ghosts), B's own ids) -> the call's result.
VERBS: dict[str, tuple[int, Verb]] = {
    "assistants.retrieve": (404, lambda c, t, o: c.beta.assistants.retrieve(t["asst"])),
    "assistants.update": (
        404,
        lambda c, t, o: c.beta.assistants.update(t["asst"], name="hijacked", metadata={"o": "B"}),
    ),
    "assistants.delete": (404, lambda c, t, o: c.beta.assistants.delete(t["asst"])),
    "assistants.list(after=)": (400, lambda c, t, o: c.beta.assistants.list(after=t["asst"])),
    "assistants.list(before=)": (400, lambda c, t, o: c.beta.assistants.list(before=t["asst"])),
    "assistants.create(tool_resources=A's file)": (
        400,
        lambda c, t, o: c.beta.assistants.create(model="m", tool_resources=_file_resources(t)),
    ),
    "assistants.update(B's, tool_resources=A's file)": (
        400,
        lambda c, t, o: c.beta.assistants.update(o["asst"], tool_resources=_file_resources(t)),
    ),
    "threads.retrieve": (404, lambda c, t, o: c.beta.threads.retrieve(t["thread"])),
    "threads.update": (
        404,
        lambda c, t, o: c.beta.threads.update(t["thread"], metadata={"owner": "B"}),
    ),
    "threads.delete": (404, lambda c, t, o: c.beta.threads.delete(t["thread"])),
    "threads.create(tool_resources=A's file)": (
        400,
        lambda c, t, o: c.beta.threads.create(tool_resources=_file_resources(t)),
    ),
    "threads.create(messages with A's file)": (
        400,
        lambda c, t, o: c.beta.threads.create(
            messages=[{"role": "user", "content": "x", "attachments": _attached(t)}]
        ),
    ),
    "threads.update(B's, tool_resources=A's file)": (
        400,
        lambda c, t, o: c.beta.threads.update(o["thread"], tool_resources=_file_resources(t)),
    ),
    "messages.create": (
        404,
        lambda c, t, o: c.beta.threads.messages.create(t["thread"], role="user", content="x"),
    ),
    "messages.create(B's thread, A's file attached)": (
        400,
        lambda c, t, o: c.beta.threads.messages.create(
            o["thread"], role="user", content="x", attachments=_attached(t)
        ),
    ),
    "messages.create(B's thread, A's image)": (
        400,
        lambda c, t, o: c.beta.threads.messages.create(
            o["thread"],
            role="user",
            content=[{"type": "image_file", "image_file": {"file_id": t["file"]}}],
        ),
    ),
    "messages.list": (404, lambda c, t, o: c.beta.threads.messages.list(t["thread"])),
    "messages.list(B's thread, after=A's message)": (
        400,
        lambda c, t, o: c.beta.threads.messages.list(o["thread"], after=t["msg"]),
    ),
    "messages.retrieve": (
        404,
        lambda c, t, o: c.beta.threads.messages.retrieve(t["msg"], thread_id=t["thread"]),
    ),
    "messages.retrieve(B's thread)": (
        404,
        lambda c, t, o: c.beta.threads.messages.retrieve(t["msg"], thread_id=o["thread"]),
    ),
    "messages.update": (
        404,
        lambda c, t, o: c.beta.threads.messages.update(
            t["msg"], thread_id=t["thread"], metadata={"owner": "B"}
        ),
    ),
    "messages.update(B's thread)": (
        404,
        lambda c, t, o: c.beta.threads.messages.update(
            t["msg"], thread_id=o["thread"], metadata={"owner": "B"}
        ),
    ),
    "messages.delete": (
        404,
        lambda c, t, o: c.beta.threads.messages.delete(t["msg"], thread_id=t["thread"]),
    ),
    "messages.delete(B's thread)": (
        404,
        lambda c, t, o: c.beta.threads.messages.delete(t["msg"], thread_id=o["thread"]),
    ),
    "files.retrieve": (404, lambda c, t, o: c.files.retrieve(t["file"])),
    "files.content": (404, lambda c, t, o: c.files.content(t["file"])),
    "files.delete": (404, lambda c, t, o: c.files.delete(t["file"])),
    "files.list(after=)": (400, lambda c, t, o: c.files.list(after=t["file"])),
}
VERBS.update(
    {
        "vector_stores.retrieve": (404, lambda c, t, o: c.vector_stores.retrieve(t["vs"])),
        "vector_stores.update": (
            404,
            lambda c, t, o: c.vector_stores.update(t["vs"], name="hijacked"),
        ),
        "vector_stores.delete": (404, lambda c, t, o: c.vector_stores.delete(t["vs"])),
        "vector_stores.search": (
            404,
            lambda c, t, o: c.vector_stores.search(t["vs"], query="notes"),
        ),
        "vector_stores.list(after=)": (400, lambda c, t, o: c.vector_stores.list(after=t["vs"])),
        "vector_stores.create(file_ids=A's file)": (
            400,
            lambda c, t, o: c.vector_stores.create(file_ids=[t["file"]]),
        ),
        "vs.files.create": (
            404,
            lambda c, t, o: c.vector_stores.files.create(t["vs"], file_id=o["file"]),
        ),
        "vs.files.create(B's store, A's file)": (
            400,
            lambda c, t, o: c.vector_stores.files.create(o["vs"], file_id=t["file"]),
        ),
        "vs.files.list": (404, lambda c, t, o: c.vector_stores.files.list(t["vs"])),
        "vs.files.list(B's store, after=A's file)": (
            400,
            lambda c, t, o: c.vector_stores.files.list(o["vs"], after=t["file"]),
        ),
        "vs.files.retrieve": (
            404,
            lambda c, t, o: c.vector_stores.files.retrieve(t["file"], vector_store_id=t["vs"]),
        ),
        "vs.files.retrieve(B's store)": (
            404,
            lambda c, t, o: c.vector_stores.files.retrieve(t["file"], vector_store_id=o["vs"]),
        ),
        "vs.files.update": (
            404,
            lambda c, t, o: c.vector_stores.files.update(
                t["file"], vector_store_id=t["vs"], attributes={"owner": "B"}
            ),
        ),
        "vs.files.delete": (
            404,
            lambda c, t, o: c.vector_stores.files.delete(t["file"], vector_store_id=t["vs"]),
        ),
        "vs.files.content": (
            404,
            lambda c, t, o: c.vector_stores.files.content(t["file"], vector_store_id=t["vs"]),
        ),
        "file_batches.create": (
            404,
            lambda c, t, o: c.vector_stores.file_batches.create(t["vs"], file_ids=[o["file"]]),
        ),
        "file_batches.create(B's store, A's file)": (
            400,
            lambda c, t, o: c.vector_stores.file_batches.create(o["vs"], file_ids=[t["file"]]),
        ),
        "file_batches.retrieve": (
            404,
            lambda c, t, o: c.vector_stores.file_batches.retrieve(
                t["vsfb"], vector_store_id=t["vs"]
            ),
        ),
        "file_batches.retrieve(B's store)": (
            404,
            lambda c, t, o: c.vector_stores.file_batches.retrieve(
                t["vsfb"], vector_store_id=o["vs"]
            ),
        ),
        "file_batches.cancel": (
            404,
            lambda c, t, o: c.vector_stores.file_batches.cancel(t["vsfb"], vector_store_id=t["vs"]),
        ),
        "file_batches.list_files": (
            404,
            lambda c, t, o: c.vector_stores.file_batches.list_files(
                t["vsfb"], vector_store_id=t["vs"]
            ),
        ),
    }
)


@pytest.mark.parametrize("verb", list(VERBS))
def test_another_workspace_is_a_workspace_that_never_was(
    server: RunningServer, world: World, verb: str
) -> None:
    status, call = VERBS[verb]
    with sdk(server, world.key_b) as b_client:
        foreign = outcome(lambda: call(b_client, world.a, world.b), world.a)
        never = outcome(lambda: call(b_client, world.ghost, world.b), world.ghost)
    assert foreign == never, (verb, foreign, never)
    assert foreign[0] == status, (verb, foreign)


def test_lists_show_only_the_workspace_s_own(server: RunningServer, world: World) -> None:
    with sdk(server, world.key_b) as b_client:
        assert [a.id for a in b_client.beta.assistants.list()] == [world.b["asst"]]
        assert [f.id for f in b_client.files.list()] == [world.b["file"]]
        assert [s.id for s in b_client.vector_stores.list()] == [world.b["vs"]]
        found = b_client.vector_stores.search(world.b["vs"], query="A's notes")
        assert {hit.file_id for hit in found.data} == {world.b["file"]}
        messages = b_client.beta.threads.messages.list(world.b["thread"])
        assert [m.id for m in messages] == [world.b["msg"]]


def test_a_s_objects_are_as_they_were(server: RunningServer, world: World) -> None:
    """Run last in this module (pytest keeps file order): after every verb above."""
    with sdk(server, world.key_a) as a_client:
        assert snapshot(a_client, world.a) == world.before
