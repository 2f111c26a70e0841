"""build_runtime(settings): the store, run queue, event bus, model routes and tools,
made once from the settings, and the services over them.

Two shapes, picked by the settings:
- embedded (no `redis_url`): in-process queue, cancel signals and event log, with the
  workers in the one `assistd serve` process, which holds the store's serving lock;
- distributed (`redis_url`, PostgreSQL only): the queue, cancels and events on Redis, so
  any number of `assistd serve --no-worker` and `assistd worker` processes share them.
Building connects to nothing: `start_workers` and `close` open and release.
"""

from __future__ import annotations

import gc
from dataclasses import dataclass, field
from functools import partial

from redis.asyncio import Redis

from assistd.core.audit import AuditRetention
from assistd.core.content_filter import ContentFilters
from assistd.core.events import EventBus
from assistd.core.executor import Executor
from assistd.core.file_links import FileLinks, file_links
from assistd.core.file_search import NAME as FILE_SEARCH
from assistd.core.file_search import FileSearch
from assistd.core.journal import Journal
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import JsonDict
from assistd.core.plugins import PluginService
from assistd.core.quotas import Quotas
from assistd.core.run_service import RunService
from assistd.core.search_stores import SearchStores
from assistd.core.service import Service
from assistd.core.tenancy import Tenancy
from assistd.core.thread_ttl import ThreadSweeper
from assistd.core.worker import Ingestion, WorkerPool
from assistd.errors import StartupError
from assistd.models.registry import ModelRegistry
from assistd.observability import Telemetry
from assistd.queue.base import CancelChannel, LeasedRunQueue
from assistd.queue.counters import Counters, MemoryCounters, RedisCounters
from assistd.queue.memory import MemoryCancelSignals, MemoryEventBus, MemoryRunQueue
from assistd.queue.redis import RedisCancelChannel, RedisEventBus, RedisRunQueue, connect
from assistd.retrieval.registry import EmbedderRegistry
from assistd.retrieval.rerank import HttpReranker
from assistd.secrets import SecretBox, server_secret
from assistd.settings import Settings
from assistd.store import usage as usage_sql
from assistd.store.factory import open_store
from assistd.store.sql import SqlStore
from assistd.tools.plugins.source import WorkspacePlugins
from assistd.tools.registry import ToolRegistry


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: SqlStore
    bus: EventBus
    models: ModelRegistry
    tools: ToolRegistry
    plugin_source: WorkspacePlugins
    file_links: FileLinks
    tenancy: Tenancy
    service: Service
    plugins: PluginService
    runs: RunService
    workers: WorkerPool
    queue: LeasedRunQueue
    cancels: CancelChannel
    knowledge: KnowledgeService  # vector stores: ingestion and search
    ingest_queue: LeasedRunQueue  # ingestion jobs, a stream of their own
    redis: Redis | None = None  # the distributed shape's connection pool
    quotas: Quotas | None = None  # per key and workspace (core/quotas.py)
    telemetry: Telemetry = field(default_factory=Telemetry)  # metrics and spans

    @property
    def distributed(self) -> bool:
        return self.redis is not None

    async def start_workers(self) -> None:
        """Loads the model routes, then (embedded shape) recovers the runs left behind
        and starts the workers (the store must be migrated first)."""
        self.models.preload()
        await self.workers.start()

    async def close(self) -> None:
        """Stops the workers and releases everything, the store last."""
        try:
            await self.workers.stop()
            await self.knowledge.close()
            await self.tools.close()
            await self.models.close()
            await self.plugin_source.close()
            await self.cancels.close()
            await self.queue.close()
            await self.ingest_queue.close()
            await self.bus.close()
            if self.redis is not None:
                await self.redis.aclose()
        finally:
            self.telemetry.close()
            await self.store.close()


# One process holds every run: a lease there never passes to another holder, and an event
# loop stalled past a short lease must not hand a run it is executing to itself.
EMBEDDED_LEASE_S = 86400.0


def check_shape(settings: Settings) -> None:
    """StartupError for a distributed setting the store cannot serve, or a content
    filter that cannot be loaded."""
    if settings.redis_url and settings.uses_sqlite:
        raise StartupError(
            "redis_url (ASSISTD_REDIS_URL) runs assistd distributed, which needs PostgreSQL: "
            "set database_url to a postgresql+asyncpg:// URL, or unset redis_url to run the "
            "embedded shape on SQLite"
        )
    ContentFilters(settings)  # a filter that cannot load: a one-line error, before listening


@dataclass(slots=True)
class _Transport:
    queue: LeasedRunQueue
    ingest_queue: LeasedRunQueue
    cancels: CancelChannel
    bus: EventBus
    redis: Redis | None


