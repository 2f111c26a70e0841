"""Ingestion as queued jobs in the embedded shape: `start` puts a file on the in-process
ingestion queue and the runtime's worker pool ingests it; a file a stopped server left
`in_progress` is ingested at the next start; a file cancelled or removed mid-ingestion
stops at the next batch and keeps nothing. The runtime's own parts on SQLite and
PostgreSQL; the embeddings come from a real local HTTP endpoint that can hold requests.
The distributed shape (Redis, `assistd worker` processes) is in tests/distributed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio

from assistd.core.ids import new_id
from assistd.core.knowledge import EMBED_BATCH
from assistd.core.objects import VectorStoreFile
from assistd.core.service import Upload
from assistd.retrieval.chunking import ChunkingStrategy
from assistd.runtime import Runtime, build_runtime
from assistd.settings import Settings
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.fake_model import FakeModel

WAIT_S = 60  # a bound for failing, not a measure
BATCH_REQUEST = 16  # texts per request to the endpoint: several requests per batch


@pytest.fixture
def endpoint() -> Iterator[FakeEmbeddings]:
    server = FakeEmbeddings(dimension=32).start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", "postgres"])
def settings(
    request: pytest.FixtureRequest, tmp_path: Path, fake_model: FakeModel, endpoint: FakeEmbeddings
) -> Settings:
    url = str(request.getfixturevalue("postgres_url")) if request.param == "postgres" else ""
    remote = {"base_url": endpoint.base_url, "dimension": 32, "batch": BATCH_REQUEST}
    return Settings(
        data_dir=tmp_path, database_url=url, openai_base_url=fake_model.base_url,
        embedders={"remote": remote}, default_embedder="remote", ingest_workers=1,
    )  # fmt: skip


@pytest_asyncio.fixture
async def runtime(settings: Settings) -> AsyncIterator[Runtime]:
    built = build_runtime(settings)
    try:
        await built.store.migrate()
        yield built
    finally:
        await built.close()


async def new_store(runtime: Runtime, *files: tuple[str, bytes]) -> tuple[str, str, list[str]]:
    """A workspace, the files uploaded there and a vector store holding them (its files
    `in_progress`, none started)."""
    ws = (await runtime.tenancy.create_workspace(new_id("kb"))).id
    uploads = [Upload(name, content) for name, content in files]
    ids = [f.id for f in await runtime.service.upload_files(ws, uploads)]
    vs = await runtime.knowledge.create_store(ws, file_ids=ids)
    return ws, vs.id, ids


async def settled(runtime: Runtime, ws: str, vs_id: str, file_id: str) -> VectorStoreFile | None:
    """The file once it is no longer `in_progress` (None once it is removed)."""
    async with asyncio.timeout(WAIT_S):
        while True:
            async with runtime.store.workspace(ws) as unit:
                file = await unit.knowledge.get_file(vs_id, file_id)
            if file is None or file.status != "in_progress":
                return file
            await asyncio.sleep(0.05)


async def chunk_count(runtime: Runtime, ws: str, vs_id: str, file_id: str) -> int:
    async with runtime.store.workspace(ws) as unit:
        return len(await unit.knowledge.chunks_of(vs_id, file_id))


async def test_started_files_are_ingested_by_the_worker_pool(runtime: Runtime) -> None:
    await runtime.start_workers()
    ws, vs_id, (kettle, bike) = await new_store(
        runtime, ("kettle.txt", b"kettles boil water quickly"),
        ("bike.md", b"# Bicycles\n\nbicycles have two wheels and a chain"),
    )  # fmt: skip
    for file_id in (kettle, bike):
        await runtime.knowledge.start(ws, vs_id, file_id)
    for file_id in (kettle, bike):
        done = await settled(runtime, ws, vs_id, file_id)
        assert done is not None and done.status == "completed", done
        assert done.chunk_count == await chunk_count(runtime, ws, vs_id, file_id) == 1
    hits = await runtime.knowledge.search(ws, [vs_id], "how many wheels has a bicycle")
    assert hits[0].file_id == bike


async def test_start_returns_with_each_file_queued_once_and_no_task_left(
    runtime: Runtime,
) -> None:
    ws, vs_id, (a, b) = await new_store(runtime, ("a.txt", b"alpha"), ("b.txt", b"beta"))
    before = asyncio.all_tasks()
    await runtime.knowledge.start(ws, vs_id, a, b, a)
    assert asyncio.all_tasks() <= before  # queued in the call, not by a task it left
    queue = runtime.knowledge.queue
    assert queue is not None
    leases = [await queue.claim("test", timeout_s=0) for _ in range(3)]
    queued = [lease.job for lease in leases if lease is not None]
    assert [(j.vector_store_id, j.file_id) for j in queued] == [(vs_id, a), (vs_id, b)]  # type: ignore[union-attr]


async def test_a_file_a_stopped_server_left_in_progress_is_ingested_at_start(
    settings: Settings, runtime: Runtime
) -> None:
    ws, vs_id, (file_id,) = await new_store(runtime, ("notes.txt", b"the moon orbits the earth"))
    await runtime.close()  # stopped before any worker took the file: it stays in_progress

    again = build_runtime(settings)
    try:
        await again.start_workers()
        done = await settled(again, ws, vs_id, file_id)
    finally:
        await again.close()
    assert done is not None and done.status == "completed", done
    assert done.chunk_count == 1


@pytest.mark.parametrize("how", ["cancel", "remove"])
async def test_a_file_cancelled_or_removed_mid_ingestion_stops_and_keeps_nothing(
    runtime: Runtime, endpoint: FakeEmbeddings, how: str
) -> None:
    # Enough 100-token chunks for three batches; the endpoint holds the first request.
    long_text = " ".join(f"word{i % 997} topic{i % 13}." for i in range(40 * EMBED_BATCH))
    ws, vs_id, (big,) = await new_store(runtime, ("big.txt", long_text.encode()))
    await runtime.knowledge.reingest(ws, vs_id, big, ChunkingStrategy.static(100, 0))
    await runtime.start_workers()
    endpoint.close_gate()
    await runtime.knowledge.start(ws, vs_id, big)
    assert await asyncio.to_thread(endpoint.arrived.wait, WAIT_S)
    if how == "cancel":
        assert (await runtime.knowledge.cancel_file(ws, vs_id, big)).status == "cancelled"
    else:
        await runtime.knowledge.remove_file(ws, vs_id, big)
    endpoint.gate.set()

    # One ingestion slot: the next file is ingested once the big one's ingestion ended.
    small = (await runtime.service.upload_file(ws, Upload("small.txt", b"a small note"))).id
    await runtime.knowledge.add_file(ws, vs_id, small)
    await runtime.knowledge.start(ws, vs_id, small)
    done = await settled(runtime, ws, vs_id, small)
    assert done is not None and done.status == "completed", done

    ended = await settled(runtime, ws, vs_id, big)
    assert (ended.status if ended else None) == ("cancelled" if how == "cancel" else None)
    assert await chunk_count(runtime, ws, vs_id, big) == 0
    # The first batch's requests and the small file's one: nothing past the first batch.
    assert len(endpoint.requests) == EMBED_BATCH // BATCH_REQUEST + 1
