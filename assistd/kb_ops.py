"""What `assistd kb` does on the store: finds a knowledge base by name or id, uploads
files into a workspace and ingests them here, telling a progress display as it goes.

The CLI ingests in its own process (not through the worker queue), so it needs no
running server and can show each file's chunks as they are embedded.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import PageRequest, VectorStore, VectorStoreFile, Workspace
from assistd.core.service import Service, Upload
from assistd.core.tenancy import Tenancy
from assistd.errors import AssistdError
from assistd.retrieval import parsers
from assistd.retrieval.registry import EmbedderRegistry
from assistd.retrieval.rerank import HttpReranker
from assistd.settings import Settings

MAX_PAGES = 10_000  # of 100 stores each: a bound, not a limit anyone meets


class KbError(AssistdError):
    """A one-line refusal of the command (exit 1, no traceback)."""


def read_files(paths: Sequence[Path]) -> list[Upload]:
    """The files as uploads; KbError for one that cannot be read or searched, before
    anything is stored."""
    uploads = []
    for path in paths:
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise KbError(f"cannot read {path}: {exc.strerror or exc}") from None
        if not parsers.supported(path.name, content):
            suffix = path.suffix or "without a suffix"
            raise KbError(f"{path}: files of type '{suffix}' cannot be searched")
        uploads.append(Upload(path.name, content))
    return uploads


@contextlib.asynccontextmanager
async def knowledge_of(tenancy: Tenancy, settings: Settings) -> AsyncIterator[KnowledgeService]:
    """A knowledge service on the CLI's store (no queue: `ingest` works here)."""
    knowledge = KnowledgeService(
        tenancy.store, EmbedderRegistry.from_settings(settings),
        reranker=HttpReranker.from_settings(settings.reranker),
    )  # fmt: skip
    try:
        yield knowledge
    finally:
        await knowledge.close()


async def all_stores(knowledge: KnowledgeService, ws: str) -> list[VectorStore]:
    """The workspace's vector stores, oldest first."""
    found: list[VectorStore] = []
    after = None
    async with knowledge.store.workspace(ws) as unit:
        for _ in range(MAX_PAGES):
            page = await unit.knowledge.page_stores(PageRequest(100, "asc", after))
            found.extend(page.items)
            if not page.has_more or not page.items:
                break
            after = page.items[-1].id
    return found


async def find_kb(
    tenancy: Tenancy, knowledge: KnowledgeService, name: str, workspace: str | None
) -> tuple[Workspace, VectorStore]:
    """The knowledge base `name` (its name or vs_ id), in `workspace` if given, else in
    whichever workspace holds it; KbError if none, or if the name is not unique."""
    spaces = [await tenancy.find_workspace(workspace)] if workspace else None
    if spaces is None:
        spaces = await tenancy.list_workspaces()
    found = [
        (ws, vs)
        for ws in spaces
        for vs in await all_stores(knowledge, ws.id)
        if name in (vs.id, vs.name)
    ]
    where = f" in workspace {workspace}" if workspace else ""
    if not found:
        raise KbError(f"no knowledge base named '{name}'{where}")
    if len(found) > 1:
        ids = ", ".join(f"{vs.id} (workspace {ws.name})" for ws, vs in found)
        raise KbError(f"'{name}' names {len(found)} knowledge bases{where}: {ids}; give its id")
    return found[0]


class Progress(Protocol):
    """What ingestion tells the display: each file's start, its chunks embedded, its end
    (files are ingested one at a time)."""

    def begin(self, filename: str) -> Callable[[int, int], None]:
        """Starts a file; returns the callback told (chunks embedded, chunks in all)."""
        ...

    def end(self, file: VectorStoreFile | None) -> None: ...


@dataclass(slots=True)
class Ingested:
    files: list[tuple[str, VectorStoreFile | None]]  # (filename, its entry as it ended)

    @property
    def failed(self) -> list[tuple[str, VectorStoreFile | None]]:
        return [(n, f) for n, f in self.files if f is None or f.status != "completed"]

    @property
    def chunks(self) -> int:
        return sum(f.chunk_count for _, f in self.files if f is not None)


async def upload(service: Service, ws: str, uploads: list[Upload]) -> list[str]:
    return [f.id for f in await service.upload_files(ws, uploads)]


async def ingest_files(
    knowledge: KnowledgeService, ws: str, vs_id: str, files: list[tuple[str, str]],
    progress: Progress,
) -> Ingested:  # fmt: skip
    """Ingests the store's `files` ((file id, filename), already added) one by one. If
    interrupted, the files not finished are cancelled, so none is left `in_progress`."""
    ended: list[tuple[str, VectorStoreFile | None]] = []
    try:
        for file_id, filename in files:
            file = await knowledge.ingest(ws, vs_id, file_id, progress.begin(filename))
            progress.end(file)
            ended.append((filename, file))
    except asyncio.CancelledError:
        for file_id, _ in files[len(ended) :]:
            with contextlib.suppress(Exception):
                await asyncio.shield(knowledge.cancel_file(ws, vs_id, file_id))
        raise
    return Ingested(ended)
