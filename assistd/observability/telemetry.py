"""What the rest of the server calls to report: one object, a handful of hooks.

Metrics are on unless `metrics_enabled` is false; spans only with an OTLP endpoint.
Every hook costs a counter or histogram update, and a span only where tracing is on."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, get_current_span

from assistd.observability import tracing
from assistd.observability.metrics import Metrics
from assistd.settings import Settings

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import TracerProvider

MAX_LABELS = 100  # distinct model (or tool) names labelled; more count as "other"
# When the run executing in this task started its leg (cleared at its first token).
_LEG_START: ContextVar[list[float] | None] = ContextVar("assistd_leg_start", default=None)
SpanHook = AbstractContextManager[Span | None]


class Telemetry:
    def __init__(
        self,
        metrics: Metrics | None = None,
        provider: TracerProvider | None = None,
        ids_only: bool = False,
    ) -> None:
        """`ids_only`: with no provider, spans that carry ids and record nothing."""
        self.metrics = metrics
        self.provider = provider
        self.tracer: Tracer | None = (
            provider.get_tracer("assistd") if provider else
            tracing.IdsOnlyTracer() if ids_only else None
        )  # fmt: skip
        self._labels: dict[str, set[str]] = {"model": set(), "tool": set()}

    @classmethod
    def from_settings(cls, settings: Settings, service: str = "assistd") -> Telemetry:
        metrics = Metrics() if settings.metrics_enabled else None
        provider = tracing.tracer_provider(settings, service)
        return cls(metrics, provider, ids_only=settings.tracing_enabled)

    def close(self) -> None:
        """Sends the spans still batched, and stops the exporter."""
        if self.provider is not None:
            self.provider.shutdown()

    # ---- spans ------------------------------------------------------------------------

    def span(
        self,
        name: str,
        attributes: dict[str, Any],
        kind: SpanKind = SpanKind.INTERNAL,
        parent: str | None = None,
    ) -> SpanHook:
        """A span current inside the block (None when tracing is off). `parent`: a
        carried traceparent to continue. An exception escaping marks it an error."""
        if self.tracer is None:
            return nullcontext()
        return tracing.current_span(self.tracer, name, attributes, kind, parent)

    def traceparent(self) -> str | None:
        return tracing.traceparent() if self.tracer is not None else None

    # ---- runs -------------------------------------------------------------------------

    def run_entered(self, status: str) -> None:
        if self.metrics is not None:
            self.metrics.runs(status).inc()

    def takeover(self) -> None:
        if self.metrics is not None:
            self.metrics.takeovers.inc()

    @contextmanager
    def run_leg(
        self, workspace: str, thread_id: str, run_id: str, parent: str | None
    ) -> Iterator[None]:
        """Around a worker's execution of a run (one leg): its span, and the start its
        time to first token counts from."""
        token = _LEG_START.set([time.monotonic()])
        try:
            ids = {"assistd.workspace_id": workspace, "assistd.thread_id": thread_id,
                   "assistd.run_id": run_id}  # fmt: skip
            with self.span("run", ids, SpanKind.CONSUMER, parent):
                yield
        finally:
            _LEG_START.reset(token)

    def leg_ended(self, status: str, model: str, seconds: float, error: str | None) -> None:
        """The leg's end: its duration by status, and its span's outcome."""
        if self.metrics is not None:
            self.metrics.run_seconds(status).observe(seconds)
        if self.tracer is not None:
            span = get_current_span()
            span.set_attributes({"assistd.run.status": status, "assistd.model": model})
            if error is not None:
                span.set_status(Status(StatusCode.ERROR, error))

    def first_text(self) -> None:
        """The model streamed text: the first time in this leg, its time to first token."""
        started = _LEG_START.get()
        if started and self.metrics is not None:
            self.metrics.first_token_seconds.observe(time.monotonic() - started.pop())

    def queue_depth(self, depth: int) -> None:
        if self.metrics is not None:
            self.metrics.queue_depth.set(depth)

    # ---- model and tool calls -----------------------------------------------------------

    @contextmanager
    def model_call(self, model: str) -> Iterator[None]:
        started, outcome = time.monotonic(), "error"
        try:
            with self.span("model call", {"assistd.model": model}, SpanKind.CLIENT):
                yield
            outcome = "ok"
        finally:
            if self.metrics is not None:
                label = self._label("model", model)
                self.metrics.model_seconds(label, outcome).observe(time.monotonic() - started)

    @contextmanager
    def tool_call(self, tool: str, call_id: str) -> Iterator[None]:
        started = time.monotonic()
        try:
            with self.span("tool call", {"assistd.tool": tool, "assistd.tool_call_id": call_id}):
                yield
        finally:
            if self.metrics is not None:
                label = self._label("tool", tool)
                self.metrics.tool_seconds(label).observe(time.monotonic() - started)

    def _label(self, kind: str, value: str) -> str:
        """`value`, unless MAX_LABELS others of its kind came first (clients name models)."""
        seen = self._labels[kind]
        if value in seen:
            return value
        if len(seen) >= MAX_LABELS:
            return "other"
        seen.add(value)
        return value
