"""The operator's log, read from the real server's output: a line per request and per
run, timestamps, the level and format settings, and no flood when clients go away."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator

import httpx
import pytest
from dashscope import Assistants, Runs, Threads

from tests.ops.helpers import json_lines, server_log, wait_for_log
from tests.runs.conftest import sdk_on
from tests.runs.helpers import WEATHER, ok, settle, wait_done
from tests.support.fake_model import Fail, FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer, run_server

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z ")


@pytest.fixture(scope="module")
def logged(
    fake_model: FakeModel, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningServer]:
    """A server with the default log settings."""
    data_dir = tmp_path_factory.mktemp("logged")
    with run_server(data_dir, ASSISTD_OPENAI_BASE_URL=fake_model.base_url) as server:
        yield server


def _admin(server: RunningServer) -> httpx.Client:
    headers = {"Authorization": f"Bearer {server.admin_key}"}
    return httpx.Client(base_url=server.base_url, headers=headers, timeout=30)


def _line_with(server: RunningServer, *words: str) -> str:
    """The one log line holding all of `words`, once it is written."""
    log = wait_for_log(server, lambda text: any(all(w in line for w in words)
                                                for line in text.splitlines()))  # fmt: skip
    (line,) = [line for line in log.splitlines() if all(w in line for w in words)]
    return line


def _completed_run(fake_model: FakeModel) -> str:
    model = fake_model.new_model(Reply("hello there"))
    assistant = ok(Assistants.create(model=model))
    thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
    run = ok(Runs.create(thread.id, assistant_id=assistant.id))
    assert wait_done(thread.id, run.id).status == "completed"
    return str(run.id)


def test_each_request_has_a_line_with_its_status_and_request_id(logged: RunningServer) -> None:
    with _admin(logged) as admin:
        missing = admin.get("/api/v1/assistants/asst_missing")
        made = admin.post("/api/v1/assistants", json={"model": "qwen-max"})
    assert missing.status_code == 404 and made.status_code == 200, made.text
    for answer, status in ((missing, 404), (made, 200)):
        request_id = answer.json()["request_id"]
        assert answer.headers["x-request-id"] == request_id
        line = _line_with(logged, request_id)
        assert TIMESTAMP.match(line), line
        assert f" {status} " in line and "ms" in line, line
    assert "GET /api/v1/assistants/asst_missing 404" in _line_with(logged, "asst_missing")
    log = server_log(logged)
    assert logged.admin_key not in log and "qwen-max" not in log  # no key, no body


def test_each_run_has_a_line_when_it_ends(logged: RunningServer, fake_model: FakeModel) -> None:
    with sdk_on(logged) as workspace:
        run_id = _completed_run(fake_model)
    line = _line_with(logged, f"run {run_id}:")
    assert TIMESTAMP.match(line), line
    # the fake model counts 10 prompt tokens and one per word
    assert "completed" in line and "route *" in line and "12 tokens" in line, line
    assert f"workspace={workspace}" in line and f"run_id={run_id}" in line, line


def test_a_run_ended_without_its_worker_has_a_line_too(
    logged: RunningServer, fake_model: FakeModel
) -> None:
    """A run cancelled while it waits for tool outputs never returns to a worker."""
    model = fake_model.new_model(ToolCalls([("get_weather", {"city": "Paris"})]))
    with sdk_on(logged) as workspace:
        assistant = ok(Assistants.create(model=model, tools=[WEATHER]))
        thread = ok(Threads.create(messages=[{"role": "user", "content": "Weather?"}]))
        run = ok(Runs.create(thread.id, assistant_id=assistant.id))
        assert settle(thread.id, run.id).status == "requires_action"
        assert ok(Runs.cancel(run.id, thread_id=thread.id)).status == "cancelled"
    line = _line_with(logged, f"run {run.id}: cancelled")
    assert TIMESTAMP.match(line) and "ended outside a worker" in line, line
    assert f"workspace={workspace}" in line and f"run_id={run.id}" in line, line


def test_start_up_says_how_many_runs_it_recovered(logged: RunningServer) -> None:
    assert TIMESTAMP.match(_line_with(logged, "recovered 0 runs at start"))


def test_uvicorn_prints_through_the_same_format(logged: RunningServer) -> None:
    line = _line_with(logged, "Application startup complete")
    assert TIMESTAMP.match(line), line


def _abort(port: int, path: str, content_type: str, key: str) -> None:
    """Sends the head of a request that promises 100 kB, a few bytes of it, and leaves."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: 100000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.sendall(head.encode() + b'--b\r\nContent-Disposition: form-data; name="files"')


