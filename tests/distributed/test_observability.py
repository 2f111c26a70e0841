"""Metrics and traces in the distributed shape: `assistd worker` serves its own metrics on
`worker_metrics_port`, and a run's span, made in the worker, is the child of the span of
the request (on a replica) that queued it: its traceparent travels in the Redis job."""

from __future__ import annotations

import httpx
from dashscope import Assistants, Runs, Threads

from tests.distributed.conftest import Cluster
from tests.observability.collector import Collector, ReceivedSpan
from tests.observability.helpers import Samples, parse, value
from tests.runs.conftest import sdk_at, workspace_key
from tests.runs.helpers import ok, wait_done
from tests.support.fake_model import FakeModel, Reply, ToolCalls
from tests.support.server import free_port


def _worker_metrics(port: int) -> Samples:
    return parse(httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text)


def test_a_worker_serves_its_metrics_and_continues_the_requests_trace(
    cluster: Cluster, fake_model: FakeModel
) -> None:
    port = free_port()
    with Collector() as collector:
        cluster.env.update(ASSISTD_OTLP_ENDPOINT=collector.url, OTEL_BSP_SCHEDULE_DELAY="100",
                           ASSISTD_WORKER_METRICS_PORT=str(port))  # fmt: skip
        [api], _ = cluster.start(replicas=1, workers=1)
        model = fake_model.new_model(
            ToolCalls([("calculator", {"expression": "6 * 7"})]), Reply("It is 42.")
        )
        _, key = workspace_key(api)
        with sdk_at(api, key):
            assistant = ok(Assistants.create(model=model, tools=[{"type": "calculator"}]))
            thread = ok(Threads.create(messages=[{"role": "user", "content": "6 * 7?"}]))
            run = ok(Runs.create(thread.id, assistant_id=assistant.id))
            assert wait_done(thread.id, run.id).status == "completed"

        worker = _worker_metrics(port)
        assert value(worker, "assistd_runs_total", status="completed") == 1
        assert value(worker, "assistd_model_call_duration_seconds_count", model=model) == 2
        assert value(worker, "assistd_tool_call_duration_seconds_count", tool="calculator") == 1
        assert ("assistd_queue_depth", frozenset()) in worker
        assert value(worker, "assistd_requests_total") == 0  # the worker serves no API

        def traced(spans: list[ReceivedSpan]) -> bool:
            return any(s.attributes.get("assistd.run_id") == run.id for s in spans) and any(
                s.name == "tool call" for s in spans
            )

        spans = collector.wait_for(traced)
    (run_span,) = [s for s in spans if s.attributes.get("assistd.run_id") == run.id]
    (request,) = [s for s in spans if s.span_id == run_span.parent_id]
    assert request.name == "POST /api/v1/threads/{thread_id}/runs"
    assert request.trace_id == run_span.trace_id
    (tool,) = [s for s in spans if s.name == "tool call"]
    assert tool.parent_id == run_span.span_id
