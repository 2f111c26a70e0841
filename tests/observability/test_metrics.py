"""/metrics of the real server, scraped over HTTP while runs go through it with the real
dashscope SDK: request, run, model-call and tool-call figures move as they should, event
streams are counted while open, and the page needs an admin key unless opened."""

from __future__ import annotations

import threading

import httpx
from dashscope import Assistants, Runs, Threads

from tests.observability.helpers import grew, scrape, value
from tests.runs.conftest import StartServer, sdk_at, workspace_key
from tests.runs.helpers import collect, names, ok, wait_done
from tests.support.fake_model import Fail, FakeModel, Gate, Reply, ToolCalls
from tests.support.server import RunningServer

RUNS_ROUTE = "/api/v1/threads/{thread_id}/runs"
TOOL_RUN = "assistd_tool_call_duration_seconds_count"
MODEL_CALL = "assistd_model_call_duration_seconds_count"


def _run(model: str, tools: list[dict[str, str]] | None = None, stream: bool = False) -> str:
    """A run of a new assistant on `model`; returns the status it ended with."""
    assistant = ok(Assistants.create(model=model, tools=tools or []))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
    if stream:
        events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
        return names(events)[-1].removeprefix("thread.run.")
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    return str(wait_done(thread.id, run.id).status)


def test_runs_move_the_metrics(server: RunningServer, fake_model: FakeModel) -> None:
    plain = fake_model.new_model(Reply("hello there"))
    streamed = fake_model.new_model(Reply("hello in pieces"))
    tooled = fake_model.new_model(
        ToolCalls([("calculator", {"expression": "6 * 7"})]), Reply("It is 42.")
    )
    failing = fake_model.new_model(Fail(400, "bad request upstream"))
    _, key = workspace_key(server)
    before = scrape(server)
    with sdk_at(server, key):
        assert _run(plain) == "completed"
        assert _run(streamed, stream=True) == "completed"
        assert _run(tooled, [{"type": "calculator"}]) == "completed"
        assert _run(failing) == "failed"
    after = scrape(server)

    def moved(name: str, **labels: str) -> float:
        return grew(before, after, name, **labels)

    assert moved("assistd_runs_total", status="queued") == 4
    assert moved("assistd_runs_total", status="in_progress") == 4
    assert moved("assistd_runs_total", status="completed") == 3
    assert moved("assistd_runs_total", status="failed") == 1
    assert moved("assistd_run_duration_seconds_count", status="completed") == 3
    assert moved("assistd_run_duration_seconds_count", status="failed") == 1
    assert moved("assistd_time_to_first_token_seconds_count") == 3  # the failed run had none
    assert moved(MODEL_CALL, model=plain, outcome="ok") == 1
    assert moved(MODEL_CALL, model=tooled, outcome="ok") == 2  # the call, then the answer
    assert moved(MODEL_CALL, model=failing, outcome="error") == 1
    assert moved(TOOL_RUN, tool="calculator") == 1
    assert moved("assistd_tool_call_duration_seconds_sum", tool="calculator") > 0
    made = moved("assistd_requests_total", surface="dashscope", route=RUNS_ROUTE, status="200")
    assert made == 4, {str(dict(lab).get("route")) for _, lab in after}
    assert moved("assistd_request_duration_seconds_count", surface="dashscope") >= 4 * 3
    assert value(after, "assistd_active_streams") == 0
    assert value(after, "assistd_queue_depth") == 0


def test_a_missing_object_is_counted_by_route_template_not_path(server: RunningServer) -> None:
    _, key = workspace_key(server)
    before = scrape(server)
    missing = httpx.get(
        f"{server.base_url}/v1/assistants/asst_nothing",
        headers={"Authorization": f"Bearer {key}", "OpenAI-Beta": "assistants=v2"},
    )
    assert missing.status_code == 404
    after = scrape(server)
    route = "/v1/assistants/{assistant_id}"
    assert grew(before, after, "assistd_requests_total", surface="openai", route=route,
                method="GET", status="404") == 1  # fmt: skip
    assert not [labels for name, labels in after if ("route", "/v1/assistants/asst_nothing")
                in labels]  # fmt: skip


def test_open_streams_are_counted(server: RunningServer, fake_model: FakeModel) -> None:
    gate = Gate("let through")
    model = fake_model.new_model(gate)
    _, key = workspace_key(server)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        assistant = client.post("/api/v1/assistants", json={"model": model}).json()
        thread = client.post("/api/v1/threads", json={}).json()
        body = {"assistant_id": assistant["id"], "stream": True}
        with client.stream("POST", f"/api/v1/threads/{thread['id']}/runs", json=body) as events:
            assert events.headers["content-type"].startswith("text/event-stream")
            assert value(scrape(server), "assistd_active_streams") == 1
            threading.Timer(0.2, gate.open).start()
            text = "".join(events.iter_text())
        assert "thread.run.completed" in text
    assert value(scrape(server), "assistd_active_streams") == 0


def test_metrics_need_an_admin_key(server: RunningServer) -> None:
    _, key = workspace_key(server)
    anonymous = httpx.get(f"{server.base_url}/metrics")
    assert anonymous.status_code == 401, anonymous.text
    assert anonymous.json()["code"] == "InvalidApiKey", anonymous.text
    plain = httpx.get(f"{server.base_url}/metrics", headers={"Authorization": f"Bearer {key}"})
    assert plain.status_code == 403, plain.text
    assert "admin" in plain.json()["message"]
    assert value(scrape(server), "assistd_requests_total", route="/metrics", status="401") >= 1


def test_metrics_public_opens_the_page(start_server: StartServer) -> None:
    opened = start_server(ASSISTD_METRICS_PUBLIC="true")
    answer = httpx.get(f"{opened.base_url}/metrics")
    assert answer.status_code == 200 and "assistd_runs_total" in answer.text


def test_metrics_can_be_turned_off(start_server: StartServer) -> None:
    off = start_server(ASSISTD_METRICS_ENABLED="false")
    headers = {"Authorization": f"Bearer {off.admin_key}"}
    answer = httpx.get(f"{off.base_url}/metrics", headers=headers)
    assert answer.status_code == 404 and "metrics_enabled" in answer.text, answer.text
