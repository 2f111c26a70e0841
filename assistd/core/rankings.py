"""A search's rankings: per query, the dense and the keyword list of (chunk, raw score).

A hybrid search's two methods do not depend on each other, so where reads run in
parallel (PostgreSQL) each runs on its own unit (its own pooled connection) at the same
time, each a plain read, overlapping the stores' check and the query's embedding too
(`overlapped_rankings`). Neither holds its connection while waiting for the other's, so
a full pool only delays them, never deadlocks them. Otherwise (SQLite, whose reads share
this process's GIL, and a one-method search) both run one after the other on the
caller's unit (`rankings_on`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from assistd.core.objects import VectorStore
from assistd.retrieval.fusion import DENSE_WEIGHT
from assistd.store.base import KnowledgeRepo, Store

Hits = list[tuple[int, float]]
Rankings = list[tuple[float, Hits]]
# Embeds the queries once per embedder named: {embedder: matrix, a row per query}.
Embed = Callable[[set[str], list[str]], Awaitable[dict[str, Any]]]


def _weights(mode: str) -> dict[str, float]:
    if mode == "hybrid":
        return {"dense": DENSE_WEIGHT, "keyword": 1.0 - DENSE_WEIGHT}
    return {"dense": 1.0, "keyword": 1.0}


async def dense_hits(
    repo: KnowledgeRepo, embedder_of: dict[str, str], vectors: dict[str, Any], i: int,
    depth: int,
) -> Hits:  # fmt: skip
    """Query i's nearest chunks over the stores (id: its embedder's name), each group of
    stores searched with its embedder's vector of the query."""
    found: Hits = []
    for name, matrix in vectors.items():
        group = [vs for vs, embedder in embedder_of.items() if embedder == name]
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
    embedder_of = {vs.id: vs.embedder for vs in stores}
    dense = (
        [await dense_hits(repo, embedder_of, vectors, i, depth) for i in range(len(queries))]
        if mode != "keyword" else []
    )  # fmt: skip
    keyword = [await repo.keyword_search(ids, q, depth) for q in queries] if mode != "dense" else []
    return _interleave(mode, dense, keyword)


async def overlapped_rankings(
    store: Store, ws: str, ids: Sequence[str], queries: Sequence[str], depth: int,
    checked: asyncio.Future[list[VectorStore]], known: dict[str, str] | None, embed: Embed,
) -> Rankings:  # fmt: skip
    """A hybrid search's rankings, its independent parts at once: `checked` (the stores'
    own check, already running), the keyword ranking, which needs only the stores' ids,
    and the query's embedding followed by the dense ranking, which needs only the stores'
    embedders: `known` from an earlier search of them, else from the check. The two
    rankings run on a connection each. The check's failure is raised first (an unknown
    store is a 404 whatever else failed)."""

    async def dense() -> list[Hits]:
        embedder_of = known if known is not None else {vs.id: vs.embedder for vs in await checked}
        vectors = await embed(set(embedder_of.values()), list(queries))
        async with store.workspace(ws) as unit:
            return [
                await dense_hits(unit.knowledge, embedder_of, vectors, i, depth)
                for i in range(len(queries))
            ]

    async def keyword() -> list[Hits]:
        async with store.workspace(ws) as unit:
            return [await unit.knowledge.keyword_search(list(ids), q, depth) for q in queries]

    done = await asyncio.gather(checked, dense(), keyword(), return_exceptions=True)
    for outcome in done:
        if isinstance(outcome, BaseException):
            raise outcome
    return _interleave("hybrid", done[1], done[2])  # type: ignore[arg-type]
