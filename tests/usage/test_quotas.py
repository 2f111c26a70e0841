"""Quotas per key and per workspace, set through the admin API: requests and runs per
minute and tokens per day answer 429 in each surface's envelope with a Retry-After of at
most 60 s; lifting a limit lets the calls through again."""

from __future__ import annotations

import time
from typing import Any

import httpx
import openai
import pytest
from dashscope import Assistants, Runs, Threads

from tests.api.openai.conftest import openai_url, sdk
from tests.conftest import make_workspace
from tests.runs.conftest import sdk_at
from tests.runs.helpers import ok
from tests.support.fake_model import FakeModel, Reply
from tests.support.server import RunningServer
from tests.usage.helpers import fresh_window, key_limits, new_key, workspace_limits


def _get(server: RunningServer, key: str, path: str) -> httpx.Response:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.get(f"{server.base_url}{path}", headers=headers, timeout=30)


def _retry_after(answer: httpx.Response) -> int:
    value = int(answer.headers["Retry-After"])
    assert 1 <= value <= 60, value
    return value


def _dashscope_refusal(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 429, answer.text
    body: dict[str, Any] = answer.json()
    assert set(body) == {"code", "message", "request_id"} and body["code"] == "Throttling"
    _retry_after(answer)
    return body


def _openai_refusal(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 429, answer.text
    error: dict[str, Any] = answer.json()["error"]
    assert error["type"] == "rate_limit_exceeded" and error["code"] == "rate_limit_exceeded"
    _retry_after(answer)
    return error


def test_a_keys_requests_per_minute_in_both_envelopes(
    server: RunningServer, admin: httpx.Client
) -> None:
    ws, other = make_workspace(admin, "quota")
    key_id, key = new_key(admin, ws)
    assert key_limits(admin, key_id, requests_per_minute=3)["limits"] == {"requests_per_minute": 3}
    fresh_window()
    for path in ("/api/v1/assistants", "/v1/assistants", "/api/v1/assistants"):
        assert _get(server, key, path).status_code == 200
    body = _dashscope_refusal(_get(server, key, "/api/v1/assistants"))
    assert key_id in body["message"] and "3 requests per minute" in body["message"]
    assert key_id in _openai_refusal(_get(server, key, "/v1/assistants"))["message"]

    with sdk(server, key) as client, pytest.raises(openai.RateLimitError) as raised:
        client.beta.assistants.list()
    assert raised.value.code == "rate_limit_exceeded"
    # The dashscope SDK does not retry: it hands the refusal back as its result.
    with sdk_at(server, key):
        listed = Assistants.list()
        assert listed.status_code == 429 and listed.code == "Throttling", listed
        assert "requests per minute" in listed.message
        streamed = list(Runs.create("thread_x", assistant_id="asst_x", stream=True))
        assert len(streamed) == 1 and streamed[0][0] is None, streamed
        assert streamed[0][1]["status_code"] == 429 and streamed[0][1]["code"] == "Throttling"

    assert _get(server, other, "/api/v1/assistants").status_code == 200  # another key
    key_limits(admin, key_id, requests_per_minute=None)  # back to the server's: none
    assert _get(server, key, "/api/v1/assistants").status_code == 200


def test_a_workspaces_limit_is_shared_by_its_keys(
    server: RunningServer, admin: httpx.Client
) -> None:
    ws, first = make_workspace(admin, "quota")
    second_id, second = new_key(admin, ws)
    key_limits(admin, second_id, requests_per_minute=0)  # its own: none; the workspace's holds
    settings = workspace_limits(admin, ws, requests_per_minute=4)
    assert settings["limits"] == {"requests_per_minute": 4}
    assert settings["server_limits"] == {
        "requests_per_minute": None, "runs_per_minute": None, "tokens_per_day": None
    }  # fmt: skip
    fresh_window()
    for key in (first, second, first, second):
        assert _get(server, key, "/v1/assistants").status_code == 200
    error = _openai_refusal(_get(server, second, "/v1/assistants"))
    assert f"workspace {ws}" in error["message"]
    _dashscope_refusal(_get(server, first, "/api/v1/assistants"))
    assert admin.get(f"/admin/v1/workspaces/{ws}/settings").json()["limits"] == {
        "requests_per_minute": 4
    }
    workspace_limits(admin, ws, requests_per_minute=None)
    assert _get(server, first, "/api/v1/assistants").status_code == 200


def test_admin_calls_are_not_limited(server: RunningServer, admin: httpx.Client) -> None:
    ws, _ = make_workspace(admin, "quota")
    made = admin.post("/admin/v1/keys", json={"workspace": ws, "admin": True}).json()
    key_limits(admin, made["id"], requests_per_minute=1)
    fresh_window()
    for _ in range(3):
        assert _get(server, made["key"], f"/admin/v1/workspaces/{ws}/settings").status_code == 200
    assert _get(server, made["key"], "/api/v1/assistants").status_code == 200
    _dashscope_refusal(_get(server, made["key"], "/api/v1/assistants"))


def test_runs_per_minute_counts_only_new_runs(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    ws, _ = make_workspace(admin, "quota")
    key_id, key = new_key(admin, ws)
    key_limits(admin, key_id, runs_per_minute=1)
    fresh_window(30)
    with sdk(server, key) as client:
        assistant = client.beta.assistants.create(model=fake_model.new_model(Reply("one")))
        thread = client.beta.threads.create()
        client.beta.threads.messages.create(thread.id, role="user", content="Hi")
        run = client.beta.threads.runs.create_and_poll(
            thread_id=thread.id, assistant_id=assistant.id
        )
        assert run.status == "completed"
        with pytest.raises(openai.RateLimitError) as raised:
            client.beta.threads.create_and_run(
                assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "x"}]}
            )
        assert "1 runs per minute" in raised.value.message
        client.beta.threads.runs.list(thread.id)  # other calls go on
        client.beta.threads.messages.create(thread.id, role="user", content="More")
    with sdk_at(server, key):
        again = Runs.create(thread.id, assistant_id=assistant.id)
        assert again.status_code == 429 and again.code == "Throttling", again


