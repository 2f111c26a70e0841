"""Knowledge bases (vector stores): their files' ingestion, and hybrid search over them.

Ingestion of a file: parse and chunk (CPU-bound: a worker process when a pool is given,
else a thread), embed (the embedder's own thread or HTTP calls) batch by batch, then one
transaction writes the chunks with their vectors and keyword entries and marks the file
`completed`. A file whose parse fails is `failed` with `last_error` naming why; it fails
alone. A file cancelled (or removed) meanwhile keeps nothing of the work, and its
ingestion stops at the next batch.

`start` queues a file's ingestion as a job on the ingestion queue (a leased queue like
the run queue's, core/leases.py): the worker pool of whichever process claims it calls
`ingest`. The file's row is the only state, so a job taken over from a dead worker, or
queued again at an embedded start, ingests the file again from the start.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Any

from assistd.core.ids import new_id, now_ms
from assistd.core.objects import KnowledgeChunk, SearchHit, VectorStore, VectorStoreFile
from assistd.core.rankings import Rankings, overlapped_rankings, rankings_on
from assistd.errors import InvalidRequest, NotFound
from assistd.queue.base import IngestJob, LeasedRunQueue
from assistd.retrieval import filters as attribute_filters
from assistd.retrieval.chunking import Chunk, ChunkingStrategy
from assistd.retrieval.embedder import EmbeddingFailed
from assistd.retrieval.fusion import fuse
from assistd.retrieval.parsers import ParseFailed
from assistd.retrieval.pipeline import parse_and_chunk
from assistd.retrieval.registry import EmbedderRegistry
from assistd.retrieval.rerank import HttpReranker, RerankFailed
from assistd.store.base import KnowledgeRepo, Store
from assistd.tools.offload import ComputePool

log = logging.getLogger("assistd.knowledge")
Mode = str  # "hybrid" | "dense" | "keyword"
MAX_RESULTS = 50
TOUCH_EVERY_S = 60
KNOWN_EMBEDDERS = 10_000  # stores whose embedder a search remembers (then it starts over)
DAY_S = 86_400
ENQUEUE_S = 10.0  # start() waits this long for the queue to take a job
EMBED_BATCH = 128  # chunks embedded at once: a cancel is seen, and progress told, this often
# Told (chunks embedded, chunks in all) once the file is chunked and after each batch.
Progress = Callable[[int, int], None]


class _Unwanted(Exception):
    """The file was cancelled, removed or re-ingested while this ingestion ran."""


class KnowledgeService:
    def __init__(
        self, store: Store, embedders: EmbedderRegistry, compute: ComputePool | None = None,
        queue: LeasedRunQueue | None = None, reranker: HttpReranker | None = None,
    ) -> None:  # fmt: skip
        """`queue`: the ingestion queue `start` puts jobs on; without one (a tool or a
        test using the service alone), `start` ingests in a task of this process.
        `reranker`: reorders the fused hits (none: they keep the fused order)."""
        self.store = store
        self.embedders = embedders
        self.compute = compute
        self.queue = queue
        self.reranker = reranker
        # A hybrid search's parts at once, on connections of their own, where that pays.
        self.concurrent = store.parallel_reads
        self._embedder_of: dict[tuple[str, str], str] = {}  # (workspace, store): embedder

    # Vector stores and their files.

    async def create_store(
        self, ws: str, *, name: str | None = None, file_ids: Sequence[str] = (),
        strategy: ChunkingStrategy | None = None, embedder: str | None = None,
        metadata: dict[str, Any] | None = None, expires_after: dict[str, Any] | None = None,
    ) -> VectorStore:  # fmt: skip
        model = self.embedders.get(embedder)
        strategy = strategy or ChunkingStrategy()
        vs = VectorStore(
            id=new_id("vs"), created_at=now_ms() // 1000, name=name, embedder=model.name,
            dimension=model.dimension, max_chunk_tokens=strategy.max_tokens,
            chunk_overlap_tokens=strategy.overlap_tokens, metadata=dict(metadata or {}),
            expires_after=expires_after, last_active_at=now_ms() // 1000,
        )  # fmt: skip
        vs.expires_at = expiry_of(expires_after, vs.last_active_at)
        async with self.store.workspace(ws, write=True) as unit:
            await _require_files(unit.files.existing_ids, file_ids)
            await unit.knowledge.insert_store(vs)
            for file_id in dict.fromkeys(file_ids):
                await unit.knowledge.add_file(_new_file(vs, file_id, strategy, None))
        return vs

    async def add_file(
        self, ws: str, vector_store_id: str, file_id: str, *,
        strategy: ChunkingStrategy | None = None, attributes: dict[str, Any] | None = None,
    ) -> VectorStoreFile:  # fmt: skip
        """The file's entry, `in_progress`; ingest() (or start()) does the work."""
        async with self.store.workspace(ws, write=True) as unit:
            vs = await _require_store(unit.knowledge, vector_store_id)
            await _require_files(unit.files.existing_ids, [file_id])
            file = _new_file(vs, file_id, strategy, attributes)
            await unit.knowledge.add_file(file)
        return file

    async def reingest(
        self, ws: str, vector_store_id: str, file_id: str, strategy: ChunkingStrategy | None = None
    ) -> VectorStoreFile:
        """Back to `in_progress` (with a new strategy, if given); ingest() replaces the
        file's chunks whole when it completes."""
        async with self.store.workspace(ws, write=True) as unit:
            file = await unit.knowledge.get_file(vector_store_id, file_id)
            if file is None:
                raise NotFound(f"No file '{file_id}' in vector store '{vector_store_id}'.")
            if strategy is not None:
                file.max_chunk_tokens = strategy.max_tokens
                file.chunk_overlap_tokens = strategy.overlap_tokens
            file.status, file.last_error = "in_progress", None
            await unit.knowledge.replace_file(file)
        return file

    async def remove_file(self, ws: str, vector_store_id: str, file_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            await _require_store(unit.knowledge, vector_store_id)
            if not await unit.knowledge.remove_file(vector_store_id, file_id):
                raise NotFound(f"No file '{file_id}' in vector store '{vector_store_id}'.")

    async def delete_store(self, ws: str, vector_store_id: str) -> None:
        async with self.store.workspace(ws, write=True) as unit:
            if not await unit.knowledge.delete_store(vector_store_id):
                raise NotFound(f"No vector store found with id '{vector_store_id}'.")

    async def start(self, ws: str, vector_store_id: str, *file_ids: str) -> None:
        """Queues the files' ingestion and returns once they are queued (within
        ENQUEUE_S). A job that could not be queued is logged and its file stays
        `in_progress` (an embedded start queues it again); `enqueue` raises instead.
        Without a queue (a tool or a test using the service alone) the files are ingested
        here, one after another, before this returns."""
        for file_id in dict.fromkeys(file_ids):
            try:
                async with asyncio.timeout(ENQUEUE_S if self.queue is not None else None):
                    await self.enqueue(ws, vector_store_id, file_id)
            except Exception:  # the file stays in_progress, as said
                log.exception("queueing the ingestion of %s failed", file_id)

    async def enqueue(self, ws: str, vector_store_id: str, file_id: str) -> None:
        """Queues the file's ingestion for a worker (any process's, in the distributed
        shape); without a queue, ingests it here and now."""
        if self.queue is None:
            await self.ingest(ws, vector_store_id, file_id)
            return
        await self.queue.enqueue(IngestJob(ws, vector_store_id, file_id))

    async def cancel_file(self, ws: str, vector_store_id: str, file_id: str) -> VectorStoreFile:
        async with self.store.workspace(ws, write=True) as unit:
            file = await unit.knowledge.get_file(vector_store_id, file_id)
            if file is None:
                raise NotFound(f"No file '{file_id}' in vector store '{vector_store_id}'.")
            if file.status == "in_progress":
                file.status = "cancelled"
                await unit.knowledge.replace_file(file)
        return file

    # Ingestion.

    async def ingest(
        self, ws: str, vector_store_id: str, file_id: str, progress: Progress | None = None
    ) -> VectorStoreFile | None:
        """Parses, chunks, embeds and indexes one file; returns its entry as it ends (None
        when it was removed meanwhile). Never raises for a bad file: that file fails."""
        async with self.store.workspace(ws) as unit:
            vs = await unit.knowledge.get_store(vector_store_id)
            file = await unit.knowledge.get_file(vector_store_id, file_id)
            meta = await unit.files.get(file_id)
            content = await unit.files.content(file_id)
        if vs is None or file is None or file.status != "in_progress":
            return file
        if meta is None or content is None:
            return await self._finish(ws, file, [], ("file_not_found", "the file was deleted"))
        try:
            chunks = await self._chunks(meta.filename, content, file)
            vectors = await self._embed(ws, vs, file, [c.text for c in chunks], progress)
        except _Unwanted:
            return await self._current(ws, file)
        except ParseFailed as exc:
            return await self._finish(ws, file, [], (exc.code, str(exc)))
        except (EmbeddingFailed, InvalidRequest) as exc:
            return await self._finish(ws, file, [], ("embedding_failed", str(exc)))
        except Exception as exc:  # a bug or a crash in a parser: this file fails, no other
            log.exception("ingesting %s failed", file_id)
            return await self._finish(ws, file, [], ("server_error", f"ingestion failed: {exc}"))
        stored = [
            KnowledgeChunk(file_id, c.position, c.text, c.tokens, c.page, vectors[i])
            for i, c in enumerate(chunks)
        ]
        return await self._finish(ws, file, stored, None)

    async def _embed(
        self, ws: str, vs: VectorStore, file: VectorStoreFile, texts: list[str],
        progress: Progress | None,
    ) -> list[list[float]]:  # fmt: skip
        """The texts' vectors, batch by batch; _Unwanted once the file is no longer
        this ingestion's to finish."""
        embedder = self.embedders.get(vs.embedder)
        vectors: list[list[float]] = []
        for start in range(0, len(texts), EMBED_BATCH):
            if progress is not None:
                progress(start, len(texts))
            if start and ((now := await self._current(ws, file)) is None or not _same(now, file)):
                raise _Unwanted
            batch = await embedder.embed(texts[start : start + EMBED_BATCH])
            if batch.shape[1] != vs.dimension:  # the endpoint's configuration changed since
                raise EmbeddingFailed(
                    f"'{vs.embedder}' now gives vectors of {batch.shape[1]} dimensions; this "
                    f"vector store holds {vs.dimension}"
                )
            vectors.extend(batch.tolist())
        if progress is not None:
            progress(len(texts), len(texts))
        return vectors

    async def _current(self, ws: str, file: VectorStoreFile) -> VectorStoreFile | None:
        async with self.store.workspace(ws) as unit:
            return await unit.knowledge.get_file(file.vector_store_id, file.id)

    async def _chunks(self, filename: str, content: bytes, file: VectorStoreFile) -> list[Chunk]:
        args = (filename, content, file.max_chunk_tokens, file.chunk_overlap_tokens)
        if self.compute is not None:
            return await self.compute.call(parse_and_chunk, *args)
        return await asyncio.to_thread(parse_and_chunk, *args)

    async def _finish(
        self, ws: str, file: VectorStoreFile, chunks: list[KnowledgeChunk],
        error: tuple[str, str] | None,
    ) -> VectorStoreFile | None:  # fmt: skip
        async with self.store.workspace(ws, write=True) as unit:
            now = await unit.knowledge.get_file(file.vector_store_id, file.id)
            if now is None or not _same(now, file):  # cancelled, removed or re-ingested
                return now
            # Chunks of an earlier ingestion of the file go either way.
            await unit.knowledge.replace_chunks(file.vector_store_id, file.id, chunks)
            if error is not None:
                now.status, now.last_error = "failed", {"code": error[0], "message": error[1]}
                now.chunk_count = now.usage_bytes = 0
            else:
                now.status, now.last_error, now.chunk_count = "completed", None, len(chunks)
                now.usage_bytes = sum(len(c.text.encode()) + 4 * len(c.embedding) for c in chunks)
            await unit.knowledge.replace_file(now)
            return now

    # Search.

    async def search(
        self, ws: str, vector_store_ids: Sequence[str], query: str | Sequence[str], *,
        max_results: int = 10, score_threshold: float = 0.0,
        filters: dict[str, Any] | None = None, mode: Mode = "hybrid",
    ) -> list[SearchHit]:  # fmt: skip
        queries = [query] if isinstance(query, str) else list(query)
        _check_search(queries, max_results, score_threshold, filters, mode)
        ids = list(dict.fromkeys(vector_store_ids))
        depth = max(4 * max_results, 40) * (4 if filters else 1)
        if mode == "hybrid" and self.concurrent:
            checked = asyncio.ensure_future(self._stores(ws, ids))
            known = self._known_embedders(ws, ids)
            rankings = await overlapped_rankings(
                self.store, ws, ids, queries, depth, checked, known, self._query_vectors
            )
            stores = checked.result()
            async with self.store.workspace(ws) as unit:
                fused, rows = await self._select(
                    unit.knowledge, stores, rankings, filters, max_results, score_threshold
                )
        else:
            stores = await self._stores(ws, ids)
            names = {vs.embedder for vs in stores}
            vectors = await self._query_vectors(names, queries) if mode != "keyword" else {}
            async with self.store.workspace(ws) as unit:
                rankings = await rankings_on(unit.knowledge, stores, queries, vectors, depth, mode)
                fused, rows = await self._select(
                    unit.knowledge, stores, rankings, filters, max_results, score_threshold
                )
        if self.reranker is not None and fused:
            fused = await self._rerank(self.reranker, "\n".join(queries), fused, rows)
            fused = [(s, score) for s, score in fused if score >= score_threshold][:max_results]
        return [_hit(rows[s], score) for s, score in fused if s in rows]

    async def _select(
        self, repo: KnowledgeRepo, stores: list[VectorStore], rankings: Rankings,
        filters: dict[str, Any] | None, max_results: int, score_threshold: float,
    ) -> tuple[list[tuple[int, float]], dict[int, dict[str, Any]]]:  # fmt: skip
        """The fused hits that pass the filters and the cut, and their chunks' rows."""
        if filters is not None:
            allowed = await _passing(repo, stores, rankings, filters)
            rankings = [(w, [(s, v) for s, v in r if s in allowed]) for w, r in rankings]
        fused = fuse(rankings)
        if self.reranker is not None:  # it sees more than is returned, before the cut
            fused = fused[: max(self.reranker.candidates, max_results)]
        else:
            fused = [(s, score) for s, score in fused if score >= score_threshold]
            fused = fused[:max_results]
        return fused, await repo.chunk_rows([s for s, _ in fused])

    async def _rerank(
        self, reranker: HttpReranker, query: str, fused: list[tuple[int, float]],
        rows: dict[int, dict[str, Any]],
    ) -> list[tuple[int, float]]:  # fmt: skip
        """The reranker's order; on any failure of it, the fused order (logged)."""
        try:
            return await reranker.rerank(query, fused, {s: row["text"] for s, row in rows.items()})
        except RerankFailed as exc:
            log.warning("reranking failed, hits keep their fused order: %s", exc)
            return fused

    async def _stores(self, ws: str, ids: Sequence[str]) -> list[VectorStore]:
        """The stores to search, each made active now (which moves its expiry on); an
        expired one cannot be searched."""
        if not ids:
            raise InvalidRequest("Name at least one vector store to search.", "vector_store_ids")
        async with self.store.workspace(ws) as unit:
            stores = [await _require_store(unit.knowledge, i) for i in dict.fromkeys(ids)]
        if len(self._embedder_of) > KNOWN_EMBEDDERS:
            self._embedder_of.clear()
        self._embedder_of.update(((ws, vs.id), vs.embedder) for vs in stores)
        for vs in stores:
            if is_expired(vs):
                raise InvalidRequest(
                    f"The vector store '{vs.id}' has expired and can no longer be searched.",
                    "vector_store_id",
                )
        now = now_ms() // 1000
        stale = [vs for vs in stores if now - (vs.last_active_at or 0) >= TOUCH_EVERY_S]
        if stale:  # written at most once a minute, so searching stays a read
            async with self.store.workspace(ws, write=True) as unit:
                for vs in stale:
                    vs.last_active_at = now
                    vs.expires_at = expiry_of(vs.expires_after, now)
                    await unit.knowledge.replace_store(vs)
        return stores

    def _known_embedders(self, ws: str, ids: list[str]) -> dict[str, str] | None:
        """The stores' embedders, where an earlier search of each found them (a store's
        embedder never changes); None if one is not known yet."""
        known = {i: self._embedder_of.get((ws, i)) for i in ids}
        return None if None in known.values() else known  # type: ignore[return-value]

    async def _query_vectors(self, names: set[str], queries: list[str]) -> dict[str, Any]:
        """Each query embedded once per embedder named."""
        vectors: dict[str, Any] = {}
        for name in names:
            embedder = self.embedders.get(name)
            # E5-style models embed a query differently from a passage.
            embed = getattr(embedder, "embed_queries", None) or embedder.embed
            vectors[name] = await embed(queries)
        return vectors

    async def close(self) -> None:
        await self.embedders.close()
        if self.reranker is not None:
            await self.reranker.close()


def expiry_of(expires_after: dict[str, Any] | None, last_active_at: int | None) -> int | None:
    """When a store with this policy expires (Unix seconds); None: never."""
    if not expires_after or last_active_at is None:
        return None
    return last_active_at + int(expires_after["days"]) * DAY_S


def is_expired(vs: VectorStore) -> bool:
    return vs.expires_at is not None and vs.expires_at <= now_ms() // 1000


def _new_file(
    vs: VectorStore, file_id: str, strategy: ChunkingStrategy | None,
    attributes: dict[str, Any] | None,
) -> VectorStoreFile:  # fmt: skip
    strategy = strategy or ChunkingStrategy(vs.max_chunk_tokens, vs.chunk_overlap_tokens)
    return VectorStoreFile(
        id=file_id, vector_store_id=vs.id, created_at=now_ms() // 1000,
        attributes=dict(attributes or {}), max_chunk_tokens=strategy.max_tokens,
        chunk_overlap_tokens=strategy.overlap_tokens,
    )  # fmt: skip


def _same(now: VectorStoreFile, started: VectorStoreFile) -> bool:
    """Whether the file is still in progress as the ingestion that read `started` found
    it: a re-ingestion with another chunking strategy is a later job's to finish."""
    return (
        now.status == "in_progress"
        and (now.max_chunk_tokens, now.chunk_overlap_tokens)
        == (started.max_chunk_tokens, started.chunk_overlap_tokens)
    )  # fmt: skip


async def _require_store(repo: KnowledgeRepo, vector_store_id: str) -> VectorStore:
    vs = await repo.get_store(vector_store_id)
    if vs is None:
        raise NotFound.of("vector store", vector_store_id)
    return vs


async def _require_files(existing: Any, file_ids: Sequence[str]) -> None:
    found = await existing(list(file_ids)) if file_ids else set()
    missing = [f for f in file_ids if f not in found]
    if missing:
        raise InvalidRequest(f"No file found with id '{missing[0]}'.", "file_ids")


def _check_search(
    queries: list[str], max_results: int, threshold: float, filters: Any, mode: Mode
) -> None:
    if not queries or not all(isinstance(q, str) and q.strip() for q in queries):
        raise InvalidRequest("query must be a non-empty string or list of strings.", "query")
    if not 1 <= max_results <= MAX_RESULTS:
        raise InvalidRequest(
            f"max_num_results must be between 1 and {MAX_RESULTS}.", "max_num_results"
        )
    if not 0.0 <= threshold <= 1.0:
        raise InvalidRequest(
            "score_threshold must be between 0 and 1.", "ranking_options.score_threshold"
        )
    if mode not in ("hybrid", "dense", "keyword"):
        raise InvalidRequest("mode must be hybrid, dense or keyword.", "mode")
    if filters is not None:
        attribute_filters.check(filters)


async def _passing(
    repo: KnowledgeRepo, stores: list[VectorStore],
    rankings: list[tuple[float, list[tuple[int, float]]]], filters: dict[str, Any],
) -> set[int]:  # fmt: skip
    """The ranked chunks whose file's attributes pass the filters."""
    passing: set[tuple[str, str]] = set()
    for vs in stores:
        for file in await repo.all_files(vs.id):
            if attribute_filters.matches(filters, file.attributes):
                passing.add((vs.id, file.id))
    rows = await repo.chunk_rows(list({s for _, r in rankings for s, _ in r}))
    return {s for s, row in rows.items() if (row["vector_store_id"], row["file_id"]) in passing}


def _hit(row: dict[str, Any], score: float) -> SearchHit:
    return SearchHit(
        vector_store_id=row["vector_store_id"], file_id=row["file_id"],
        filename=row["filename"] or row["file_id"], position=row["position"], page=row["page"],
        text=row["text"], score=score, attributes=dict(row["attributes"] or {}),
    )  # fmt: skip
