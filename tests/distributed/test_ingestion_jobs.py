"""Ingestion as queued jobs in the distributed shape: a file queued by one process (the
test's own runtime, as an API replica's) is ingested by a real `assistd worker` process
off the Redis ingestion stream; a file whose worker is killed (or stopped) mid-ingestion
is taken over by another worker once its lease lapses, and ends with its chunks once.
PostgreSQL and Redis; embeddings from a real local HTTP endpoint that can hold requests."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import Iterator
from typing import Any

import pytest

from assistd.core.objects import VectorStoreFile
from assistd.core.service import Upload
from assistd.runtime import Runtime, build_runtime
from assistd.settings import Settings
from tests.distributed.conftest import Cluster
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.redis import REDIS_URL, redis_or_skip

WAIT_S = 60  # a bound for failing, not a measure
NOTES = b"Lighthouses warn ships of rocks.\n\nA lighthouse keeper trims the lamp every night."


@pytest.fixture
def endpoint() -> Iterator[FakeEmbeddings]:
    server = FakeEmbeddings(dimension=32).start()
    yield server
    server.stop()


@pytest.fixture
def kb_cluster(cluster: Cluster, endpoint: FakeEmbeddings) -> Cluster:
    """The cluster's processes embed with the endpoint."""
    remote = {"base_url": endpoint.base_url, "dimension": 32}
    cluster.env["ASSISTD_EMBEDDERS"] = json.dumps({"remote": remote})
    cluster.env["ASSISTD_DEFAULT_EMBEDDER"] = "remote"
    return cluster


def replica(cluster: Cluster) -> Runtime:
    """The test's own runtime on the cluster's database and Redis: it queues jobs, as an
    API replica does, and executes nothing."""
    env = cluster.env
    settings = Settings(
        data_dir=cluster.data_dir, database_url=env["ASSISTD_DATABASE_URL"],
        redis_url=REDIS_URL, redis_prefix=env["ASSISTD_REDIS_PREFIX"],
        embedders=json.loads(env["ASSISTD_EMBEDDERS"]), default_embedder="remote",
    )  # fmt: skip
    return build_runtime(settings)


async def queue_file(runtime: Runtime) -> tuple[str, str, str]:
    ws = (await runtime.tenancy.create_workspace("kb-jobs")).id
    file = await runtime.service.upload_file(ws, Upload("lighthouse.md", NOTES))
    vs = await runtime.knowledge.create_store(ws, name="coast", file_ids=[file.id])
    await runtime.knowledge.enqueue(ws, vs.id, file.id)
    return ws, vs.id, file.id


async def settled(runtime: Runtime, ws: str, vs_id: str, file_id: str) -> VectorStoreFile:
    async with asyncio.timeout(WAIT_S):
        while True:
            async with runtime.store.workspace(ws) as unit:
                file = await unit.knowledge.get_file(vs_id, file_id)
            assert file is not None
            if file.status != "in_progress":
                return file
            await asyncio.sleep(0.1)


async def stored_chunks(runtime: Runtime, ws: str, vs_id: str, file_id: str) -> int:
    async with runtime.store.workspace(ws) as unit:
        return len(await unit.knowledge.chunks_of(vs_id, file_id))


def test_a_worker_process_ingests_a_queued_file(kb_cluster: Cluster) -> None:
    kb_cluster.start(workers=1)

    async def go() -> None:
        runtime = replica(kb_cluster)
        try:
            ws, vs_id, file_id = await queue_file(runtime)
            done = await settled(runtime, ws, vs_id, file_id)
            assert done.status == "completed", done
            assert done.chunk_count == await stored_chunks(runtime, ws, vs_id, file_id) == 1
            [hit] = await runtime.knowledge.search(ws, [vs_id], "who trims the lamp")
            assert (hit.file_id, hit.filename) == (file_id, "lighthouse.md")
        finally:
            await runtime.close()

    asyncio.run(go())


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["killed", "stopped"])
def test_a_file_whose_worker_dies_mid_ingestion_is_taken_over(
    kb_cluster: Cluster, endpoint: FakeEmbeddings, stop: signal.Signals
) -> None:
    _, workers = kb_cluster.start(workers=2)
    endpoint.close_gate()  # the first worker to embed waits there

    async def go() -> None:
        runtime = replica(kb_cluster)
        try:
            ws, vs_id, file_id = await queue_file(runtime)
            assert await asyncio.to_thread(endpoint.arrived.wait, WAIT_S)
            [holder] = [w for w in workers if w.process.pid == await _holder_pid(kb_cluster)]
            holder.process.send_signal(stop)
            code = await asyncio.to_thread(holder.process.wait, 15)
            assert code == (0 if stop == signal.SIGTERM else -signal.SIGKILL), code
            async with runtime.store.workspace(ws) as unit:
                left = await unit.knowledge.get_file(vs_id, file_id)
            assert left is not None and left.status == "in_progress"
            endpoint.gate.set()
            # The other worker takes the job over once its lease (2 s) lapses.
            done = await settled(runtime, ws, vs_id, file_id)
            assert done.status == "completed", done
            assert done.chunk_count == await stored_chunks(runtime, ws, vs_id, file_id) == 1
        finally:
            endpoint.gate.set()
            await runtime.close()
        assert len(endpoint.requests) == 2  # the dead worker's, and the taker's

    asyncio.run(go())


async def _holder_pid(cluster: Cluster) -> int:
    """The PID of the worker holding the one leased ingestion job (consumer ids name it)."""
    client = await redis_or_skip()
    try:
        stream = f"{cluster.env['ASSISTD_REDIS_PREFIX']}ingest"
        entries: Any = await client.xpending_range(stream, "workers", "-", "+", 10)
    finally:
        await client.aclose()
    [entry] = entries
    return int(str(entry["consumer"]).split(":")[1])
