"""Metrics (Prometheus) and traces (OpenTelemetry) of one process: `Telemetry`, made once
by the runtime from the settings and handed to the few places that report (the request
middleware, the journal, the executor and the tool round). A leaf: it imports nothing of
assistd but the settings, so core and api may both use it."""

from assistd.observability.telemetry import Telemetry

__all__ = ["Telemetry"]