def _run_once(server: RunningServer, key: str, model: str) -> tuple[str, int]:
    with sdk(server, key) as client:
        assistant = client.beta.assistants.create(model=model)
        run = client.beta.threads.create_and_run_poll(
            assistant_id=assistant.id, thread={"messages": [{"role": "user", "content": "Hi"}]}
        )
        assert run.status == "completed" and run.usage is not None, run
        return assistant.id, run.usage.total_tokens


def test_tokens_per_day_refuses_new_runs_once_used(
    server: RunningServer, admin: httpx.Client, fake_model: FakeModel
) -> None:
    ws, _ = make_workspace(admin, "quota")
    key_id, key = new_key(admin, ws)
    model = fake_model.new_model(Reply("Some tokens to count."), Reply("More."))
    assistant_id, used = _run_once(server, key, model)
    key_limits(admin, key_id, tokens_per_day=used)
    retrying = openai.OpenAI(base_url=openai_url(server), api_key=key, max_retries=2)
    started = time.monotonic()
    with retrying, pytest.raises(openai.RateLimitError) as raised:
        retrying.beta.threads.create_and_run(assistant_id=assistant_id)
    assert f"{used} of {used} tokens per day" in raised.value.message
    headers = raised.value.response.headers
    assert 1 <= int(headers["Retry-After"]) <= 60
    if 86400 - time.time() % 86400 > 70:  # not in the day's last minute: no use retrying
        assert headers["x-should-retry"] == "false"
        assert time.monotonic() - started < 20  # so the SDK did not wait and retry
    with sdk_at(server, key):
        assert ok(Threads.create()).id  # only new runs are refused
        refused = Runs.create(ok(Threads.create()).id, assistant_id=assistant_id)
        assert refused.status_code == 429 and refused.code == "Throttling", refused
    key_limits(admin, key_id, tokens_per_day=used + 1000)
    _run_once(server, key, model)

    workspace_limits(admin, ws, tokens_per_day=1)  # the workspace's own, for every key
    _, fresh = new_key(admin, ws)
    with sdk(server, fresh) as client, pytest.raises(openai.RateLimitError) as raised:
        client.beta.threads.create_and_run(assistant_id=assistant_id)
    assert f"workspace {ws}" in raised.value.message


