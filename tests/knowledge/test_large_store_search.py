"""Dense search of a store large enough for SQLite's IVF index (store/ivf.py) finds what
the exact search finds; a small store's results are exactly the exact search's; removing
files or the store leaves no row in the index's tables. On SQLite and PostgreSQL (HNSW or
the exact real[] search there: the same expectations hold)."""

from __future__ import annotations

from typing import Any

import numpy as np
from sqlalchemy import text

from assistd.core.ids import new_id
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import KnowledgeChunk
from assistd.store import pg_dense
from assistd.store.ivf import MIN_CHUNKS
from assistd.store.sql import SqlStore
from tests.support.store import new_workspace

FILE_CHUNKS = 500
Vectors = dict[int, np.ndarray[Any, Any]]


def clustered(rng: np.random.Generator, n: int) -> np.ndarray[Any, Any]:
    """Vectors with neighbourhoods, as embeddings have (each near one of 300 topics)."""
    topics = rng.standard_normal((300, 384)).astype(np.float32)
    v = topics[rng.integers(0, 300, n)] + 1.2 * rng.standard_normal((n, 384)).astype(np.float32)
    out: np.ndarray[Any, Any] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


async def fill(knowledge: KnowledgeService, ws: str, vs: str, n: int) -> tuple[list[str], Vectors]:
    """n chunks in files of FILE_CHUNKS; their vectors by chunk seq."""
    vectors = clustered(np.random.default_rng(11), n)
    files: list[str] = []
    for start in range(0, n, FILE_CHUNKS):
        file_id = new_id("file")
        rows = [
            KnowledgeChunk(file_id, i, f"chunk {start + i}", 3, None, vectors[start + i].tolist())
            for i in range(min(FILE_CHUNKS, n - start))
        ]
        async with knowledge.store.workspace(ws, write=True) as unit:
            await unit.knowledge.replace_chunks(vs, file_id, rows)
        files.append(file_id)
    by_seq: Vectors = {}
    async with knowledge.store.engine.connect() as conn:
        for i, file_id in enumerate(files):
            found = await conn.execute(
                text("SELECT seq FROM chunks WHERE file_id = :f ORDER BY position"), {"f": file_id}
            )
            for j, (seq,) in enumerate(found):
                by_seq[int(seq)] = vectors[i * FILE_CHUNKS + j]
    return files, by_seq


def exact_top(by_seq: Vectors, query: np.ndarray[Any, Any], k: int = 10) -> list[int]:
    seqs = list(by_seq)
    sims = np.stack([by_seq[s] for s in seqs]) @ query
    return [seqs[i] for i in np.argsort(-sims, kind="stable")[:k]]


def queries(by_seq: Vectors, count: int) -> list[np.ndarray[Any, Any]]:
    """Queries close to stored chunks (cosine ~0.8), as a question is to its passage."""
    rng = np.random.default_rng(5)
    seqs = list(by_seq)
    out = []
    for i in rng.integers(0, len(seqs), count):
        v = by_seq[seqs[int(i)]] + 0.04 * rng.standard_normal(384).astype(np.float32)
        out.append(v / np.linalg.norm(v))
    return out


async def dense(knowledge: KnowledgeService, ws: str, vs: str, q: Any, k: int = 10) -> list[int]:
    """The best k of a search as deep as the server's (40 at least: the HNSW scan's width
    follows it). In a transaction, as the server searches: the scan settings are local."""
    async with knowledge.store.workspace(ws, transaction=True) as unit:
        found = await unit.knowledge.dense_search([vs], q.tolist(), max(k, 40))
    return [s for s, _ in found[:k]]


async def ivf_rows(store: SqlStore, vs: str) -> tuple[int, int]:
    """(indexes, vectors) rows of the store's IVF index; (0, 0) on PostgreSQL."""
    async with store.engine.connect() as conn:
        if conn.dialect.name != "sqlite":
            return 0, 0
        params = {"vs": vs}
        counts = [
            (await conn.execute(text(f"SELECT count(*) FROM {t} WHERE vector_store_id = :vs"),
                                params)).scalar_one()
            for t in ("ivf_indexes", "ivf_vectors")
        ]  # fmt: skip
    return int(counts[0]), int(counts[1])


async def test_a_small_store_is_searched_exactly(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    vs = (await knowledge.create_store(ws)).id
    _, by_seq = await fill(knowledge, ws, vs, 300)
    assert await ivf_rows(store, vs) == (0, 0)
    for q in queries(by_seq, 5):
        assert set(await dense(knowledge, ws, vs, q)) == set(exact_top(by_seq, q))


async def test_a_large_store_finds_what_the_exact_search_finds(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    vs = (await knowledge.create_store(ws)).id
    _, by_seq = await fill(knowledge, ws, vs, MIN_CHUNKS + 1000)
    if store.engine.dialect.name == "sqlite":
        assert await ivf_rows(store, vs) == (1, len(by_seq))  # the index serves it
    hits = 0
    for q in queries(by_seq, 20):
        found = await dense(knowledge, ws, vs, q)
        hits += len(set(found) & set(exact_top(by_seq, q)))
        assert found[0] == exact_top(by_seq, q, 1)[0]  # the chunk the query is about
    assert hits / 200 >= 0.9  # recall@10 against the exact search
    if store.engine.dialect.name == "postgresql":  # a deeper scan, on the unit's connection
        async with store.workspace(ws) as unit:
            deep = await unit.knowledge.dense_search([vs], q.tolist(), 60)
            ef = (await unit.knowledge.conn.execute(text("SHOW hnsw.ef_search"))).scalar_one()  # type: ignore[attr-defined]
        assert len(deep) == 60 and deep[0][0] == exact_top(by_seq, q, 1)[0]
        assert ef == str(pg_dense.EF_SEARCH)  # the session's width again after it


async def test_removing_files_or_the_store_leaves_no_index_rows(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws = await new_workspace(store)
    vs = (await knowledge.create_store(ws)).id
    files, by_seq = await fill(knowledge, ws, vs, MIN_CHUNKS + 500)
    async with store.workspace(ws, write=True) as unit:
        await unit.knowledge.remove_file(vs, files[0])
        remaining = await unit.knowledge.count_chunks(vs)
    gone = set(list(by_seq)[:FILE_CHUNKS])
    assert remaining == len(by_seq) - FILE_CHUNKS
    if store.engine.dialect.name == "sqlite":
        assert await ivf_rows(store, vs) == (1, remaining)
    for q in queries({s: v for s, v in by_seq.items() if s in gone}, 5):
        assert not gone & set(await dense(knowledge, ws, vs, q, 40))
    await knowledge.delete_store(ws, vs)
    assert await ivf_rows(store, vs) == (0, 0)
