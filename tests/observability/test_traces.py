"""Spans of the real server, sent by its real OTLP/HTTP exporter to a fake collector
(tests/observability/collector.py): a request, the run it queued, the run's model calls
and tool calls, with their ids as attributes and their parents as they happened."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from dashscope import Assistants, Runs, Threads

from tests.observability.collector import Collector, ReceivedSpan
from tests.ops.helpers import json_lines, wait_for_log
from tests.runs.conftest import StartServer, sdk_at, workspace_key
from tests.runs.helpers import collect, names, ok, wait_done
from tests.support.fake_model import Fail, FakeModel, Reply, ToolCalls
from tests.support.server import RunningServer

SERVER, CONSUMER, CLIENT = 2, 5, 3  # opentelemetry.proto.trace.v1.Span.SpanKind
RUNS_ROUTE = "POST /api/v1/threads/{thread_id}/runs"


@pytest.fixture(scope="module")
def traced(
    start_module_server: StartServer, collector: Collector, fake_model: FakeModel
) -> Iterator[RunningServer]:
    """A server exporting its spans to the collector, in batches sent every 100 ms, and
    logging JSON lines."""
    yield start_module_server(
        ASSISTD_OTLP_ENDPOINT=collector.url,
        ASSISTD_LOG_FORMAT="json",
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
        OTEL_BSP_SCHEDULE_DELAY="100",
    )


def _of_run(collector: Collector, run_id: str, *, calls: int) -> list[ReceivedSpan]:
    """The spans of the trace holding the run's span, once its `calls` model and tool
    calls and the request that queued it are in (a stream's request ends last)."""

    def complete(spans: list[ReceivedSpan]) -> bool:
        runs = [s for s in spans if s.attributes.get("assistd.run_id") == run_id]
        if not runs:
            return False
        trace = [s for s in spans if s.trace_id == runs[0].trace_id]
        parent_in = any(s.span_id == runs[0].parent_id for s in trace)
        return parent_in and len(trace) >= calls + 2

    spans = collector.wait_for(complete)
    (run,) = [s for s in spans if s.attributes.get("assistd.run_id") == run_id]
    return [s for s in spans if s.trace_id == run.trace_id]


def test_a_run_is_traced_from_its_request_to_its_model_and_tool_calls(
    traced: RunningServer, collector: Collector, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": "6 * 7"})]), Reply("It is 42.")
    )
    ws, key = workspace_key(traced)
    with sdk_at(traced, key):
        assistant = ok(Assistants.create(model=model, tools=[{"type": "calculator"}]))
        thread = ok(Threads.create(messages=[{"role": "user", "content": "6 * 7?"}]))
        run = ok(Runs.create(thread.id, assistant_id=assistant.id))
        assert wait_done(thread.id, run.id).status == "completed"
    trace = _of_run(collector, run.id, calls=3)
    (request,) = [s for s in trace if s.kind == SERVER]
    (run_span,) = [s for s in trace if s.name == "run"]
    models = [s for s in trace if s.name == "model call"]
    (tool,) = [s for s in trace if s.name == "tool call"]
    assert request.name == RUNS_ROUTE and request.parent_id == ""
    assert request.attributes["http.response.status_code"] == 200
    assert request.attributes["assistd.workspace_id"] == ws
    assert request.attributes["assistd.surface"] == "dashscope"
    assert run_span.parent_id == request.span_id and run_span.kind == CONSUMER
    assert run_span.attributes == {
        "assistd.workspace_id": ws, "assistd.thread_id": thread.id, "assistd.run_id": run.id,
        "assistd.run.status": "completed", "assistd.model": model,
    }  # fmt: skip
    assert len(models) == 2
    assert all(m.parent_id == run_span.span_id and m.kind == CLIENT for m in models)
    assert all(m.attributes == {"assistd.model": model} for m in models)
    assert tool.parent_id == run_span.span_id
    assert tool.attributes["assistd.tool"] == "calculator"
    assert tool.attributes["assistd.tool_call_id"].startswith("call")
    assert {s.service for s in trace} == {"assistd"}
    assert set(collector.content_types()) == {"application/x-protobuf"}


def test_json_log_lines_carry_the_ids_of_their_request_run_and_span(
    traced: RunningServer, collector: Collector, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(
        ToolCalls([("calculator", {"expression": "2 + 2"})]), Reply("It is 4.")
    )
    ws, key = workspace_key(traced)
    with sdk_at(traced, key):
        assistant = ok(Assistants.create(model=model, tools=[{"type": "calculator"}]))
        thread = ok(Threads.create(messages=[{"role": "user", "content": "2 + 2?"}]))
        run = ok(Runs.create(thread.id, assistant_id=assistant.id))
        assert wait_done(thread.id, run.id).status == "completed"
    trace = _of_run(collector, run.id, calls=3)
    (run_span,) = [s for s in trace if s.name == "run"]
    (request_span,) = [s for s in trace if s.kind == SERVER]
    log = wait_for_log(traced, lambda text: f"run {run.id}: completed" in text)
    entries = json_lines(log)
    (ended,) = [e for e in entries if e["logger"] == "assistd.executor" and
                e.get("run_id") == run.id]  # fmt: skip
    assert ended["workspace"] == ws and ended["status"] == "completed", ended
    assert ended["trace_id"] == run_span.trace_id and ended["span_id"] == run_span.span_id
    (made,) = [e for e in entries if e.get("path") == f"/api/v1/threads/{thread.id}/runs"]
    assert made["workspace"] == ws and made["status"] == 200 and made["request_id"], made
    assert made["trace_id"] == request_span.trace_id == run_span.trace_id
    assert all(e["workspace"] == ws for e in entries if e.get("run_id") == run.id)


def test_a_streamed_run_is_a_child_of_its_stream_request_continuing_the_callers_trace(
    traced: RunningServer, collector: Collector, fake_model: FakeModel
) -> None:
    caller_trace, run_id = _streamed_run_in_a_callers_trace(traced, fake_model, "streamed")
    trace = _of_run(collector, run_id, calls=1)
    (run_span,) = [s for s in trace if s.name == "run"]
    (request,) = [s for s in trace if s.span_id == run_span.parent_id]
    assert request.name == RUNS_ROUTE and request.parent_id == "00f067aa0ba902b7"
    assert run_span.trace_id == caller_trace
    (call,) = [s for s in trace if s.name == "model call"]
    assert call.parent_id == run_span.span_id


def _streamed_run_in_a_callers_trace(
    server: RunningServer, fake_model: FakeModel, reply: str
) -> tuple[str, str]:
    """A streamed run whose requests carry a `traceparent` of a trace of the test's own
    (parent span 00f067aa0ba902b7): that trace's id and the run's."""
    model = fake_model.new_model(Reply(reply))
    _, key = workspace_key(server)
    caller_trace = secrets.token_hex(16)
    headers = {"Authorization": f"Bearer {key}",
               "traceparent": f"00-{caller_trace}-00f067aa0ba902b7-01"}  # fmt: skip
    with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
        assistant = client.post("/api/v1/assistants", json={"model": model}).json()
        thread = client.post("/api/v1/threads", json={}).json()
        body = {"assistant_id": assistant["id"], "stream": True}
        text = client.post(f"/api/v1/threads/{thread['id']}/runs", json=body).text
    assert "thread.run.completed" in text
    return caller_trace, text.split('"id":"', 1)[1].split('"', 1)[0]


def test_a_failed_run_and_its_model_call_are_errors(
    traced: RunningServer, collector: Collector, fake_model: FakeModel
) -> None:
    model = fake_model.new_model(Fail(400, "bad request upstream"))
    _, key = workspace_key(traced)
    with sdk_at(traced, key):
        assistant = ok(Assistants.create(model=model))
        thread = ok(Threads.create(messages=[{"role": "user", "content": "hi"}]))
        events = collect(Runs.create(thread.id, assistant_id=assistant.id, stream=True))
    assert names(events)[-1] == "thread.run.failed"
    run_id = events[-1][1].id
    trace = _of_run(collector, run_id, calls=1)
    (run_span,) = [s for s in trace if s.name == "run"]
    (call,) = [s for s in trace if s.name == "model call"]
    assert run_span.error and run_span.attributes["assistd.run.status"] == "failed"
    assert call.error and call.parent_id == run_span.span_id


def test_without_an_endpoint_no_tracing_sdk_is_loaded(tmp_path: object) -> None:
    """Tracing off is off: the app and runtime built, no tracer provider installed and
    neither the SDK's tracing nor an exporter imported."""
    _no_tracing_sdk_loaded_after(
        "from assistd.app import create_app\n"
        f"settings = Settings(data_dir={str(tmp_path)!r})\n"
        "create_app(settings)\n"
        "runtime = build_runtime(settings)\n"
        "assert runtime.telemetry.tracer is None and runtime.telemetry.metrics is not None\n"
        "from opentelemetry import trace\n"
        "assert type(trace.get_tracer_provider()).__name__ == 'ProxyTracerProvider'\n"
    )


def _no_tracing_sdk_loaded_after(code: str) -> None:
    """Runs `code` in a fresh interpreter (no ASSISTD_ variables), then checks that
    neither the SDK's tracing nor an exporter was imported."""
    script = (
        "import sys\n"
        "from assistd.runtime import build_runtime\n"
        "from assistd.settings import Settings\n"
        f"{code}"
        "loaded = [m for m in sys.modules if m.startswith(('opentelemetry.sdk.trace',\n"
        "                                                  'opentelemetry.exporter'))]\n"
        "assert not loaded, loaded\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTD_")}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_tracing_without_an_endpoint_makes_spans_for_the_logs_and_exports_nothing(
    start_module_server: StartServer, fake_model: FakeModel, tmp_path: Path
) -> None:
    """`tracing_enabled` alone: the caller's trace continues into the run's log lines,
    and neither the tracing SDK nor an exporter is loaded."""
    server = start_module_server(
        ASSISTD_TRACING_ENABLED="true",
        ASSISTD_LOG_FORMAT="json",
        ASSISTD_OPENAI_BASE_URL=fake_model.base_url,
    )
    caller_trace, run_id = _streamed_run_in_a_callers_trace(server, fake_model, "not exported")
    log = wait_for_log(server, lambda text: f"run {run_id}: completed" in text)
    (ended,) = [e for e in json_lines(log) if e["logger"] == "assistd.executor" and
                e.get("run_id") == run_id]  # fmt: skip
    assert ended["trace_id"] == caller_trace and len(ended["span_id"]) == 16, ended
    _no_tracing_sdk_loaded_after(
        f"runtime = build_runtime(Settings(data_dir={str(tmp_path)!r}, tracing_enabled=True))\n"
        "assert runtime.telemetry.tracer is not None\n"
    )
