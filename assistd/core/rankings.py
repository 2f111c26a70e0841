"""A search's rankings: per query, the dense and the keyword list of (chunk, raw score).

A hybrid search's two methods do not depend on each other, so each runs on its own unit
(its own pooled connection) at the same time, each a plain read. Neither holds its connection while
waiting for the other's, so a full pool only delays them, never deadlocks them. With
`concurrent=False` (and for a one-method search) both run one after the other on the
caller's unit, as they did before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from assistd.core.objects import VectorStore
from assistd.retrieval.fusion import DENSE_WEIGHT
from assistd.store.base import KnowledgeRepo, Store

Hits = list[tuple[int, float]]
Rankings = list[tuple[float, Hits]]


def _weights(mode: str) -> dict[str, float]:
    if mode == "hybrid":
        return {"dense": DENSE_WEIGHT, "keyword": 1.0 - DENSE_WEIGHT}
    return {"dense": 1.0, "keyword": 1.0}


async def dense_hits(
    repo: KnowledgeRepo, stores: Sequence[VectorStore], vectors: dict[str, Any], i: int,
    depth: int,
) -> Hits:  # fmt: skip
    """Query i's nearest chunks over the stores, each group by its embedder's vector."""
    found: Hits = []
    for name, matrix in vectors.items():
        group = [vs.id for vs in stores if vs.embedder == name]
        found.extend(await repo.dense_search(group, matrix[i].tolist(), depth))
    found.sort(key=lambda hit: -hit[1])
    return found[:depth]


def _interleave(mode: str, dense: list[Hits], keyword: list[Hits]) -> Rankings:
    """Per query, its dense ranking then its keyword one (the methods the mode uses)."""
    w = _weights(mode)
    rankings: Rankings = []
    for i in range(max(len(dense), len(keyword))):
        if mode != "keyword":
            rankings.append((w["dense"], dense[i]))
        if mode != "dense":
            rankings.append((w["keyword"], keyword[i]))
    return rankings


async def rankings_on(
    repo: KnowledgeRepo, stores: Sequence[VectorStore], queries: Sequence[str],
    vectors: dict[str, Any], depth: int, mode: str,
) -> Rankings:  # fmt: skip
    """Every ranking on one unit, one after the other."""
    ids = [vs.id for vs in stores]
    dense = (
        [await dense_hits(repo, stores, vectors, i, depth) for i in range(len(queries))]
        if mode != "keyword" else []
    )  # fmt: skip
    keyword = [await repo.keyword_search(ids, q, depth) for q in queries] if mode != "dense" else []
    return _interleave(mode, dense, keyword)


async def concurrent_rankings(
    store: Store, ws: str, stores: Sequence[VectorStore], queries: Sequence[str],
    vectors: dict[str, Any], depth: int,
) -> Rankings:  # fmt: skip
    """A hybrid search's rankings, its dense and keyword searches on two units at once."""
    ids = [vs.id for vs in stores]

    async def dense() -> list[Hits]:
        async with store.workspace(ws) as unit:
            return [
                await dense_hits(unit.knowledge, stores, vectors, i, depth)
                for i in range(len(queries))
            ]

    async def keyword() -> list[Hits]:
        async with store.workspace(ws) as unit:
            return [await unit.knowledge.keyword_search(ids, q, depth) for q in queries]

    dense_lists, keyword_lists = await asyncio.gather(dense(), keyword())
    return _interleave("hybrid", dense_lists, keyword_lists)