def test_clients_that_leave_mid_body_do_not_flood_the_log(logged: RunningServer) -> None:
    port = int(logged.base_url.rsplit(":", 1)[1])
    before = len(server_log(logged))
    for _ in range(100):
        _abort(port, "/api/v1/assistants", "application/json", logged.admin_key)
        _abort(port, "/api/v1/files", "multipart/form-data; boundary=b", logged.admin_key)
    with _admin(logged) as admin:  # the server is fine, and has handled the aborts by now
        request_id = admin.get("/api/v1/assistants").json()["request_id"]
    _line_with(logged, request_id)
    grown = server_log(logged)[before:]
    # 200 aborted requests: at most a short line each (before: two tracebacks, 17 kB each)
    assert len(grown) < 200 * 160, grown[:3000]
    assert "Traceback" not in grown and " 500 " not in grown, grown[:3000]


def test_warning_level_hides_request_lines(
    fake_model: FakeModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("quiet")
    with run_server(
        data_dir, ASSISTD_OPENAI_BASE_URL=fake_model.base_url, ASSISTD_LOG_LEVEL="warning"
    ) as server:
        with sdk_on(server):
            model = fake_model.new_model(*[Fail(500, "upstream broke")] * 6)
            assistant = ok(Assistants.create(model=model))
            thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
            run = ok(Runs.create(thread.id, assistant_id=assistant.id))
            assert wait_done(thread.id, run.id).status == "failed"
        # An error is printed (so the log works), the requests before it are not.
        _line_with(server, "model endpoint error", str(run.id))
        log = server_log(server)
    assert "assistd.request" not in log and "POST /api/v1/threads" not in log, log
    assert f"run {run.id}:" not in log and "Application startup complete" not in log, log


def test_json_lines_and_the_command_line_level(
    fake_model: FakeModel, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data_dir = tmp_path_factory.mktemp("json")
    with run_server(
        data_dir, args=["--log-level", "debug"], ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        ASSISTD_LOG_FORMAT="json", ASSISTD_LOG_LEVEL="error",
    ) as server:  # fmt: skip
        with sdk_on(server) as workspace:
            run_id = _completed_run(fake_model)
        _line_with(server, f"run {run_id}:")
        log = server_log(server)
    # Every log line is a JSON object; only the start-up banner's lines are not log lines.
    assert not [line for line in log.splitlines() if TIMESTAMP.match(line)], log
    entries = json_lines(log)
    for entry in entries:
        assert {"time", "level", "logger", "message"} <= set(entry), entry
    (ran,) = [e for e in entries if e.get("run_id") == run_id and e["logger"] == "assistd.executor"]
    assert ran["workspace"] == workspace and ran["status"] == "completed", ran
    assert ran["total_tokens"] == 12, ran
    requests = [e for e in entries if e["logger"] == "assistd.request"]
    created = [e for e in requests if e["path"].endswith("/runs") and e["method"] == "POST"]
    assert created and created[0]["status"] == 200 and created[0]["workspace"] == workspace
    assert all(e["request_id"] for e in requests), requests
    # --log-level debug beat ASSISTD_LOG_LEVEL=error: the health probes' debug lines show
    assert any(e["level"] == "debug" and e.get("path") == "/healthz" for e in requests)


@pytest.mark.local_model
def test_the_local_model_load_time_is_logged(tmp_path_factory: pytest.TempPathFactory) -> None:
    with run_server(tmp_path_factory.mktemp("local")) as server:  # no routes: the local model
        with sdk_on(server):
            assistant = ok(Assistants.create(model="qwen-max"))
            thread = ok(Threads.create(messages=[{"role": "user", "content": "Hi"}]))
            run = ok(Runs.create(thread.id, assistant_id=assistant.id, max_tokens=1))
            assert wait_done(thread.id, run.id, timeout_s=300).status == "completed"
        line = _line_with(server, "local model loaded in")
    assert TIMESTAMP.match(line) and re.search(r"loaded in \d+\.\d+ s", line), line
