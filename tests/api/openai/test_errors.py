"""Errors on /v1: OpenAI's envelope with every key, the SDK's exception classes, a 4xx
naming the problem for every bad input, and never a 500."""

from __future__ import annotations

from typing import Any

import httpx
import openai
import pytest

from tests.api.openai.conftest import openai_url, sdk
from tests.support.server import RunningServer

ENVELOPE_KEYS = {"message", "type", "param", "code"}


def error_of(answer: httpx.Response) -> dict[str, Any]:
    body = answer.json()
    assert set(body) == {"error"} and set(body["error"]) == ENVELOPE_KEYS, body
    assert answer.headers["x-request-id"], answer.headers
    error: dict[str, Any] = body["error"]
    return error


def test_no_key_and_bad_scheme(server: RunningServer) -> None:
    with httpx.Client(base_url=openai_url(server)) as anonymous:
        error = error_of(anonymous.get("/assistants"))
        assert "No API key" in error["message"] and error["code"] == "invalid_api_key"
        answer = anonymous.get("/files", headers={"Authorization": "Basic abc"})
        assert answer.status_code == 401 and "'Basic ...'" in error_of(answer)["message"]


def test_sdk_exception_classes(server: RunningServer, client: openai.OpenAI) -> None:
    with sdk(server, "sk-assistd-wrong") as bad, pytest.raises(openai.AuthenticationError):
        bad.files.list()
    with pytest.raises(openai.NotFoundError) as missing:
        client.beta.threads.retrieve("thread_missing")
    assert missing.value.request_id
    with pytest.raises(openai.BadRequestError) as bad_request:
        client.beta.assistants.create(model="m", temperature="hot")  # type: ignore[arg-type]
    assert bad_request.value.param == "temperature"
    with pytest.raises(openai.NotFoundError):
        client.beta.threads.messages.create("thread_missing", role="user", content="x")


def test_project_header_selects_a_workspace(
    server: RunningServer, admin: httpx.Client, workspace: tuple[str, str]
) -> None:
    other = admin.post("/admin/v1/workspaces", json={"name": "oai-other-project"})
    assert other.status_code in (200, 409), other.text
    foreign = sdk(server, workspace[1], project="oai-other-project")
    with foreign, pytest.raises(openai.PermissionDeniedError) as caught:
        foreign.beta.assistants.list()
    assert "oai-other-project" in caught.value.body["message"]  # type: ignore[index]
    # OpenAI's own project ids, configured for OpenAI's service, are no workspace here
    with sdk(server, workspace[1], project="proj_abc123") as openai_project:
        assert openai_project.beta.assistants.list().data == []
    with sdk(server, server.admin_key, project=workspace[0]) as admin_there:
        made = admin_there.beta.assistants.create(model="m")
    with sdk(server, workspace[1]) as own:
        assert own.beta.assistants.retrieve(made.id).id == made.id


def test_beta_header_accepted_everywhere_required_nowhere(raw: httpx.Client) -> None:
    for beta in ({}, {"OpenAI-Beta": "assistants=v2"}, {"OpenAI-Beta": "assistants=v1"}):
        assert raw.get("/assistants", headers=beta).status_code == 200
        assert raw.get("/files", headers=beta).status_code == 200
        assert raw.post("/threads", headers=beta).status_code == 200


@pytest.mark.parametrize(
    ("method", "path", "kwargs", "status", "param", "words"),
    [
        ("POST", "/assistants", {"content": b"{not json"}, 400, "body", "not valid JSON"),
        ("POST", "/assistants", {"json": [1, 2]}, 400, "body", "JSON object"),
        ("POST", "/assistants", {"json": {"model": 5}}, 400, "model", "string"),
        ("POST", "/assistants", {"json": {"model": " "}}, 400, "model", "model"),
        ("POST", "/assistants", {"json": {"model": "m", "name": "x" * 257}}, 400, "name", "long"),
        ("GET", "/assistants", {"params": {"limit": "many"}}, 400, "limit", "integer"),
        ("GET", "/assistants", {"params": {"limit": 0}}, 400, "limit", "between 1 and 100"),
        ("GET", "/assistants", {"params": {"order": "up"}}, 400, "order", "'asc' or 'desc'"),
        ("GET", "/assistants", {"params": {"after": "asst_x"}}, 400, "after", "asst_x"),
        ("GET", "/assistants/asst_%00", {}, 400, "assistant_id", "NUL"),
        ("POST", "/threads", {"json": {"metadata": "x"}}, 400, "metadata", "valid dictionary"),
        ("POST", "/threads/thread_x", {"json": {"metadata": {"k": "v"}}}, 404, None, "thread_x"),
        ("POST", "/threads", {"json": {"messages": [None]}}, 400, "messages[0]", "messages[0]"),
        ("DELETE", "/files", {}, 405, None, "method"),
        ("GET", "/vector_store", {}, 404, None, "/v1/vector_store"),
        (
            "POST",
            "/assistants",
            {"content": b"{}", "headers": {"Content-Encoding": "gzip"}},
            415,
            None,
            "gzip",
        ),
    ],
)
def test_bad_requests_name_the_problem(
    raw: httpx.Client,
    method: str,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    param: str | None,
    words: str,
) -> None:
    answer = raw.request(method, path, **kwargs)
    assert answer.status_code == status, answer.text
    error = error_of(answer)
    assert error["param"] == param and words in error["message"], error
    assert error["type"] == "invalid_request_error"


def test_body_too_large(raw: httpx.Client) -> None:
    answer = raw.post("/assistants", content=b"x" * (4 * 1024 * 1024 + 1))
    assert answer.status_code == 413
    assert error_of(answer)["code"] == "request_too_large"


def test_empty_body_posts_and_deletes(raw: httpx.Client) -> None:
    """The SDK sends `Content-Type: application/json` with no body on DELETE."""
    made = raw.post("/assistants", json={"model": "m"}).json()
    headers = {"Content-Type": "application/json"}
    assert raw.post(f"/assistants/{made['id']}", headers=headers).status_code == 200
    assert raw.delete(f"/assistants/{made['id']}", headers=headers).json()["deleted"] is True


ODD_VALUES: list[Any] = [None, 0, -1, 1.5, True, "", "x", [], [None], {}, {"a": None}, [[]]]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_odd_values_never_500(raw: httpx.Client, value: Any) -> None:
    """Every field of every body, given each odd value: a 2xx or a 4xx, never a 5xx."""
    thread = raw.post("/threads").json()["id"]
    fields = {
        "/assistants": ["model", "name", "tools", "tool_resources", "metadata",
                        "temperature", "top_p", "response_format", "instructions"],
        "/threads": ["messages", "metadata", "tool_resources"],
        f"/threads/{thread}": ["metadata", "tool_resources"],
        f"/threads/{thread}/messages": ["role", "content", "attachments", "metadata"],
    }  # fmt: skip
    base = {"/assistants": {"model": "m"}, f"/threads/{thread}/messages": {"content": "x"}}
    for path, names in fields.items():
        for name in names:
            answer = raw.post(path, json={**base.get(path, {}), name: value})
            assert answer.status_code < 500, (path, name, answer.text)
            if answer.status_code >= 400:
                error_of(answer)
