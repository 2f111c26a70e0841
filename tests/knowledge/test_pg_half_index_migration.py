"""PostgreSQL with pgvector: migration 0015 rebuilds each dimension's HNSW index over the
vectors' half-precision form, and its downgrade rebuilds it over the vectors themselves;
the searches find the same chunks either way."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import Connection, text

from assistd.core.ids import new_id
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import KnowledgeChunk
from assistd.retrieval.registry import EmbedderRegistry
from assistd.settings import Settings
from assistd.store import pg_dense
from assistd.store.factory import open_store
from assistd.store.migrations import alembic_config
from assistd.store.sql import SqlStore
from tests.knowledge.conftest import distinct_vectors
from tests.support.postgres import database_or_skip
from tests.support.store import new_workspace

INDEXES = "SELECT indexname FROM pg_indexes WHERE tablename = 'chunks' AND indexname LIKE :like"


@pytest.fixture
def vector_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own, on a PostgreSQL with pgvector."""
    with database_or_skip(tmp_path, vector=True) as url:
        yield url


@pytest_asyncio.fixture
async def store(vector_url: str, tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = open_store(Settings(data_dir=tmp_path, database_url=vector_url))
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


async def migrate_to(store: SqlStore, revision: str) -> None:
    def run(connection: Connection) -> None:
        config = alembic_config(connection)
        if revision == "0014":
            command.downgrade(config, revision)
        else:
            command.upgrade(config, revision)

    async with store.engine.begin() as conn:
        await conn.run_sync(run)


async def vector_indexes(store: SqlStore) -> list[str]:
    async with store.engine.connect() as conn:
        found = await conn.execute(text(INDEXES), {"like": "ix_chunks_h%"})
        return sorted(found.scalars())


async def indexed_plan(store: SqlStore, ws: str, vs: str, vector: list[float]) -> str:
    """The dense search's plan: the index its HNSW branch reads."""
    statement = pg_dense._nearest(384, "halfvec").replace("$", ":p")
    async with store.engine.connect() as conn:
        plan = await conn.execute(
            text(f"EXPLAIN {statement}"),
            {"p1": ws, "p2": [vs], "p3": pg_dense.vector_literal(vector), "p4": 10},
        )
        return "\n".join(plan.scalars())


async def test_0015_rebuilds_the_hnsw_index_over_halfvec_and_back(store: SqlStore) -> None:
    ws = await new_workspace(store)
    vs = (await KnowledgeService(store, EmbedderRegistry()).create_store(ws)).id
    file_id, vectors = new_id("file"), distinct_vectors(40, seed=15)
    rows = [KnowledgeChunk(file_id, i, f"chunk {i}", 3, None, v) for i, v in enumerate(vectors)]
    async with store.workspace(ws, write=True) as unit:
        await unit.knowledge.replace_chunks(vs, file_id, rows)

    async def nearest() -> list[int]:
        async with store.workspace(ws) as unit:
            return [seq for seq, _ in await unit.knowledge.dense_search([vs], vectors[7], 5)]

    found = await nearest()
    assert len(found) == 5
    assert await vector_indexes(store) == ["ix_chunks_half_384"]
    assert "ix_chunks_half_384" in await indexed_plan(store, ws, vs, vectors[7])
    await migrate_to(store, "0014")
    assert await vector_indexes(store) == ["ix_chunks_hnsw_384"]
    await migrate_to(store, "head")
    assert await vector_indexes(store) == ["ix_chunks_half_384"]
    assert await nearest() == found
