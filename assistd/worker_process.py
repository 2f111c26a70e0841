"""`assistd worker`: the distributed shape's run executor (and file ingester), with no
HTTP API.

It migrates the store (safe next to other processes starting: migrations take a
PostgreSQL advisory lock), then claims runs off the Redis queue until SIGTERM or SIGINT.
Stopping lets go of the runs held without ending them: their leases lapse and another
worker takes them over. With `worker_metrics_port`, it serves its Prometheus metrics
(runs, model and tool calls, queue depth) at `/metrics` on that port, with no key: bind
it (`host`) where only the scraper reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable

from prometheus_client import start_http_server

from assistd.core.plugin_rules import check_declared_ids
from assistd.process_memory import MemorySettler
from assistd.runtime import Runtime, build_runtime, settle_collector
from assistd.server_lock import postgres_session
from assistd.settings import Settings
from assistd.tools.plugins.source import check_declared

log = logging.getLogger("assistd.worker")


async def run_worker(settings: Settings, concurrency: int | None = None) -> None:
    check_declared_ids(settings.plugins)
    documents = check_declared(settings)
    async with postgres_session(settings.resolved_database_url, "worker"):
        pass  # says plainly when PostgreSQL is out of reach
    runtime = build_runtime(settings, documents, concurrency)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    stop_metrics = _serve_metrics(settings, runtime)
    settler = MemorySettler(runtime.store.release_memory)
    try:
        await runtime.store.migrate()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
        await runtime.start_workers()
        settle_collector()
        settler.start()
        log.info(
            "assistd worker ready: %d runs and %d files at once, lease %g s",
            runtime.workers.concurrency, settings.ingest_workers, settings.run_lease_s,
        )  # fmt: skip
        print("assistd worker ready", flush=True)
        await stop.wait()
        log.info("assistd worker stopping: runs held are left for other workers")
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
        await settler.close()
        stop_metrics()
        await runtime.close()


def _serve_metrics(settings: Settings, runtime: Runtime) -> Callable[[], None]:
    """Starts the metrics endpoint (a thread) when a port is set; returns its stop."""
    metrics = runtime.telemetry.metrics
    if settings.worker_metrics_port is None or metrics is None:
        return lambda: None
    server, _ = start_http_server(
        settings.worker_metrics_port, settings.host, registry=metrics.registry
    )
    log.info("worker metrics at http://%s:%d/metrics", settings.host,
             settings.worker_metrics_port)  # fmt: skip
    return server.shutdown
