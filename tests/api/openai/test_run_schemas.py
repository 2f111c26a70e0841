"""Every answer of the /v1 run endpoints matches OpenAI's published OpenAPI document, as
test_response_schemas.py checks the object endpoints: runs waiting for outputs,
completed, incomplete and failed; their lists; function and code-interpreter steps.
(The server's other tools are assistd extensions outside the document's tool types.)
File-search steps, with and without their results' text, and a cited reply too.

The document marks the run's null-until-set fields (`cancelled_at`, `last_error`,
`incomplete_details`, ...) with OpenAPI 3.0's `nullable: true`, which a JSON Schema
validator ignores; here they take null as the document means them to."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.api.openai import test_response_schemas as schemas
from tests.api.openai.file_search_helpers import PARIS, search_then_cite
from tests.api.openai.run_helpers import WEATHER
from tests.support.fake_model import Fail, FakeModel, Reply, ToolCalls


def _nullable(node: Any) -> None:
    """`{"type": T, "nullable": true}` -> `{"type": [T, "null"]}`; a nullable without a
    type (a `$ref`, an `allOf`) -> `anyOf` with null."""
    if isinstance(node, list):
        for item in node:
            _nullable(item)
    if not isinstance(node, dict):
        return
    for value in node.values():
        _nullable(value)
    if node.pop("nullable", False):
        if isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        elif "type" not in node:
            inner = {k: node.pop(k) for k in list(node) if k not in ("description",)}
            node["anyOf"] = [inner, {"type": "null"}]


@pytest.fixture(autouse=True)
def _document_with_nulls(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    document = schemas._document()
    patched = copy.deepcopy(document)
    _nullable(patched["components"])
    monkeypatch.setattr(schemas, "_document", lambda: patched)
    yield


check = schemas.check

RUN = "/threads/{thread_id}/runs/{run_id}"
STEPS = "/threads/{thread_id}/runs/{run_id}/steps"


def _settled(raw: httpx.Client, thread_id: str, run_id: str) -> dict[str, Any]:
    for _ in range(1200):
        run: dict[str, Any] = raw.get(f"/threads/{thread_id}/runs/{run_id}").json()
        if run["status"] not in ("queued", "in_progress", "cancelling"):
            return run
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} stayed {run['status']}")


def _run_of(raw: httpx.Client, model: str, tools: list[Any], **options: Any) -> tuple[str, str]:
    assistant = raw.post("/assistants", json={"model": model, "tools": tools}).json()
    thread = raw.post("/threads", json={"messages": [{"role": "user", "content": "Go."}]}).json()
    body = {"assistant_id": assistant["id"], **options}
    run = check(
        raw.post(f"/threads/{thread['id']}/runs", json=body), "post", "/threads/{thread_id}/runs"
    )
    _settled(raw, thread["id"], run["id"])
    return thread["id"], run["id"]


def _check_run_and_steps(raw: httpx.Client, thread_id: str, run_id: str) -> dict[str, Any]:
    run = check(raw.get(f"/threads/{thread_id}/runs/{run_id}"), "get", RUN)
    check(raw.get(f"/threads/{thread_id}/runs"), "get", "/threads/{thread_id}/runs")
    steps = check(raw.get(f"/threads/{thread_id}/runs/{run_id}/steps"), "get", STEPS)
    for step in steps["data"]:
        check(raw.get(f"/threads/{thread_id}/runs/{run_id}/steps/{step['id']}"), "get",
              STEPS + "/{step_id}")  # fmt: skip
    return run


def test_run_answers_match_the_openapi_document(raw: httpx.Client, fake_model: FakeModel) -> None:
    call = ToolCalls([("get_weather", {"city": "Paris"})])
    thread_id, run_id = _run_of(raw, fake_model.new_model(call, Reply("Sunny.")), [WEATHER],
                                tool_choice="required", max_prompt_tokens=4000)  # fmt: skip
    waiting = _check_run_and_steps(raw, thread_id, run_id)
    assert waiting["status"] == "requires_action"
    (pending,) = waiting["required_action"]["submit_tool_outputs"]["tool_calls"]
    outputs = {"tool_outputs": [{"tool_call_id": pending["id"], "output": "22C"}]}
    check(raw.post(f"/threads/{thread_id}/runs/{run_id}/submit_tool_outputs", json=outputs),
          "post", RUN + "/submit_tool_outputs")  # fmt: skip
    _settled(raw, thread_id, run_id)
    assert _check_run_and_steps(raw, thread_id, run_id)["status"] == "completed"
    check(raw.post(f"/threads/{thread_id}/runs/{run_id}", json={"metadata": {"k": "v"}}),
          "post", RUN)  # fmt: skip

    cut = fake_model.new_model(Reply("cut short", finish="length"))
    thread_id, run_id = _run_of(raw, cut, [], max_completion_tokens=256,
                                truncation_strategy={"type": "last_messages", "last_messages": 2},
                                response_format={"type": "json_object"})  # fmt: skip
    assert _check_run_and_steps(raw, thread_id, run_id)["status"] == "incomplete"

    failing = fake_model.new_model(Fail(500), Fail(500), Fail(500))
    thread_id, run_id = _run_of(raw, failing, [])
    assert _check_run_and_steps(raw, thread_id, run_id)["status"] == "failed"

    code = ToolCalls([("code_interpreter", {"code": "print(6 * 7)"})])
    thread_id, run_id = _run_of(raw, fake_model.new_model(code, Reply("42")),
                                [{"type": "code_interpreter"}])  # fmt: skip
    assert _check_run_and_steps(raw, thread_id, run_id)["status"] == "completed"

    made = raw.post("/threads/runs", json={
        "assistant_id": raw.get("/assistants", params={"limit": 1}).json()["data"][0]["id"],
        "thread": {"messages": [{"role": "user", "content": "Again."}]}})  # fmt: skip
    run = check(made, "post", "/threads/runs")
    _settled(raw, run["thread_id"], run["id"])
    cancelled = raw.post(f"/threads/{run['thread_id']}/runs/{run['id']}/cancel")
    # it has ended: only an active run can be cancelled (OpenAI answered that with a 400)
    assert cancelled.status_code == 400, cancelled.text
    assert cancelled.json()["error"]["type"] == "invalid_request_error"


def test_file_search_steps_match_the_openapi_document(
    raw: httpx.Client, fake_model: FakeModel
) -> None:
    upload = raw.post("/files", files={"file": ("paris.txt", PARIS.encode())},
                      data={"purpose": "assistants"})  # fmt: skip
    stores = {"vector_stores": [{"file_ids": [upload.json()["id"]]}]}
    model = search_then_cite(fake_model, "Eiffel Tower", "paris.txt")
    assistant = raw.post("/assistants", json={
        "model": model, "tools": [{"type": "file_search"}],
        "tool_resources": {"file_search": stores}}).json()  # fmt: skip
    thread = raw.post("/threads", json={"messages": [{"role": "user", "content": "Tall?"}]}).json()
    run = raw.post(f"/threads/{thread['id']}/runs", json={"assistant_id": assistant["id"]}).json()
    _settled(raw, thread["id"], run["id"])
    assert _check_run_and_steps(raw, thread["id"], run["id"])["status"] == "completed"
    include = {"include[]": "step_details.tool_calls[*].file_search.results[*].content"}
    steps = check(raw.get(STEPS.format(thread_id=thread["id"], run_id=run["id"]), params=include),
                  "get", STEPS)  # fmt: skip
    (call,) = next(s for s in steps["data"] if s["type"] == "tool_calls")["step_details"][
        "tool_calls"
    ]
    assert call["file_search"]["results"][0]["content"][0]["type"] == "text"
    reply = raw.get(f"/threads/{thread['id']}/messages", params={"run_id": run["id"]}).json()
    message = check(raw.get(f"/threads/{thread['id']}/messages/{reply['data'][0]['id']}"), "get",
                    "/threads/{thread_id}/messages/{message_id}")  # fmt: skip
    assert message["content"][0]["text"]["annotations"][0]["type"] == "file_citation"
