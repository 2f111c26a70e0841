"""`POST /threads/runs` is one transaction: a request that fails writes no thread, no
message and no run (they used to stay behind, unreachable, after a 400)."""

from __future__ import annotations

from typing import Any

import pytest
from dashscope import Assistants, Runs, Threads

from tests.runs.helpers import collect, ok
from tests.support.db import ids_in
from tests.support.sdk import assert_error, assert_raw_error, raw_client
from tests.support.server import RunningServer

SEVENTEEN = {f"k{i}": "v" for i in range(17)}
HELLO = {"messages": [{"role": "user", "content": "hello"}]}


def _rows(server: RunningServer, ws: str) -> dict[str, set[str]]:
    return {table: ids_in(server, table, ws) for table in ("threads", "messages", "runs")}


@pytest.fixture
def assistant(ds: str) -> Any:
    return ok(Assistants.create(model="qwen-max"))


@pytest.mark.parametrize(
    ("kwargs", "status", "words"),
    [
        ({"metadata": SEVENTEEN}, 400, "'metadata' has 17 keys"),
        ({"thread": {**HELLO, "metadata": SEVENTEEN}}, 400, "'thread.metadata' has 17 keys"),
        ({"metadata": {"n": 1}}, 400, "'metadata.n'"),
        ({"tools": [{"type": "warp_drive"}]}, 400, "'tools[0].type'"),
        ({"extra_body": {"temperature": 9}}, 400, "'temperature'"),
        ({"extra_body": {"top_k": -1}}, 400, "'top_k'"),
        ({"instructions": "nul\x00inside"}, 400, "'instructions'"),
        ({"model": "m" * 257}, 400, "'model'"),
        (
            {"thread": {"messages": [{"role": "user", "content": "x", "file_ids": ["file_x"]}]}},
            400,
            "file_x",
        ),
        (
            {"thread": {"messages": [{"role": "robot", "content": "x"}]}},
            400,
            "'thread.messages[0].role'",
        ),
        ({"assistant_id": "asst_missing"}, 404, "asst_missing"),
    ],
)
def test_a_failed_create_thread_and_run_writes_nothing(
    server: RunningServer, ds: str, assistant: Any, kwargs: dict[str, Any], status: int, words: str
) -> None:
    existing = ok(Threads.create(**HELLO))
    before = _rows(server, ds)
    assert before["threads"] == {existing.id} and len(before["messages"]) == 1
    call: dict[str, Any] = {"assistant_id": assistant.id, "thread": HELLO, **kwargs}
    code = "NotFound" if status == 404 else "InvalidParameter"
    assert_error(Runs.create_thread_and_run(**call), status, code, words)
    if "extra_body" not in call:  # the older entry point cannot send sampling settings
        assert_error(Threads.create_and_run(**call), status, code, words)
    assert _rows(server, ds) == before


def test_a_failed_streamed_create_thread_and_run_writes_nothing(
    server: RunningServer, ds: str, assistant: Any
) -> None:
    before = _rows(server, ds)
    with raw_client(server) as client:
        response = client.post(
            "/threads/runs",
            json={"assistant_id": assistant.id, "thread": HELLO, "stream": True, "temperature": 9},
        )
    assert_raw_error(response, 400, "InvalidParameter", "'temperature'")
    streamed = collect(
        Runs.create_thread_and_run(
            assistant_id=assistant.id, thread=HELLO, metadata=SEVENTEEN, stream=True
        )
    )
    assert len(streamed) == 1 and streamed[0][1]["status_code"] == 400
    assert _rows(server, ds) == before


def test_a_good_create_thread_and_run_writes_all_of_it(
    server: RunningServer, ds: str, assistant: Any
) -> None:
    before = _rows(server, ds)
    run = ok(Runs.create_thread_and_run(assistant_id=assistant.id, thread=HELLO))
    after = _rows(server, ds)
    assert after["threads"] - before["threads"] == {run.thread_id}
    assert run.id in after["runs"]
    assert len(after["messages"] - before["messages"]) >= 1
