"""Chunks with their keyword entries and vectors, per dialect; and the searches over them.

SQLite: a contentless FTS5 table and sqlite-vec tables (one per dimension) keyed by the
chunk's seq, written and deleted with the chunk's row. PostgreSQL: an `embedding` column
of the chunk's own row (pgvector with an HNSW index per dimension when the server has it,
else real[] searched exactly) and the postings of store/pg_keywords.py. Every statement
is scoped to the workspace.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from sqlalchemy import (
    delete,
    func,
    insert,
    select,
    text,
)

from assistd.core.objects import KnowledgeChunk
from assistd.store import pg_dense, pg_driver, pg_keywords, schema
from assistd.store.ivf import IvfIndex
from assistd.store.keywords import (
    RANK_BUDGET,
    fts5_query,
    index_terms,
    query_terms,
    selective,
)
from assistd.store.repos import _Scoped

# chunk_rows' statement on PostgreSQL (SqlChunkIndex.chunk_rows builds the same for SQLite).
_PG_CHUNK_ROWS = (
    "SELECT c.seq, c.vector_store_id, c.file_id, c.position, c.page, c.text, fl.filename, "
    "f.attributes FROM chunks c "
    "JOIN vector_store_files f ON f.workspace_id = c.workspace_id "
    "AND f.vector_store_id = c.vector_store_id AND f.id = c.file_id "
    "LEFT JOIN files fl ON fl.workspace_id = c.workspace_id AND fl.id = c.file_id "
    "WHERE c.workspace_id = $1 AND c.seq = ANY($2::bigint[])"
)

# Per database URL, the chunks' vectors: "halfvec" (pgvector's `vector`, indexed by its
# half-precision form), "vector" (a pgvector before 0.7, without halfvec) or "real[]".
_pg_embedding_type: dict[str, str] = {}
# PostgreSQL: ANALYZE chunks after an ingestion once this many rows, and this share of
# the table, changed since its last statistics (autovacuum's own share is 0.1).
ANALYZE_MIN_CHANGED = 1000
ANALYZE_SHARE = 0.1
_CHANGED_SINCE_ANALYZE = text(
    "SELECT c.reltuples, coalesce(s.n_mod_since_analyze, 0) FROM pg_class c "
    "LEFT JOIN pg_stat_user_tables s ON s.relid = c.oid WHERE c.oid = 'chunks'::regclass"
)
KEYWORD_POOL = 400  # SQLite: rows of the whole keyword index ranked before the store's


def _vec_table(dimension: int) -> str:
    return f"vec_chunks_{int(dimension)}"


def _array_literal(vector: Sequence[float]) -> str:
    return "{" + ",".join(f"{float(x):.9g}" for x in vector) + "}"


class SqlChunkIndex(_Scoped):
    s = schema.vector_stores
    c = schema.chunks
    f = schema.vector_store_files

    @property
    def _pg(self) -> bool:
        return pg_driver.on_postgres(self.conn)

    # Chunks.

    async def replace_chunks(
        self, vector_store_id: str, file_id: str, chunks: Sequence[KnowledgeChunk]
    ) -> None:
        """The file's chunks in the store become exactly `chunks` (old ones and their
        index entries go)."""
        await self._drop_chunks(vector_store_id, file_id)
        if not chunks:
            return
        if self._pg:
            await self._insert_pg(vector_store_id, chunks)
            await self._fresh_statistics(len(chunks))
        else:
            await self._insert_sqlite(vector_store_id, chunks)

    async def chunks_of(
        self, vector_store_id: str, file_id: str
    ) -> list[tuple[int, int | None, str]]:
        """(position, page, text) of the file's chunks, in order."""
        c = self.c
        query = (
            select(c.c.position, c.c.page, c.c.text)
            .where(*self.scope(c, vector_store_id=vector_store_id, file_id=file_id))
            .order_by(c.c.position)
        )
        return [(r[0], r[1], r[2]) for r in await self.conn.execute(query)]

    async def count_chunks(self, vector_store_id: str | None = None) -> int:
        scope = (
            self.scope(self.c)
            if vector_store_id is None
            else self.scope(self.c, vector_store_id=vector_store_id)
        )
        return int((await self.conn.execute(select(func.count()).where(*scope))).scalar_one())

    async def _insert_sqlite(self, vector_store_id: str, chunks: Sequence[KnowledgeChunk]) -> None:
        dimension = len(chunks[0].embedding)
        await self._ensure_vector_index(dimension)
        vec = _vec_table(dimension)
        seqs: list[int] = []
        for chunk in chunks:
            result = await self.conn.execute(
                insert(self.c), self._chunk_row(vector_store_id, chunk)
            )
            seq = result.inserted_primary_key[0]  # type: ignore[index]
            seqs.append(int(seq))
            await self.conn.execute(
                text("INSERT INTO chunks_fts(rowid, terms) VALUES (:seq, :terms)"),
                {"seq": seq, "terms": index_terms(chunk.text)},
            )
            blob = np.asarray(chunk.embedding, dtype=np.float32).tobytes()
            await self.conn.execute(
                text(
                    f"INSERT INTO {vec}(chunk_id, vector_store_id, embedding) VALUES (:s, :v, :e)"
                ),
                {"s": seq, "v": vector_store_id, "e": blob},
            )
        matrix = np.asarray([c.embedding for c in chunks], dtype=np.float32)
        await IvfIndex(self.conn, self.ws).added(vector_store_id, vec, seqs, matrix)

    async def _insert_pg(self, vector_store_id: str, chunks: Sequence[KnowledgeChunk]) -> None:
        kind = await self._pg_embedding()
        literal = _array_literal if kind == "real[]" else pg_dense.vector_literal
        rows = [self._chunk_row(vector_store_id, chunk) for chunk in chunks]
        params = {
            "ws": self.ws, "vs": vector_store_id, "file": chunks[0].file_id,
            "positions": [c.position for c in chunks], "pages": [c.page for c in chunks],
            "tokens": [c.tokens for c in chunks], "texts": [r["text"] for r in rows],
            "terms": [index_terms(r["text"]) for r in rows],
            "embeddings": [literal(c.embedding) for c in chunks],
        }  # fmt: skip
        await self.conn.execute(pg_keywords.insert_chunks(kind), params)

    def _chunk_row(self, vector_store_id: str, chunk: KnowledgeChunk) -> dict[str, Any]:
        return {
            "workspace_id": self.ws, "vector_store_id": vector_store_id, "file_id": chunk.file_id,
            "position": chunk.position, "page": chunk.page, "tokens": chunk.tokens,
            "text": chunk.text.replace("\x00", ""),
        }  # fmt: skip

    async def _drop_chunks(self, vector_store_id: str, file_id: str | None) -> None:
        keys = {"vector_store_id": vector_store_id} if file_id is None else {
            "vector_store_id": vector_store_id, "file_id": file_id}  # fmt: skip
        scope = self.scope(self.c, **keys)
        params = {"ws": self.ws, "vs": vector_store_id, "file": file_id}
        if self._pg:
            for statement in pg_keywords.DROP_STORE if file_id is None else pg_keywords.DROP_FILE:
                await self.conn.execute(text(statement), params)
        else:
            where = "workspace_id = :ws AND vector_store_id = :vs" + (
                "" if file_id is None else " AND file_id = :file"
            )
            chunk_seqs = f"SELECT seq FROM chunks WHERE {where}"
            ivf = IvfIndex(self.conn, self.ws)
            if file_id is None:
                await ivf.drop(vector_store_id)
            else:
                await ivf.removed(vector_store_id, chunk_seqs, params)
            await self.conn.execute(
                text(f"DELETE FROM chunks_fts WHERE rowid IN ({chunk_seqs})"), params
            )
            for vec in await self._vec_tables():
                await self.conn.execute(
                    text(f"DELETE FROM {vec} WHERE chunk_id IN ({chunk_seqs})"),
                    params,
                )
        await self.conn.execute(delete(self.c).where(*scope))

    async def _vec_tables(self) -> list[str]:
        found = await self.conn.execute(
            text(
                "SELECT name FROM sqlite_master WHERE name LIKE 'vec_chunks_%' "
                "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
            )
        )
        return [r[0] for r in found]

    async def _ensure_vector_index(self, dimension: int) -> None:
        """The dimension's vector table (SQLite) or HNSW index (PostgreSQL with pgvector)."""
        n = int(dimension)
        if not self._pg:
            await self.conn.execute(
                text(
                    f"CREATE VIRTUAL TABLE IF NOT EXISTS {_vec_table(n)} USING vec0("
                    f"chunk_id integer primary key, vector_store_id text partition key, "
                    f"embedding float[{n}] distance_metric=cosine)"
                )
            )
        elif (kind := await self._pg_embedding()) != "real[]":
            await self.conn.execute(text(pg_dense.index_ddl(n, kind)))

    async def _fresh_statistics(self, added: int) -> None:
        """ANALYZE chunks and their postings (in this transaction, its own rows counted)
        once the chunks changed since their statistics were gathered pass a tenth of
        them. On the estimate of a table that just grew, the planner sorted a sequential
        scan rather than use the HNSW index: 103 ms against 3.8 ms a dense search at
        20,000 chunks; autovacuum would gather them only after its next nap, a minute or
        more later."""
        row = (await self.conn.execute(_CHANGED_SINCE_ANALYZE)).one()
        tuples, changed = max(float(row[0]), 0.0), int(row[1]) + added
        if changed >= ANALYZE_MIN_CHANGED and changed > ANALYZE_SHARE * tuples:
            await self.conn.execute(text("ANALYZE chunks, keyword_postings"))

    async def _pg_embedding(self) -> str:
        engine_key = self._engine_key()
        if engine_key not in _pg_embedding_type:
            found = await self.conn.execute(
                text(
                    "SELECT format_type(atttypid, atttypmod), to_regtype('halfvec') IS NOT NULL "
                    "FROM pg_attribute WHERE attrelid = 'chunks'::regclass "
                    "AND attname = 'embedding'"
                )
            )
            column, half = found.one()
            kind = ("halfvec" if half else "vector") if column == "vector" else "real[]"
            _pg_embedding_type[engine_key] = kind
        return _pg_embedding_type[engine_key]

    # Search: each returns (chunk seq, raw score), best first.

    async def keyword_search(
        self, vector_store_ids: Sequence[str], query: str, limit: int
    ) -> list[tuple[int, float]]:
        terms = query_terms(query)
        if not terms or not vector_store_ids:
            return []
        ids = list(vector_store_ids)
        if self._pg:
            return await pg_keywords.search(self.conn, self.ws, ids, terms, limit)
        terms = selective(terms, await self._matches(terms))
        return await self._keyword_sqlite(ids, fts5_query(terms), limit)

    async def _matches(self, terms: list[str]) -> list[int]:
        """Rows each term matches in the whole keyword index, whose statistics BM25 uses,
        counted up to RANK_BUDGET + 1 (no ranking: cheap)."""
        if len(terms) < 2:
            return [0] * len(terms)
        rows = ", ".join(f"({i}, :t{i})" for i in range(len(terms)))
        statement = text(
            "SELECT (SELECT count(*) FROM (SELECT 1 FROM chunks_fts WHERE chunks_fts "
            f"MATCH v.column2 LIMIT :cap)) FROM (VALUES {rows}) v ORDER BY v.column1"
        )
        params = {"cap": RANK_BUDGET + 1, **{f"t{i}": fts5_query([t]) for i, t in enumerate(terms)}}
        return [int(r[0]) for r in await self.conn.execute(statement, params)]

    async def _keyword_sqlite(
        self, ids: list[str], match: str, limit: int
    ) -> list[tuple[int, float]]:
        """BM25 ranks every matching row either way; joining each to its chunk to keep the
        store's added 30-100 % (bench). So the best KEYWORD_POOL rows of the whole index are
        joined first: when `limit` of them are the store's, no other chunk of it could rank
        higher (it would be in the pool). Else (a store sharing the index with larger ones
        that outrank it) every match is joined, as before."""
        marks = ", ".join(f":id{i}" for i in range(len(ids)))
        params = {"q": match, "ws": self.ws, "k": limit, "pool": max(KEYWORD_POOL, 4 * limit),
                  **{f"id{i}": v for i, v in enumerate(ids)}}  # fmt: skip
        keep = f"c.workspace_id = :ws AND c.vector_store_id IN ({marks})"
        pooled = text(
            "SELECT c.seq, -f.rank FROM (SELECT rowid, rank FROM chunks_fts WHERE chunks_fts "
            "MATCH :q ORDER BY rank LIMIT :pool) f JOIN chunks c ON c.seq = f.rowid "
            f"WHERE {keep} ORDER BY f.rank, c.seq LIMIT :k"
        )
        found = [(int(r[0]), float(r[1])) for r in await self.conn.execute(pooled, params)]
        if len(found) >= limit:
            return found
        every = text(
            "SELECT c.seq, -bm25(chunks_fts) AS rank FROM chunks_fts JOIN chunks c "
            f"ON c.seq = chunks_fts.rowid WHERE chunks_fts MATCH :q AND {keep} "
            "ORDER BY bm25(chunks_fts), c.seq LIMIT :k"
        )
        return [(int(r[0]), float(r[1])) for r in await self.conn.execute(every, params)]

    async def dense_search(
        self, vector_store_ids: Sequence[str], vector: Sequence[float], limit: int
    ) -> list[tuple[int, float]]:
        """Nearest chunks by cosine similarity (returned as the score)."""
        if not self._pg:  # its statements are scoped to the workspace: no check first
            return await self._dense_sqlite(list(dict.fromkeys(vector_store_ids)), vector, limit)
        ids, kind = list(vector_store_ids), await self._pg_embedding()
        return await pg_dense.search(self.conn, self.ws, ids, vector, limit, kind)

    async def _dense_sqlite(
        self, ids: list[str], vector: Sequence[float], limit: int
    ) -> list[tuple[int, float]]:
        vec = _vec_table(len(vector))
        query = np.asarray(vector, dtype=np.float32)
        blob = query.tobytes()
        statement = text(
            f"SELECT v.chunk_id, v.distance FROM {vec} v JOIN chunks c ON c.seq = v.chunk_id "
            "WHERE v.embedding MATCH :q AND k = :k AND v.vector_store_id = :vs "
            "AND c.workspace_id = :ws"
        )
        found: list[tuple[int, float]] = []
        ivf, tables = IvfIndex(self.conn, self.ws), None
        for vs in ids:  # sqlite-vec filters a KNN query by one partition key value
            approximate = await ivf.search(vs, query, limit)
            if approximate is not None:  # a large store: its IVF index
                found.extend(approximate)
                continue
            tables = tables if tables is not None else await self._vec_tables()
            if vec not in tables:
                continue
            params = {"q": blob, "k": limit, "vs": vs, "ws": self.ws}
            found.extend(
                (int(r[0]), 1.0 - float(r[1])) for r in await self.conn.execute(statement, params)
            )
        found.sort(key=lambda hit: (-hit[1], hit[0]))
        return found[:limit]

    def _engine_key(self) -> str:
        return str(self.conn.sync_connection.engine.url)  # type: ignore[union-attr]

    async def chunk_rows(self, seqs: Sequence[int]) -> dict[int, dict[str, Any]]:
        """The chunks of these seqs (of this workspace), with their file's name and attributes."""
        if not seqs:
            return {}
        if self._pg:  # every search reads its hits: through asyncpg, one prepared statement
            found = await pg_driver.fetch(self.conn, _PG_CHUNK_ROWS, self.ws, list(seqs))
            return {int(r["seq"]): dict(r) for r in found}  # SQLAlchemy's codec decoded JSON
        c, f, files = self.c, self.f, schema.files
        query = (
            select(
                c.c.seq,
                c.c.vector_store_id,
                c.c.file_id,
                c.c.position,
                c.c.page,
                c.c.text,
                files.c.filename,
                f.c.attributes,
            )
            .join(
                f,
                (f.c.workspace_id == c.c.workspace_id)
                & (f.c.vector_store_id == c.c.vector_store_id)
                & (f.c.id == c.c.file_id),
            )
            .outerjoin(
                files, (files.c.workspace_id == c.c.workspace_id) & (files.c.id == c.c.file_id)
            )
            # SQLite's planner (no statistics) walked the workspace's whole chunk index
            # for `workspace_id = ?` instead of looking the seqs up: 23 ms for 10 hits at
            # 8,000 chunks. `workspace_id || ''` still scopes the rows, without that index.
            .where(c.c.workspace_id.concat("") == self.ws, c.c.seq.in_(list(seqs)))
        )
        return {int(r.seq): dict(r._mapping) for r in await self.conn.execute(query)}
