"""OpenTelemetry spans, exported by OTLP/HTTP when `otlp_endpoint` is set. With
`tracing_enabled` and no endpoint, spans only carry ids (for the logs, and the
traceparent a run's job carries): `IdsOnlyTracer`. With neither, no SDK is imported and
no tracer is made: every span hook is one `None` check.

The provider is this process's own (never installed globally), so two servers in one
process trace apart. A run's job carries the W3C `traceparent` of the request that
queued it, so the run's span (in whichever worker executes it) is that request's child.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from opentelemetry import context
from opentelemetry.context import Context
from opentelemetry.trace import (
    NonRecordingSpan,
    NoOpTracer,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    Tracer,
    get_current_span,
    set_span_in_context,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

from assistd.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

_PROPAGATOR = TraceContextTextMapPropagator()


def tracer_provider(settings: Settings, service: str) -> TracerProvider | None:
    """A provider exporting to `otlp_endpoint` in batches, or None when it is unset."""
    if not settings.otlp_endpoint:
        return None
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, ParentBasedTraceIdRatio

    ratio = settings.trace_sample_ratio  # all: no ratio worked out for each new trace
    sampler = ParentBased(ALWAYS_ON) if ratio == 1 else ParentBasedTraceIdRatio(ratio)
    provider = TracerProvider(resource=Resource.create({"service.name": service}), sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(_exporter(settings, settings.otlp_endpoint)))
    return provider


class IdsOnlyTracer(NoOpTracer):
    """Spans with ids and nothing recorded, for tracing with no exporter: nothing could
    read their names, attributes or times, and the SDK's recording span costs ten times
    as much (30 us a request here)."""

    def start_span(
        self,
        name: str,
        context: Context | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        attributes: Any = None,
        links: Any = None,
        start_time: int | None = None,
        record_exception: bool = True,
        set_status_on_exception: bool = True,
    ) -> Span:
        parent = get_current_span(context).get_span_context()
        if parent.is_valid:
            trace_id, flags = parent.trace_id, parent.trace_flags
        else:
            trace_id, flags = _random_id(128), TraceFlags(TraceFlags.SAMPLED)
        return NonRecordingSpan(SpanContext(trace_id, _random_id(64), False, flags))


def _random_id(bits: int) -> int:
    while True:  # an id of 0 is invalid
        value = random.getrandbits(bits)
        if value:
            return value


def _exporter(settings: Settings, endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return OTLPSpanExporter(
        endpoint=endpoint.rstrip("/") + "/v1/traces",
        headers=dict(settings.otlp_headers),
        timeout=settings.otlp_timeout_s,
    )


@contextmanager
def current_span(
    tracer: Tracer, name: str, attributes: dict[str, Any], kind: SpanKind, parent: str | None
) -> Iterator[Span]:
    """A span, current inside the block; an exception escaping makes it an error. (The
    SDK's start_as_current_span does the same through two more context managers.)"""
    span = tracer.start_span(name, parent_context(parent), kind, attributes)
    token = context.attach(set_span_in_context(span))
    try:
        yield span
    except BaseException as exc:
        span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        raise
    finally:
        context.detach(token)
        span.end()


def traceparent() -> str | None:
    """The current span's W3C traceparent, to carry across the queue."""
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier.get("traceparent")


def parent_context(value: str | None) -> Context | None:
    """The context a carried traceparent names (None: a new trace)."""
    return _PROPAGATOR.extract({"traceparent": value}) if value else None
