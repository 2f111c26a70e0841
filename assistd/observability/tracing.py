"""OpenTelemetry spans, exported by OTLP/HTTP when `otlp_endpoint` is set. Unset, no SDK
is imported and no tracer provider is made: every span hook is one `None` check.

The provider is this process's own (never installed globally), so two servers in one
process trace apart. A run's job carries the W3C `traceparent` of the request that
queued it, so the run's span (in whichever worker executes it) is that request's child.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from opentelemetry.context import Context
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from assistd.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

_PROPAGATOR = TraceContextTextMapPropagator()


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A provider exporting to `otlp_endpoint` in batches, or None when it is unset."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBasedTraceIdRatio

    provider = TracerProvider(
        resource=Resource.create({"service.name": service}),
        sampler=ParentBasedTraceIdRatio(settings.trace_sample_ratio),
    )
    exporter = OTLPSpanExporter(
        endpoint=settings.otlp_endpoint.rstrip("/") + "/v1/traces",
        headers=dict(settings.otlp_headers),
        timeout=settings.otlp_timeout_s,
    )
    provider.add_span_processor(BatchSpanProcessor(exporter))
    return provider


def traceparent() -> str | None:
    """The current span's W3C traceparent, to carry across the queue."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def parent_context(value: str | None) -> Context | None:
    """The context a carried traceparent names (None: a new trace)."""
    return _PROPAGATOR.extract({"traceparent": value}) if value else None
