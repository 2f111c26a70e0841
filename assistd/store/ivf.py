"""An inverted-file (IVF) index over a large vector store's vectors, on SQLite.

sqlite-vec searches by an exact scan: every query reads every float vector of the store
(150 MB at 100,000 chunks of 384 dimensions, ~200 ms), and its top-k selection costs
O(n·k), so a quantized first pass over its `bit[]`/`int8[]` tables does not help either
(measured: bench/README.md). A store past MIN_CHUNKS gets this index instead: k-means
centroids (`ivf_indexes`, one row per store) and its vectors again as int8 codes grouped
by nearest centroid (`ivf_vectors`, clustered by list). A query scans only the lists of
the centroids nearest to it, scoring with sqlite-vec's int8 cosine in SQL, so only the
top rows come back to Python. Cosine is scale-free, so each vector is quantized with its
own scale. The index is rebuilt when the store has grown REBUILD_GROWTH-fold since it was
trained; chunks added meanwhile join their nearest list. The vec0 tables stay the source
of truth (and serve stores below MIN_CHUNKS, exactly).
"""

from __future__ import annotations

import asyncio
import math
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

Matrix = NDArray[np.float32]

MIN_CHUNKS = 5000  # below, the exact scan takes a few ms: no index
REBUILD_GROWTH = 4
PROBE_FRACTION = 0.08  # of the lists, nearest first: recall@10 0.97-0.99 (bench/README.md)
MIN_PROBES = 16  # small indexes have few, large lists: probe more of them
TRAIN_SAMPLE = 16384
TRAIN_ROUNDS = 8


def lists_for(count: int) -> int:
    return max(16, min(1024, int(math.sqrt(count))))


def probes_for(lists: int) -> int:
    return min(lists, max(MIN_PROBES, math.ceil(lists * PROBE_FRACTION)))


def int8_codes(matrix: Matrix) -> NDArray[np.int8]:
    """Each row scaled by its own largest magnitude to ±127 (cosine ignores the scale)."""
    peak = np.abs(matrix).max(axis=1, keepdims=True)
    peak[peak == 0] = 1.0
    codes: NDArray[np.int8] = np.rint(matrix / peak * 127).astype(np.int8)
    return codes


def nearest(matrix: Matrix, centroids: Matrix) -> NDArray[np.int64]:
    out = np.empty(len(matrix), dtype=np.int64)
    for start in range(0, len(matrix), 8192):  # bounded scratch memory
        block = matrix[start : start + 8192] @ centroids.T
        out[start : start + 8192] = np.argmax(block, axis=1)
    return out


def train(matrix: Matrix, lists: int, seed: int = 0) -> tuple[Matrix, NDArray[np.int64]]:
    """Spherical k-means on a sample; returns the centroids and every row's list."""
    rng = np.random.default_rng(seed)
    sample = matrix[rng.choice(len(matrix), min(len(matrix), TRAIN_SAMPLE), replace=False)]
    centroids = sample[rng.choice(len(sample), lists, replace=False)].copy()
    for _ in range(TRAIN_ROUNDS):
        owner = nearest(sample, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, owner, sample)
        empty = ~sums.any(axis=1)
        sums[empty] = centroids[empty]  # a list nobody chose keeps its centroid
        centroids = sums / np.linalg.norm(sums, axis=1, keepdims=True)
    return centroids.astype(np.float32), nearest(matrix, centroids)


