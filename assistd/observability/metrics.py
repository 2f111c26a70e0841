"""The Prometheus metrics of one process, in a registry of its own (two servers in one
process, as in the tests, count apart). Label values are bounded: surfaces, route
templates, statuses, model and tool names, never ids."""

from __future__ import annotations

from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

# Seconds: from a fast request to a long run.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)


class Labelled:
    """A labelled metric whose children are looked up once each: prometheus_client's
    `labels()` checks its values and takes a lock on every call."""

    def __init__(self, metric: Counter | Histogram) -> None:
        self.metric: Counter | Histogram = metric
        self._children: dict[tuple[str, ...], Any] = {}

    def __call__(self, *values: str) -> Any:
        child = self._children.get(values)
        if child is None:
            child = self._children[values] = self.metric.labels(*values)
        return child


class Metrics:
    def __init__(self) -> None:
        self.registry = r = CollectorRegistry(auto_describe=False)
        self.requests = Labelled(Counter(
            "assistd_requests", "HTTP requests answered, by surface, route template, "
            "method and status.", ["surface", "route", "method", "status"], registry=r,
        ))  # fmt: skip
        self.request_seconds = Labelled(Histogram(
            "assistd_request_duration_seconds", "Time to answer a request (a stream: until "
            "it ends), by surface and route template.", ["surface", "route"],
            buckets=LATENCY_BUCKETS, registry=r,
        ))  # fmt: skip
        self.streams = Gauge(
            "assistd_active_streams", "Server-sent event streams open now.", registry=r
        )
        self.runs = Labelled(Counter(
            "assistd_runs", "Runs that entered each status (queued counts each leg queued).",
            ["status"], registry=r,
        ))  # fmt: skip
        self.run_seconds = Labelled(Histogram(
            "assistd_run_duration_seconds", "Time a worker executed a run (each leg until "
            "it ends or waits for tool outputs), by the status it reached.", ["status"],
            buckets=LATENCY_BUCKETS, registry=r,
        ))  # fmt: skip
        self.first_token_seconds = Histogram(
            "assistd_time_to_first_token_seconds", "From a worker starting a run (or its "
            "next leg) to the first text the model streamed.", buckets=LATENCY_BUCKETS,
            registry=r,
        )  # fmt: skip
        self.model_seconds = Labelled(Histogram(
            "assistd_model_call_duration_seconds", "One model call, from the request to the "
            "end of its stream, by model and outcome.", ["model", "outcome"],
            buckets=LATENCY_BUCKETS, registry=r,
        ))  # fmt: skip
        self.tool_seconds = Labelled(Histogram(
            "assistd_tool_call_duration_seconds", "One server-run tool call, by tool.",
            ["tool"], buckets=LATENCY_BUCKETS, registry=r,
        ))  # fmt: skip
        self.queue_depth = Gauge(
            "assistd_queue_depth", "Run jobs waiting to be claimed (sampled every second "
            "by the processes that execute runs).", registry=r,
        )  # fmt: skip
        self.takeovers = Counter(
            "assistd_lease_takeovers", "Runs taken over from a worker that stopped holding "
            "them (its lease lapsed, or the server restarted).", registry=r,
        )  # fmt: skip