@pytest.mark.parametrize(
    "limits, field",
    [
        ({"requests_per_minute": -1}, "requests_per_minute"),
        ({"runs_per_minute": "5"}, "runs_per_minute"),
        ({"tokens_per_day": 1.5}, "tokens_per_day"),
        ({"tokens_per_day": True}, "tokens_per_day"),
        ({"colour": 1}, "colour"),
    ],
)
def test_bad_limits_are_refused(admin: httpx.Client, limits: dict[str, Any], field: str) -> None:
    ws, _ = make_workspace(admin, "quota")
    key_id, _ = new_key(admin, ws)
    for path, body in (
        (f"/admin/v1/keys/{key_id}/limits", limits),
        (f"/admin/v1/workspaces/{ws}/settings", {"limits": limits}),
    ):
        answer = admin.post(path, json=body)
        assert answer.status_code == 400, answer.text
        assert field in answer.json()["message"], answer.text
    settings = f"/admin/v1/workspaces/{ws}/settings"
    assert admin.post(settings, json={"limits": 5}).status_code == 400
    both = admin.post(settings, json={"thread_ttl_seconds": 60, "limits": limits})
    assert both.status_code == 400  # and nothing changed, the valid TTL neither
    assert admin.get(settings).json()["thread_ttl_seconds"] is None
    missing = admin.post("/admin/v1/keys/key_missing/limits", json={"runs_per_minute": 1})
    assert missing.status_code == 404


def test_limits_show_on_the_key_and_null_clears_them(admin: httpx.Client) -> None:
    ws, _ = make_workspace(admin, "quota")
    key_id, _ = new_key(admin, ws)
    key_limits(admin, key_id, runs_per_minute=2, tokens_per_day=100)
    changed = key_limits(admin, key_id, tokens_per_day=None)
    assert changed["limits"] == {"runs_per_minute": 2}
    listed = {k["id"]: k for k in admin.get("/admin/v1/keys").json()["data"]}
    assert listed[key_id]["limits"] == {"runs_per_minute": 2}
    workspace_limits(admin, ws, runs_per_minute=3)
    cleared = admin.post(f"/admin/v1/workspaces/{ws}/settings", json={"limits": None})
    assert cleared.json()["limits"] == {}


def test_a_workspace_admin_may_read_its_limits_but_not_lift_them(
    server: RunningServer, admin: httpx.Client
) -> None:
    ws, _ = make_workspace(admin, "quota")
    other, _ = make_workspace(admin, "quota")
    key_id, _ = new_key(admin, ws)
    other_key_id, _ = new_key(admin, other)
    workspace_limits(admin, ws, requests_per_minute=5)
    key_limits(admin, key_id, runs_per_minute=2)
    made = admin.post("/admin/v1/keys", json={"workspace": ws, "admin": True}).json()
    settings = f"/admin/v1/workspaces/{ws}/settings"
    headers = {"Authorization": f"Bearer {made['key']}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as own:
        assert own.get(settings).json()["limits"] == {"requests_per_minute": 5}
        for path, body in (
            (settings, {"limits": {"requests_per_minute": 0}}),
            (settings, {"limits": None}),
            (f"/admin/v1/keys/{key_id}/limits", {"runs_per_minute": 0}),
            (f"/admin/v1/keys/{made['id']}/limits", {"requests_per_minute": 0}),
        ):
            answer = own.post(path, json=body)
            assert answer.status_code == 403, answer.text
            assert "'default'" in answer.json()["message"], answer.text
        # Another workspace's key stays out of sight, as a missing one.
        answer = own.post(f"/admin/v1/keys/{other_key_id}/limits", json={"runs_per_minute": 1})
        assert answer.status_code == 404, answer.text
        assert own.post(settings, json={"thread_ttl_seconds": 60}).status_code == 200
    assert admin.get(settings).json()["limits"] == {"requests_per_minute": 5}
    keys = {k["id"]: k for k in admin.get("/admin/v1/keys").json()["data"]}
    assert keys[key_id]["limits"] == {"runs_per_minute": 2}
    assert not keys[made["id"]]["limits"]
