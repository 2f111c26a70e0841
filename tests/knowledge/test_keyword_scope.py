"""Keyword search keeps to the stores asked for, in BM25 order, when other stores (of the
workspace or another) share the index and outrank them: SQLite ranks a pool of the whole
index first and falls back to every match when the pool holds too few of the store's;
PostgreSQL reads the postings of the stores asked for."""

from __future__ import annotations

from sqlalchemy import text

from assistd.core.ids import new_id
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import KnowledgeChunk
from assistd.store.sql import SqlStore
from tests.knowledge.conftest import distinct_vectors
from tests.support.store import new_workspace


async def store_with(knowledge: KnowledgeService, ws: str, texts: list[str]) -> str:
    vs = (await knowledge.create_store(ws)).id
    file_id = new_id("file")
    vectors = distinct_vectors(len(texts))
    rows = [KnowledgeChunk(file_id, i, t, 3, None, vectors[i]) for i, t in enumerate(texts)]
    async with knowledge.store.workspace(ws, write=True) as unit:
        await unit.knowledge.replace_chunks(vs, file_id, rows)
    return vs


async def search(knowledge: KnowledgeService, ws: str, vs: str) -> list[tuple[int, float]]:
    async with knowledge.store.workspace(ws) as unit:
        return await unit.knowledge.keyword_search([vs], "falcon", 40)


async def seqs_of(knowledge: KnowledgeService, ws: str, vs: str) -> set[int]:
    async with knowledge.store.workspace(ws) as unit:
        return {s for s, _ in await unit.knowledge.keyword_search([vs], "chunk", 10_000)}


async def test_keyword_search_keeps_to_its_store_beside_stronger_ones(
    knowledge: KnowledgeService, store: SqlStore
) -> None:
    ws, other_ws = await new_workspace(store), await new_workspace(store)
    # Short chunks all about falcons outrank the long ones that name it once.
    weak = [f"chunk {i} " + "words about other birds " * (5 + i % 7) + "falcon" for i in range(60)]
    strong = [f"chunk {i} falcon falcon" for i in range(500)]
    small = await store_with(knowledge, ws, weak)
    large = await store_with(knowledge, ws, strong)
    await store_with(knowledge, other_ws, strong)
    for vs in (small, large):
        found = await search(knowledge, ws, vs)
        assert len(found) == 40 and {s for s, _ in found} <= await seqs_of(knowledge, ws, vs)
        scores = [score for _, score in found]
        assert scores == sorted(scores, reverse=True)
    # The small store's best are its shortest chunks (BM25 favours them), found although
    # a thousand stronger chunks of other stores fill the pool.
    found = await search(knowledge, ws, small)
    async with store.engine.connect() as conn:
        marks = ", ".join(str(s) for s, _ in found[:9])
        positions = await conn.execute(text(f"SELECT position FROM chunks WHERE seq IN ({marks})"))
        assert sorted(p for (p,) in positions) == list(range(0, 60, 7))