class IvfIndex:
    """The IVF index of one workspace's stores, on one connection (SQLite only)."""

    def __init__(self, conn: AsyncConnection, ws: str) -> None:
        self.conn = conn
        self.ws = ws

    async def _state(self, vs: str) -> tuple[int, int, Matrix] | None:
        """(dimension, trained_count, centroids) of the store's index, if it has one."""
        row = (
            await self.conn.execute(
                text(
                    "SELECT dimension, trained_count, lists, centroids FROM ivf_indexes "
                    "WHERE workspace_id = :ws AND vector_store_id = :vs"
                ),
                {"ws": self.ws, "vs": vs},
            )
        ).first()
        if row is None:
            return None
        centroids = np.frombuffer(row[3], dtype=np.float32).reshape(int(row[2]), int(row[0]))
        return int(row[0]), int(row[1]), centroids

    async def added(self, vs: str, vec_table: str, seqs: list[int], matrix: Matrix) -> None:
        """Chunks were added to the store: index them, or (re)build the index."""
        state = await self._state(vs)
        count = await self._count(vs)
        if count < MIN_CHUNKS:
            if state is not None:  # shrank below: the exact scan serves it again
                await self.drop(vs)
            return
        if state is None or count >= REBUILD_GROWTH * state[1]:
            await self.build(vs, vec_table)
            return
        await self._insert(vs, seqs, matrix, nearest(matrix, state[2]))

    async def build(self, vs: str, vec_table: str) -> None:
        """Trains the store's centroids on all its vectors and fills its lists."""
        rows = await self.conn.execute(
            text(
                f"SELECT v.chunk_id, v.embedding FROM {vec_table} v JOIN chunks c "
                "ON c.seq = v.chunk_id WHERE v.vector_store_id = :vs AND c.workspace_id = :ws "
                "ORDER BY v.chunk_id"  # the sample, so the index, depends on the store alone
            ),
            {"vs": vs, "ws": self.ws},
        )
        seqs, blobs = [], []
        for seq, blob in rows:
            seqs.append(int(seq))
            blobs.append(blob)
        matrix = np.frombuffer(b"".join(blobs), dtype=np.float32).reshape(len(seqs), -1)
        centroids, owner = await asyncio.to_thread(train, matrix, lists_for(len(seqs)))
        await self.drop(vs)
        await self.conn.execute(
            text(
                "INSERT INTO ivf_indexes (workspace_id, vector_store_id, dimension, "
                "trained_count, lists, centroids) VALUES (:ws, :vs, :d, :n, :l, :c)"
            ),
            {"ws": self.ws, "vs": vs, "d": matrix.shape[1], "n": len(seqs),
             "l": len(centroids), "c": centroids.tobytes()},
        )  # fmt: skip
        await self._insert(vs, seqs, matrix, owner)

    async def _insert(
        self, vs: str, seqs: list[int], matrix: Matrix, owner: NDArray[np.int64]
    ) -> None:
        codes = int8_codes(matrix)
        rows: list[dict[str, Any]] = [
            {"ws": self.ws, "vs": vs, "l": int(owner[i]), "s": seq, "e": codes[i].tobytes()}
            for i, seq in enumerate(seqs)
        ]
        await self.conn.execute(
            text(
                "INSERT INTO ivf_vectors (workspace_id, vector_store_id, list_no, seq, "
                "embedding) VALUES (:ws, :vs, :l, :s, :e)"
            ),
            rows,
        )

    async def _count(self, vs: str) -> int:
        found = await self.conn.execute(
            text("SELECT count(*) FROM chunks WHERE workspace_id = :ws AND vector_store_id = :vs"),
            {"ws": self.ws, "vs": vs},
        )
        return int(found.scalar_one())

    async def removed(self, vs: str, chunk_seqs: str, params: dict[str, Any]) -> None:
        """Chunks (the seqs `chunk_seqs` selects) are about to go: their codes go first."""
        await self.conn.execute(
            text(
                "DELETE FROM ivf_vectors WHERE workspace_id = :ws AND vector_store_id = :vs "
                f"AND seq IN ({chunk_seqs})"
            ),
            params,
        )

    async def drop(self, vs: str) -> None:
        params = {"ws": self.ws, "vs": vs}
        for table in ("ivf_vectors", "ivf_indexes"):
            await self.conn.execute(
                text(f"DELETE FROM {table} WHERE workspace_id = :ws AND vector_store_id = :vs"),
                params,
            )

    async def search(self, vs: str, vector: Matrix, limit: int) -> list[tuple[int, float]] | None:
        """(seq, cosine similarity) of the nearest chunks in the probed lists; None when
        the store has no index (or one of another dimension)."""
        state = await self._state(vs)
        if state is None or state[0] != len(vector):
            return None
        centroids = state[2]
        probes = np.argsort(-(centroids @ vector))[: probes_for(len(centroids))]
        marks = ", ".join(str(int(p)) for p in probes)
        query = int8_codes(vector[None, :])[0].tobytes()
        statement = text(
            "SELECT seq, vec_distance_cosine(vec_int8(embedding), vec_int8(:q)) AS d "
            "FROM ivf_vectors WHERE workspace_id = :ws AND vector_store_id = :vs "
            f"AND list_no IN ({marks}) ORDER BY d, seq LIMIT :k"
        )
        params = {"q": query, "ws": self.ws, "vs": vs, "k": limit}
        return [(int(r[0]), 1.0 - float(r[1])) for r in await self.conn.execute(statement, params)]
