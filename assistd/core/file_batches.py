"""File batches of a vector store (OpenAI's `vector_store.files_batch`): many files added
at once, each with its own attributes and chunking if given, ingested one by one. A file
that fails fails alone: the batch still completes, its `failed` count says how many did.
A file already in the store joins the batch and is ingested again."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from assistd.core import validation as v
from assistd.core.ids import new_id, now_ms
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import FileBatch, Page, PageRequest, VectorStore, VectorStoreFile
from assistd.core.vector_stores import check_attributes, check_status_filter, require_store
from assistd.errors import InvalidRequest, NotFound, echo
from assistd.retrieval.chunking import ChunkingStrategy
from assistd.store.base import KnowledgeRepo, Store

BATCH_FILES_MAX = 2000  # OpenAI's OpenAPI document: "The maximum batch size is 2000 files"


@dataclass(slots=True)
class BatchEntry:
    file_id: str
    strategy: ChunkingStrategy | None = None
    attributes: dict[str, Any] = field(default_factory=dict)
    where: str = "file_ids"  # the field that named it, for errors


def entries(
    file_ids: Sequence[str] | None, files: Sequence[BatchEntry] | None,
    strategy: ChunkingStrategy | None, attributes: Any,
) -> list[BatchEntry]:  # fmt: skip
    """The batch's files from either form of the request (exactly one is given)."""
    if file_ids is not None and files is not None:
        raise InvalidRequest("Give either 'file_ids' or 'files', not both.", "files")
    if files is not None:
        chosen, where = list(files), "files"
    else:
        shared = check_attributes(attributes)
        chosen = [BatchEntry(f, strategy, shared, f"file_ids[{i}]")
                  for i, f in enumerate(file_ids or [])]  # fmt: skip
        where = "file_ids"
    if not chosen:
        raise InvalidRequest("A batch needs at least one file: give 'file_ids' or 'files'.", where)
    if len(chosen) > BATCH_FILES_MAX:
        raise InvalidRequest(
            f"'{where}' has {len(chosen)} files; a batch takes at most {BATCH_FILES_MAX}.", where
        )
    for entry in chosen:
        v.check_length(entry.file_id, entry.where, 64)
    return list({e.file_id: e for e in chosen}.values())  # a file named twice: the last one


class FileBatches:
    def __init__(self, store: Store, knowledge: KnowledgeService) -> None:
        self.store = store
        self.knowledge = knowledge

    async def create(
        self, ws: str, vector_store_id: str, batch_files: list[BatchEntry]
    ) -> FileBatch:
        batch = FileBatch(new_id("vsfb"), vector_store_id, now_ms() // 1000)
        async with self.store.workspace(ws, write=True) as unit:
            vs = await require_store(unit.knowledge, vector_store_id)
            found = await unit.files.existing_ids([e.file_id for e in batch_files])
            for entry in batch_files:
                if entry.file_id not in found:
                    raise InvalidRequest(
                        f"No file found with id '{echo(entry.file_id)}'.", entry.where
                    )
            await unit.knowledge.insert_batch(batch)
            for entry in batch_files:
                await _add(unit.knowledge, vs, batch.id, entry)
            batch.counts = {"in_progress": len(batch_files)}
        await self.knowledge.start(ws, vector_store_id, *(e.file_id for e in batch_files))
        return batch

    async def get(self, ws: str, vector_store_id: str, batch_id: str) -> FileBatch:
        async with self.store.workspace(ws) as unit:
            return await _require_batch(unit.knowledge, vector_store_id, batch_id)

    async def cancel(self, ws: str, vector_store_id: str, batch_id: str) -> FileBatch:
        """Its files not yet done are cancelled (they keep nothing of their ingestion);
        a batch already done is answered as it is."""
        async with self.store.workspace(ws, write=True) as unit:
            batch = await _require_batch(unit.knowledge, vector_store_id, batch_id)
            if batch.status != "in_progress":
                return batch
            await unit.knowledge.cancel_batch(vector_store_id, batch_id)
            return await _require_batch(unit.knowledge, vector_store_id, batch_id)

    async def list_files(
        self, ws: str, vector_store_id: str, batch_id: str, page: PageRequest,
        status: str | None,
    ) -> Page[VectorStoreFile]:  # fmt: skip
        check_status_filter(status)
        async with self.store.workspace(ws) as unit:
            await _require_batch(unit.knowledge, vector_store_id, batch_id)
            return await unit.knowledge.page_files(vector_store_id, page, status, batch_id)


async def _add(repo: KnowledgeRepo, vs: VectorStore, batch_id: str, entry: BatchEntry) -> None:
    strategy = entry.strategy or ChunkingStrategy(vs.max_chunk_tokens, vs.chunk_overlap_tokens)
    existing = await repo.get_file(vs.id, entry.file_id)
    file = existing or VectorStoreFile(entry.file_id, vs.id, now_ms() // 1000)
    file.status, file.last_error, file.batch_id = "in_progress", None, batch_id
    if entry.attributes or existing is None:  # a file joining without attributes keeps its own
        file.attributes = dict(entry.attributes)
    file.max_chunk_tokens, file.chunk_overlap_tokens = strategy.max_tokens, strategy.overlap_tokens
    if existing is None:
        await repo.add_file(file)
    else:
        await repo.replace_file(file)


async def _require_batch(repo: KnowledgeRepo, vector_store_id: str, batch_id: str) -> FileBatch:
    await require_store(repo, vector_store_id)
    batch = await repo.get_batch(vector_store_id, batch_id)
    if batch is None:
        raise NotFound(
            f"No file batch found with id '{echo(batch_id)}' in vector store "
            f"'{echo(vector_store_id)}'."
        )
    return batch
