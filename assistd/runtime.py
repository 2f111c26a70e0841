"""build_runtime(settings): the store, run queue, event bus, model routes and tools,
made once from the settings, and the services over them.

Today it builds the embedded shape (in-process queue, cancel signals and event log, with
the workers in this process); `assistd serve` runs it through the app's lifespan.
Building connects to nothing: `start` and `close` open and release.
"""

from __future__ import annotations

from dataclasses import dataclass

from assistd.core.executor import Executor
from assistd.core.file_links import FileLinks, file_links
from assistd.core.journal import Journal
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import JsonDict
from assistd.core.plugins import PluginService
from assistd.core.run_service import RunService
from assistd.core.service import Service
from assistd.core.tenancy import Tenancy
from assistd.core.worker import WorkerPool
from assistd.models.registry import ModelRegistry
from assistd.queue.memory import MemoryCancelSignals, MemoryEventBus, MemoryRunQueue
from assistd.retrieval.registry import EmbedderRegistry
from assistd.secrets import SecretBox, server_secret
from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.store.sql import SqlStore
from assistd.tools.plugins.source import WorkspacePlugins
from assistd.tools.registry import ToolRegistry


@dataclass(slots=True)
class Runtime:
    settings: Settings
    store: SqlStore
    bus: MemoryEventBus
    models: ModelRegistry
    tools: ToolRegistry
    plugin_source: WorkspacePlugins
    file_links: FileLinks
    tenancy: Tenancy
    service: Service
    plugins: PluginService
    runs: RunService
    workers: WorkerPool
    knowledge: KnowledgeService  # vector stores: ingestion and search (no routes yet)

    async def start_workers(self) -> None:
        """Loads the model routes, then recovers the runs left behind and starts the
        workers (the store must be migrated first)."""
        self.models.preload()
        await self.workers.start()

    async def close(self) -> None:
        """Stops the workers and releases everything, the store last."""
        try:
            await self.workers.stop()
            await self.knowledge.close()
            await self.tools.close()
            await self.plugin_source.close()
        finally:
            await self.store.close()


def build_runtime(
    settings: Settings, declared_documents: dict[str, JsonDict] | None = None
) -> Runtime:
    """`declared_documents`: the configuration's plugin documents, read and checked
    beforehand (tools.plugins.source.check_declared)."""
    # The store first, as before (its checks of the data dir come first); it connects
    # only when used, so a failure below leaves nothing open.
    store = open_store(settings)
    box = SecretBox(server_secret(settings))
    links = file_links(settings)
    bus = MemoryEventBus(settings.event_retention_s, settings.event_log_max_bytes)
    queue, cancels = MemoryRunQueue(), MemoryCancelSignals()
    service = Service(store, settings)
    plugins = PluginService(store, settings, box)
    source = WorkspacePlugins(plugins, settings, declared_documents)
    plugins.changed = source.forget
    models = ModelRegistry(settings)
    tools = ToolRegistry(settings)
    tools.plugin_source = source
    journal = Journal(store, bus)  # the one writer of run, step and message state
    runs = RunService(service, journal, queue, cancels)
    executor = Executor(service, journal, models, tools, cancels, settings, links)
    workers = WorkerPool(store, queue, executor, runs, settings.run_workers)
    # Parsing and chunking share the tools' worker processes (started on first use).
    knowledge = KnowledgeService(store, EmbedderRegistry.from_settings(settings), tools.compute)
    return Runtime(
        settings, store, bus, models, tools, source, links, Tenancy(store), service, plugins,
        runs, workers, knowledge,
    )  # fmt: skip