def _transport(settings: Settings) -> _Transport:
    if not settings.redis_url:
        bus = MemoryEventBus(settings.event_retention_s, settings.event_log_max_bytes)
        queues = MemoryRunQueue(EMBEDDED_LEASE_S), MemoryRunQueue(EMBEDDED_LEASE_S)
        return _Transport(*queues, MemoryCancelSignals(), bus, None)
    client = connect(settings.redis_url, max(settings.sse_heartbeat_s, settings.run_lease_s / 2))
    prefix, lease_s = settings.redis_prefix, settings.run_lease_s
    return _Transport(
        RedisRunQueue(client, prefix, lease_s),
        RedisRunQueue(client, prefix, lease_s, stream="ingest"),
        RedisCancelChannel(client, prefix),
        RedisEventBus(client, prefix, settings.event_retention_s),
        client,
    )


def build_runtime(
    settings: Settings,
    declared_documents: dict[str, JsonDict] | None = None,
    concurrency: int | None = None,
) -> Runtime:
    """`declared_documents`: the configuration's plugin documents, read and checked
    beforehand (tools.plugins.source.check_declared). `concurrency`: runs executing at
    once in this process (default settings.run_workers)."""
    check_shape(settings)
    # The store first, as before (its checks of the data dir come first); it connects
    # only when used, so a failure below leaves nothing open.
    store = open_store(settings)
    box = SecretBox(server_secret(settings))
    links = file_links(settings)
    transport = _transport(settings)
    queue, cancels, bus, redis = transport.queue, transport.cancels, transport.bus, transport.redis
    service = Service(store, settings)
    plugins = PluginService(store, settings, box)
    source = WorkspacePlugins(plugins, settings, declared_documents)
    plugins.changed = source.forget
    models = ModelRegistry(settings)
    tools = ToolRegistry(settings)
    tools.plugin_source = source
    telemetry = Telemetry.from_settings(settings)
    journal = Journal(store, bus, telemetry)  # the one writer of run, step and message state
    runs = RunService(service, journal, queue, cancels)
    # Parsing and chunking share the tools' worker processes (started on first use).
    knowledge = KnowledgeService(
        store, EmbedderRegistry.from_settings(settings), tools.compute, transport.ingest_queue,
        HttpReranker.from_settings(settings.reranker),
    )  # fmt: skip
    executor = Executor(service, journal, models, tools, cancels, settings, links, knowledge)
    ingestion = Ingestion(transport.ingest_queue, knowledge, settings.ingest_workers)
    # Ending in-progress runs at start is for the embedded shape's one process only.
    workers = WorkerPool(
        store, queue, executor, runs, concurrency or settings.run_workers,
        recover=redis is None, ingestion=ingestion,
        threads=ThreadSweeper(store, settings), thread_sweep_s=settings.thread_sweep_interval_s,
        audit=AuditRetention(store, settings.audit_retention_days),
    )  # fmt: skip
    tools.provide(FILE_SEARCH, FileSearch(store, knowledge))
    service.search_stores = SearchStores(store, knowledge)
    return Runtime(
        settings, store, bus, models, tools, source, links, Tenancy(store), service, plugins,
        runs, workers, queue, cancels, knowledge, transport.ingest_queue, redis,
        _quotas(settings, store, redis), telemetry,
    )  # fmt: skip


def _quotas(settings: Settings, store: SqlStore, redis: Redis | None) -> Quotas:
    """Counted in Redis when scaled out (shared by the replicas), else in this process."""
    counters: Counters = (
        MemoryCounters() if redis is None else RedisCounters(redis, settings.redis_prefix)
    )
    return Quotas(settings, counters, partial(usage_sql.tokens_on, store.engine))


# Allocations between young collections (CPython's default is 700). Each token delta
# makes a few short-lived containers: at 700 the young collection ran every few dozen
# deltas and, with what the runs hold, took about a tenth of a server's CPU under a
# streaming load.
GC_YOUNG_THRESHOLD = 20_000
# Young collections between collections of the middle generation (CPython's default is
# 10). What a stream holds survives young collections and waits there; at 10, a
# 1,000-stream load met a middle collection every ten seconds or so, each a 50-70 ms
# stall of every stream (bench/README.md). A middle collection walks only what entered
# it and is still alive, so the wait between them does not grow one past the live set.
GC_MIDDLE_THRESHOLD = 100


def settle_collector() -> None:
    """Once started: what start-up made (modules, routes, the schema: most of the heap)
    lives as long as the process, so out of the collector's sight a full collection under
    load walks only what the runs made; and young and middle collections come less
    often."""
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, GC_MIDDLE_THRESHOLD, gc.get_threshold()[2])
