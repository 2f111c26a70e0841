"""A vector store may embed with a configured OpenAI-compatible endpoint instead of the
bundled MiniLM (here a real local HTTP server); ingestion's parse and chunk step can run
in the tool worker processes. SQLite only: the storage side is covered per backend in
test_ingest_and_search.py."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from pydantic import ValidationError

from assistd.core.knowledge import KnowledgeService
from assistd.errors import InvalidRequest
from assistd.retrieval.registry import EmbedderRegistry
from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.store.sql import SqlStore
from assistd.tools.offload import ComputePool
from tests.knowledge.test_ingest_and_search import index_rows, upload
from tests.retrieval import fixtures
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.store import new_workspace


@pytest.fixture
def endpoint() -> Iterator[FakeEmbeddings]:
    server = FakeEmbeddings(dimension=48).start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path: Path, endpoint: FakeEmbeddings) -> Settings:
    return Settings(
        data_dir=tmp_path,
        embedders={"remote": {"base_url": endpoint.base_url, "model": "bge-m3", "dimension": 48}},
    )


@pytest_asyncio.fixture
async def sqlite_store(settings: Settings) -> AsyncIterator[SqlStore]:
    store = open_store(settings)
    await store.migrate()
    yield store
    await store.close()


async def test_a_store_on_a_configured_endpoint_records_it_and_searches_with_it(
    settings: Settings, sqlite_store: SqlStore, endpoint: FakeEmbeddings
) -> None:
    knowledge = KnowledgeService(sqlite_store, EmbedderRegistry.from_settings(settings))
    ws = await new_workspace(sqlite_store)
    first = await upload(sqlite_store, ws, "a.txt", b"kettles boil water quickly")
    second = await upload(sqlite_store, ws, "b.txt", b"bicycles have two wheels")
    vs = await knowledge.create_store(ws, file_ids=[first, second], embedder="remote")
    assert (vs.embedder, vs.dimension) == ("remote", 48)
    for file_id in (first, second):
        done = await knowledge.ingest(ws, vs.id, file_id)
        assert done is not None and done.status == "completed"
    hits = await knowledge.search(ws, [vs.id], "bicycles wheels", mode="dense")
    assert hits[0].file_id == second
    assert {r["model"] for r in endpoint.requests} == {"bge-m3"}
    assert "vec_chunks_48" in await index_rows(sqlite_store)
    with pytest.raises(InvalidRequest, match="Unknown embedding model 'nope'"):
        await knowledge.create_store(ws, embedder="nope")
    await knowledge.close()


async def test_an_endpoint_failure_fails_the_file_with_its_reason(
    settings: Settings, sqlite_store: SqlStore, endpoint: FakeEmbeddings
) -> None:
    knowledge = KnowledgeService(sqlite_store, EmbedderRegistry.from_settings(settings))
    ws = await new_workspace(sqlite_store)
    file_id = await upload(sqlite_store, ws, "a.txt", b"some text")
    vs = await knowledge.create_store(ws, file_ids=[file_id], embedder="remote")
    endpoint.fail_with = 500
    done = await knowledge.ingest(ws, vs.id, file_id)
    assert done is not None and done.status == "failed"
    assert done.last_error is not None and done.last_error["code"] == "embedding_failed"
    assert "500" in done.last_error["message"]
    await knowledge.close()


async def test_parsing_runs_in_worker_processes_when_a_pool_is_given(
    settings: Settings, sqlite_store: SqlStore
) -> None:
    pool = ComputePool(workers=1, wall_s=60, memory_bytes=2 * 1024**3)
    knowledge = KnowledgeService(sqlite_store, EmbedderRegistry.from_settings(settings), pool)
    ws = await new_workspace(sqlite_store)
    good = await upload(sqlite_store, ws, "g.pdf", fixtures.pdf(["Pools parse PDFs."]))
    bad = await upload(sqlite_store, ws, "b.pdf", fixtures.encrypted_pdf("locked"))
    vs = await knowledge.create_store(ws, file_ids=[good, bad], embedder="remote")
    try:
        done = {f: await knowledge.ingest(ws, vs.id, f) for f in (good, bad)}
        assert pool.pids  # the work went to a worker process
    finally:
        await pool.close()
        await knowledge.close()
    assert done[good] is not None and done[good].status == "completed"
    assert done[bad] is not None and done[bad].last_error == {
        "code": "encrypted_pdf",
        "message": "the PDF is encrypted; upload it without a password",
    }


def test_default_embedder_must_be_one_the_server_has(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="default_embedder 'e5' is none of"):
        Settings(data_dir=tmp_path, default_embedder="e5")
    with pytest.raises(ValidationError, match="needs base_url and dimension"):
        Settings(data_dir=tmp_path, embedders={"x": {"base_url": "http://127.0.0.1:1/v1"}})


async def test_an_endpoint_whose_dimension_changed_fails_the_file(
    settings: Settings, sqlite_store: SqlStore, endpoint: FakeEmbeddings
) -> None:
    knowledge = KnowledgeService(sqlite_store, EmbedderRegistry.from_settings(settings))
    ws = await new_workspace(sqlite_store)
    file_id = await upload(sqlite_store, ws, "a.txt", b"some text")
    vs = await knowledge.create_store(ws, file_ids=[file_id], embedder="remote")
    await knowledge.close()
    endpoint.dimension = 32  # reconfigured: same name, other model
    changed = settings.model_copy(
        update={
            "embedders": {
                "remote": settings.embedders["remote"].model_copy(update={"dimension": 32})
            }
        }
    )
    knowledge = KnowledgeService(sqlite_store, EmbedderRegistry.from_settings(changed))
    done = await knowledge.ingest(ws, vs.id, file_id)
    await knowledge.close()
    assert done is not None and done.last_error is not None
    assert (
        done.last_error["code"] == "embedding_failed" and "holds 48" in done.last_error["message"]
    )
