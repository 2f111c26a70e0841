"""Tenancy through the real dashscope SDK: another workspace's objects are invisible.

Workspace A owns one object of every kind. A plain key of workspace B then tries every
verb the SDK offers on each of them: each answer must be exactly the answer for an id
that never existed (same status, same code, the same message once the ids are masked),
B's lists never show A's objects, and afterwards A's objects are all as they were.

A's runs are a completed one (the fake model answered, leaving a message_creation step)
and one waiting in requires_action for a function tool's output, each on a thread of its
own: B can neither read, change, cancel, answer nor wait on them, nor start runs on A's
threads or with A's assistant, and at the end A's waiting run still waits for A.
"""

from __future__ import annotations

import secrets
import subprocess
import sys
import time
import types
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dashscope
import httpx
import pytest
from dashscope import Assistants, Messages, Runs, Steps, Threads
from dashscope.assistants import files as assistant_files
from dashscope.threads.messages import files as message_files

from tests.conftest import make_workspace
from tests.runs.helpers import TERMINAL, WEATHER
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.sdk import as_json
from tests.support.server import ADMIN_KEY, RunningServer

KINDS = ("asst", "thread", "msg", "file", "rthread", "run", "step", "wthread", "wrun", "call")
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


def populate(
    key: str, tmp: Path, label: str, model: str, tools: list[dict[str, Any]] | None = None
) -> dict[str, str]:
    """One object of every kind in the key's workspace: a file, an assistant (of `model`)
    linked to it, a thread and a message carrying the file."""
    path = tmp / f"{label}.txt"
    path.write_text(f"the secret notes of workspace {label}\n")
    file_id = upload(path, key)
    assistant = ok(
        Assistants.create(
            model=model,
            name=f"{label}-assistant",
            tools=tools,
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


def settle(key: str, thread_id: str, run_id: str) -> Any:
    """Polls the run (bounded) until it waits for tool outputs or has ended."""
    deadline = time.monotonic() + 60
    while True:
        run = ok(Runs.retrieve(run_id, thread_id=thread_id, api_key=key))
        if run.status in ("requires_action", *TERMINAL):
            return run
        assert time.monotonic() < deadline, f"run stayed {run.status}"
        time.sleep(0.05)


def populate_runs(key: str, ids: dict[str, str], label: str, *, waiting: bool) -> None:
    """Adds to `ids` a thread with a completed run and its message_creation step and,
    when `waiting`, another thread whose run waits for a function tool's output."""
    thread = ok(
        Threads.create(
            messages=[{"role": "user", "content": f"{label}'s question"}],
            metadata={"owner": label},
            api_key=key,
        )
    )
    run = ok(
        Runs.create(thread.id, assistant_id=ids["asst"], metadata={"owner": label}, api_key=key)
    )
    assert settle(key, thread.id, run.id).status == "completed"
    steps = ok(Steps.list(run.id, thread_id=thread.id, api_key=key)).data
    assert [s.type for s in steps] == ["message_creation"], as_json(steps)
    ids.update(rthread=thread.id, run=run.id, step=steps[0].id)
    if not waiting:
        return
    thread = ok(
        Threads.create(
            messages=[{"role": "user", "content": f"Weather in Paris, says {label}?"}],
            api_key=key,
        )
    )
    run = ok(
        Runs.create(thread.id, assistant_id=ids["asst"], metadata={"owner": label}, api_key=key)
    )
    run = settle(key, thread.id, run.id)
    assert run.status == "requires_action", as_json(run)
    (call,) = run.required_action.submit_tool_outputs.tool_calls
    assert call.function.name == "get_weather"
    ids.update(wthread=thread.id, wrun=run.id, call=call.id)


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
    model_a: str  # the scripted model of A's assistant: only A's runs may reach it


RUN_FIELDS = (
    "id", "thread_id", "assistant_id", "status", "model", "instructions", "metadata",
    "required_action", "last_error", "usage", "tools", "file_ids",
    "expires_at", "started_at", "completed_at", "cancelled_at", "failed_at",
)  # fmt: skip


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
    runs: dict[str, Any] = {}
    for thread_id, run_id in ((ids["rthread"], ids["run"]), (ids["wthread"], ids["wrun"])):
        run = ok(Runs.retrieve(run_id, thread_id=thread_id, api_key=key))
        listed = ok(Runs.list(thread_id, limit=100, api_key=key)).data
        steps = ok(Steps.list(run_id, thread_id=thread_id, limit=100, api_key=key)).data
        said = ok(Messages.list(thread_id, limit=100, api_key=key)).data
        runs[run_id] = {
            "run": {name: as_json(getattr(run, name, None)) for name in RUN_FIELDS},
            "listed": [(r.id, r.status, r.metadata) for r in listed],
            "steps": [(s.id, s.type, s.status, as_json(s.step_details)) for s in steps],
            "messages": [(m.id, m.role, m.content[0].text.value) for m in said],
        }
    step = ok(Steps.retrieve(ids["step"], thread_id=ids["rthread"], run_id=ids["run"], api_key=key))
    return {
        "runs": runs,
        "step": (step.id, step.status, as_json(step.step_details), as_json(step.usage)),
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
def world(
    server: RunningServer, tmp_path_factory: pytest.TempPathFactory, fake_model: FakeModel
) -> World:
    tmp = tmp_path_factory.mktemp("tenancy")
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as admin:
        ws_a, key_a = make_workspace(admin, "tenant-a")
        ws_b, key_b = make_workspace(admin, "tenant-b")
    # A's model answers A's first run, asks for the weather in A's second, and answers
    # once A (and only A) has submitted that output.
    model_a = fake_model.new_model(
        Reply("A's secret answer."),
        ToolCalls([("get_weather", {"city": "Paris"})]),
        Reply("Sunny in Paris, for A."),
    )
    with sdk_at(server):
        a = populate(key_a, tmp, "A", model_a, tools=[WEATHER])
        b = populate(key_b, tmp, "B", fake_model.new_model(Reply("B's own answer.")))
        populate_runs(key_a, a, "A", waiting=True)
        populate_runs(key_b, b, "B", waiting=False)
        before = snapshot(server, key_a, a)
    assert before["assistant_files"] == [a["file"]] and before["message_files"] == [a["file"]]
    assert len(fake_model.requests(model_a)) == 2
    return World(server, ws_a, key_a, ws_b, key_b, a, b, ghost_ids(a), before, model_a)


# ---- what an answer looks like, ids masked ----------------------------------------------


def outcome(result: Any, ids: dict[str, str]) -> tuple[Any, ...] | None:
    """(status, code, message with the target ids masked) of an SDK result or an HTTP
    response; None for the SDK calls that turn every failure into None."""
    if result is None:
        return None
    if isinstance(result, types.GeneratorType):
        # A streamed call the server refused: the SDK yields one (None, error dict).
        items = list(result)
        assert len(items) == 1 and items[0][0] is None, items
        error = items[0][1]
        assert isinstance(error, dict), items
        status, code, message = error["status_code"], error["code"], error["message"]
        request_id = error["request_id"]
    elif isinstance(result, httpx.Response):
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
    # the threads and messages of A's runs
    "Threads.update(run thread)": (
        404,
        lambda t, o, k, s: Threads.update(t["rthread"], metadata={"owner": "B"}, api_key=k),
    ),
    "Threads.delete(waiting thread)": (
        404,
        lambda t, o, k, s: Threads.delete(t["wthread"], api_key=k),
    ),
    "Messages.create(waiting thread)": (
        404,
        lambda t, o, k, s: Messages.create(t["wthread"], content="from B", api_key=k),
    ),
    "Messages.list(run thread)": (404, lambda t, o, k, s: Messages.list(t["rthread"], api_key=k)),
    # runs
    "Runs.retrieve": (
        404,
        lambda t, o, k, s: Runs.retrieve(t["run"], thread_id=t["rthread"], api_key=k),
    ),
    "Runs.retrieve(waiting)": (
        404,
        lambda t, o, k, s: Runs.retrieve(t["wrun"], thread_id=t["wthread"], api_key=k),
    ),
    "Runs.retrieve(own thread)": (
        404,
        lambda t, o, k, s: Runs.retrieve(t["run"], thread_id=o["rthread"], api_key=k),
    ),
    "Runs.get": (404, lambda t, o, k, s: Runs.get(t["run"], thread_id=t["rthread"], api_key=k)),
    "Runs.list": (404, lambda t, o, k, s: Runs.list(t["rthread"], api_key=k)),
    "Runs.list(waiting thread)": (404, lambda t, o, k, s: Runs.list(t["wthread"], api_key=k)),
    "Runs.list(own thread, after=)": (
        400,
        lambda t, o, k, s: Runs.list(o["rthread"], after=t["run"], api_key=k),
    ),
    "Runs.update": (
        404,
        lambda t, o, k, s: Runs.update(
            t["run"], thread_id=t["rthread"], metadata={"owner": "B"}, api_key=k
        ),
    ),
    "Runs.update(waiting)": (
        404,
        lambda t, o, k, s: Runs.update(
            t["wrun"], thread_id=t["wthread"], metadata={"owner": "B"}, api_key=k
        ),
    ),
    "Runs.update(own thread)": (
        404,
        lambda t, o, k, s: Runs.update(
            t["run"], thread_id=o["rthread"], metadata={"owner": "B"}, api_key=k
        ),
    ),
    "Runs.cancel": (
        404,
        lambda t, o, k, s: Runs.cancel(t["wrun"], thread_id=t["wthread"], api_key=k),
    ),
    "Runs.cancel(completed)": (
        404,
        lambda t, o, k, s: Runs.cancel(t["run"], thread_id=t["rthread"], api_key=k),
    ),
    "Runs.submit_tool_outputs": (
        404,
        lambda t, o, k, s: Runs.submit_tool_outputs(
            t["wrun"],
            thread_id=t["wthread"],
            tool_outputs=[{"tool_call_id": t["call"], "output": "B's weather"}],
            api_key=k,
        ),
    ),
    "Runs.submit_tool_outputs(stream)": (
        404,
        lambda t, o, k, s: Runs.submit_tool_outputs(
            t["wrun"],
            thread_id=t["wthread"],
            tool_outputs=[{"tool_call_id": t["call"], "output": "B's weather"}],
            stream=True,
            api_key=k,
        ),
    ),
    "Runs.submit_tool_outputs(no call id)": (
        404,
        lambda t, o, k, s: Runs.submit_tool_outputs(
            t["wrun"], thread_id=t["wthread"], tool_outputs=[{"output": "B's"}], api_key=k
        ),
    ),
    "Runs.create": (
        404,
        lambda t, o, k, s: Runs.create(t["rthread"], assistant_id=t["asst"], api_key=k),
    ),
    "Runs.create(stream)": (
        404,
        lambda t, o, k, s: Runs.create(
            t["rthread"], assistant_id=t["asst"], stream=True, api_key=k
        ),
    ),
    "Runs.create(waiting thread)": (
        404,
        lambda t, o, k, s: Runs.create(t["wthread"], assistant_id=t["asst"], api_key=k),
    ),
    "Runs.create(own assistant)": (
        404,
        lambda t, o, k, s: Runs.create(t["rthread"], assistant_id=o["asst"], api_key=k),
    ),
    "Runs.create(own thread, A's assistant)": (
        404,
        lambda t, o, k, s: Runs.create(o["thread"], assistant_id=t["asst"], api_key=k),
    ),
    "Runs.create_thread_and_run": (
        404,
        lambda t, o, k, s: Runs.create_thread_and_run(
            assistant_id=t["asst"],
            thread={"messages": [{"role": "user", "content": "from B"}]},
            api_key=k,
        ),
    ),
    "Runs.create_thread_and_run(stream)": (
        404,
        lambda t, o, k, s: Runs.create_thread_and_run(
            assistant_id=t["asst"],
            thread={"messages": [{"role": "user", "content": "from B"}]},
            stream=True,
            api_key=k,
        ),
    ),
    "Threads.create_and_run": (
        404,
        lambda t, o, k, s: Threads.create_and_run(assistant_id=t["asst"], api_key=k),
    ),
    "Runs.wait": (
        404,
        lambda t, o, k, s: Runs.wait(
            t["run"], thread_id=t["rthread"], timeout_seconds=30, api_key=k
        ),
    ),
    "Runs.wait(waiting)": (
        404,
        lambda t, o, k, s: Runs.wait(
            t["wrun"], thread_id=t["wthread"], timeout_seconds=30, api_key=k
        ),
    ),
    # run steps
    "Steps.list": (
        404,
        lambda t, o, k, s: Steps.list(t["run"], thread_id=t["rthread"], api_key=k),
    ),
    "Steps.list(waiting)": (
        404,
        lambda t, o, k, s: Steps.list(t["wrun"], thread_id=t["wthread"], api_key=k),
    ),
    "Steps.list(own thread)": (
        404,
        lambda t, o, k, s: Steps.list(t["run"], thread_id=o["rthread"], api_key=k),
    ),
    "Steps.list(own run, after=)": (
        400,
        lambda t, o, k, s: Steps.list(o["run"], thread_id=o["rthread"], after=t["step"], api_key=k),
    ),
    "Steps.retrieve": (
        404,
        lambda t, o, k, s: Steps.retrieve(
            t["step"], thread_id=t["rthread"], run_id=t["run"], api_key=k
        ),
    ),
    "Steps.retrieve(own run)": (
        404,
        lambda t, o, k, s: Steps.retrieve(
            t["step"], thread_id=o["rthread"], run_id=o["run"], api_key=k
        ),
    ),
    "Steps.get": (
        404,
        lambda t, o, k, s: Steps.get(t["step"], thread_id=t["rthread"], run_id=t["run"], api_key=k),
    ),
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
    "Runs.list": lambda w: [
        r.id for r in ok(Runs.list(w.b["rthread"], limit=100, api_key=w.key_b)).data
    ],
    "Runs.list(asc)": lambda w: [
        r.id for r in ok(Runs.list(w.b["rthread"], limit=100, order="asc", api_key=w.key_b)).data
    ],
    "Steps.list": lambda w: [
        s.id
        for s in ok(
            Steps.list(w.b["run"], thread_id=w.b["rthread"], limit=100, api_key=w.key_b)
        ).data
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
    "key without scheme": {"Authorization": ADMIN_KEY},
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


# ---- last: A's waiting run still waits for A --------------------------------------------


def test_foreign_runs_are_intact_and_the_waiting_run_still_waits_for_a(
    world: World, fake_model: FakeModel
) -> None:
    """After everything B tried, A's runs are as they were, B's attempts never reached A's
    model, and A can still answer its waiting run and see it complete. Last in the module:
    it ends the waiting run the matrix above probes."""
    a, key = world.a, world.key_a
    assert snapshot(world.server, key, a) == world.snapshot
    runs = world.snapshot["runs"]
    assert runs[a["run"]]["run"]["status"] == "completed"
    assert runs[a["run"]]["run"]["metadata"] == {"owner": "A"}
    assert runs[a["run"]]["messages"][0][1:] == ("assistant", "A's secret answer.")
    assert runs[a["wrun"]]["run"]["status"] == "requires_action"
    assert runs[a["wrun"]]["run"]["metadata"] == {"owner": "A"}
    assert len(fake_model.requests(world.model_a)) == 2

    submitted = ok(
        Runs.submit_tool_outputs(
            a["wrun"],
            thread_id=a["wthread"],
            tool_outputs=[{"tool_call_id": a["call"], "output": "sunny, 24 C"}],
            api_key=key,
        )
    )
    assert submitted.id == a["wrun"]
    done = settle(key, a["wthread"], a["wrun"])
    assert done.status == "completed", as_json(done)
    assert done.metadata == {"owner": "A"}
    said = ok(Messages.list(a["wthread"], limit=1, api_key=key)).data
    assert said[0].content[0].text.value == "Sunny in Paris, for A."
    requests = fake_model.requests(world.model_a)
    assert len(requests) == 3
    tool_results = [m for m in requests[-1]["messages"] if m["role"] == "tool"]
    assert [(m["tool_call_id"], m["content"]) for m in tool_results] == [(a["call"], "sunny, 24 C")]
    steps = ok(Steps.list(a["wrun"], thread_id=a["wthread"], order="asc", api_key=key)).data
    assert [s.type for s in steps] == ["tool_calls", "message_creation"]
    assert steps[0].step_details.tool_calls[0].function.output == "sunny, 24 C"
