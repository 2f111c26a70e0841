"""PostgreSQL: migration 0014 turns the chunks' `tsv` column into the postings an ingestion
writes today, so a store ingested before it is searched as one ingested after it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from alembic import command
from sqlalchemy import Connection, text

from assistd.core.ids import new_id
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import KnowledgeChunk, Workspace
from assistd.retrieval.registry import EmbedderRegistry
from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.store.keywords import index_terms
from assistd.store.migrations import alembic_config
from assistd.store.sql import SqlStore
from tests.knowledge.conftest import distinct_vectors
from tests.support.postgres import database_or_skip

TEXTS = [
    "Tomatoes grow best in full sun, tomatoes need water.",
    "The engine's oil is changed every 5,000 miles; check the oil level monthly.",
    "向量数据库 stores embeddings for retrieval; 检索 runs over them.",
    "Running, runner, runs: the stemmer folds these words together.",
    "the of and",  # stop words only: a chunk with no lexeme at all
]
POSTINGS = (
    "SELECT c.position, p.term, p.tf, p.dl FROM keyword_postings p JOIN chunks c "
    "ON c.seq = p.chunk WHERE c.vector_store_id = :vs ORDER BY 1, 2"
)
FILES = (
    "SELECT f.chunks, f.length FROM keyword_files f JOIN vector_stores v ON v.seq = f.store "
    "WHERE v.id = :vs"
)


@pytest.fixture
def fresh_url(tmp_path: Path) -> Iterator[str]:
    """A database of its own: the session's is at the newest revision already."""
    with database_or_skip(tmp_path) as url:
        yield url


@pytest_asyncio.fixture
async def store_at_0013(fresh_url: str, tmp_path: Path) -> AsyncIterator[SqlStore]:
    store = open_store(Settings(data_dir=tmp_path, database_url=fresh_url))

    def to_0013(connection: Connection) -> None:
        command.upgrade(alembic_config(connection), "0013")

    try:
        async with store.engine.begin() as conn:
            await conn.run_sync(to_0013)
        yield store
    finally:
        await store.close()


async def _old_ingestion(store: SqlStore, ws: str, vs: str) -> None:
    """Chunks as the store wrote them before 0014: a `tsv` column on each."""
    async with store.engine.begin() as conn:
        kind = (
            await conn.execute(
                text(
                    "SELECT format_type(atttypid, atttypmod) FROM pg_attribute "
                    "WHERE attrelid = 'chunks'::regclass AND attname = 'embedding'"
                )
            )
        ).scalar_one()
        vector = "'[1,0,0]'" if kind == "vector" else "'{1,0,0}'"
        await conn.execute(
            text(
                "INSERT INTO vector_stores (id, workspace_id, created_at, embedder, dimension, "
                "max_chunk_tokens, chunk_overlap_tokens, metadata) VALUES "
                "(:vs, :ws, 0, 'e', 3, 800, 400, '{}')"
            ),
            {"vs": vs, "ws": ws},
        )
        for position, body in enumerate(TEXTS):
            await conn.execute(
                text(
                    "INSERT INTO chunks (workspace_id, vector_store_id, file_id, position, page, "
                    "tokens, text, tsv, embedding) VALUES (:ws, :vs, 'file_old', :position, "
                    f"NULL, 10, :text, to_tsvector('english', :terms), {vector})"
                ),
                {"ws": ws, "vs": vs, "position": position, "text": body}
                | {"terms": index_terms(body)},
            )


async def _rows(store: SqlStore, vs: str) -> tuple[list[tuple[object, ...]], tuple[int, int]]:
    async with store.engine.connect() as conn:
        postings = [tuple(r) for r in await conn.execute(text(POSTINGS), {"vs": vs})]
        files = (await conn.execute(text(FILES), {"vs": vs})).one()
    return postings, (int(files[0]), int(files[1]))


async def _positions(store: SqlStore, found: list[tuple[int, float]]) -> list[tuple[int, float]]:
    """The hits as (position in its file, score)."""
    async with store.engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT seq, position FROM chunks WHERE seq = ANY(:seqs)"),
            {"seqs": [seq for seq, _ in found]},
        )
        position = {int(seq): int(p) for seq, p in rows}
    return [(position[seq], round(score, 9)) for seq, score in found]


async def test_chunks_from_before_0014_get_the_postings_of_an_ingestion(
    store_at_0013: SqlStore,
) -> None:
    store = store_at_0013
    ws, old = new_id("ws"), new_id("vs")
    await _old_ingestion(store, ws, old)
    await store.migrate()
    async with store.admin(write=True) as admin:
        await admin.insert_workspace(Workspace(ws, new_id("w"), 0))
    new = (await KnowledgeService(store, EmbedderRegistry()).create_store(ws)).id
    file_id = new_id("file")
    vectors = distinct_vectors(len(TEXTS))
    rows = [KnowledgeChunk(file_id, i, t, 10, None, vectors[i]) for i, t in enumerate(TEXTS)]
    async with store.workspace(ws, write=True) as unit:
        await unit.knowledge.replace_chunks(new, file_id, rows)
    migrated, fresh = await _rows(store, old), await _rows(store, new)
    assert migrated == fresh and migrated[0] and migrated[1][0] == len(TEXTS)
    async with store.workspace(ws) as unit:
        for query in ("oil", "running tomatoes", "向量数据库"):
            found = await unit.knowledge.keyword_search([old], query, 10)
            again = await unit.knowledge.keyword_search([new], query, 10)
            assert found and await _positions(store, found) == await _positions(store, again)
