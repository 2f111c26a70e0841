"""PostgreSQL's dense search, in one statement and outside any transaction.

With pgvector, a store set of MIN_CHUNKS chunks or more is searched through the HNSW
index of its dimension, a smaller one exactly: the HNSW scan filters by workspace and store
after it finds its nearest, so a small store among large ones would get too few (and the
planner, on statistics from before a small store was added, sent it through the index).
Both branches are in the statement, each behind a one-time filter on the stores' size
(their postings' file totals, store/pg_keywords.py): only one runs, and deciding costs no
round trip.

The HNSW scan's settings (`ef_search` for the usual depth, pgvector 0.8's iterative scan,
which goes on until the filtered rows are enough) are the session's, set once when a
connection is made (`tune_session`). Set per search with SET LOCAL they needed a
transaction and a statement: BEGIN, the SET and COMMIT were three of a search's round
trips. A deeper search sets its wider `ef_search` around its scan.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import cache
from typing import Any

import asyncpg  # type: ignore[import-untyped]
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import pg_driver
from assistd.store.ivf import MIN_CHUNKS

log = logging.getLogger("assistd.store")

EF_SEARCH = 160  # a session's, for the usual depth of 40
SESSION_SETTINGS = (
    ("hnsw.ef_search", str(EF_SEARCH)),
    ("hnsw.iterative_scan", "relaxed_order"),  # pgvector 0.8; an older one keeps its scan
)
_SET_EF = "SELECT set_config('hnsw.ef_search', $1, false)"
_SIZE = (
    "SELECT coalesce(sum(f.chunks), 0) AS chunks FROM keyword_files f JOIN vector_stores v "
    "ON f.store = v.seq WHERE v.workspace_id = $1 AND v.id = ANY($2)"
)


def ef_search(depth: int) -> int:
    """4x the depth asked: recall@10 0.995 at 100,000 chunks (2x: 0.962)."""
    return max(40, min(1000, 4 * depth))


def index_ddl(n: int, kind: str) -> str:
    """The HNSW index of dimension n's vectors: over their half-precision form (`kind`
    "halfvec", pgvector 0.7 on), which took x0.76 the time of the full vectors' at
    100,000 chunks for the same recall@10 (0.975 against 0.978) in half the index size;
    a pgvector without halfvec indexes the vectors themselves."""
    name, ops = ("half", "halfvec") if kind == "halfvec" else ("hnsw", "vector")
    return (
        f"CREATE INDEX IF NOT EXISTS ix_chunks_{name}_{n} ON chunks USING hnsw "
        f"((embedding::{ops}({n})) {ops}_cosine_ops) WHERE vector_dims(embedding) = {n}"
    )


@cache
def _nearest(n: int, kind: str) -> str:
    """The query is a parameter, read once at bind; the index's expression is
    `embedding::halfvec(n)` (or `::vector(n)`, index_ddl), which the exact branch leaves
    out so that it cannot use it. Each branch's LIMIT keeps its one-time filter above its
    scan (a parallel scan's workers would be started before a filter below them was read)."""
    where = f"vector_dims(embedding) = {n} AND workspace_id = $1 AND vector_store_id = ANY($2)"

    def branch(name: str, expression: str, query: str, test: str) -> str:
        return (
            f"SELECT * FROM (SELECT seq, {expression} <=> CAST($3 AS {query}) AS distance "
            f"FROM chunks WHERE {where} ORDER BY distance LIMIT $4) {name} "
            f"WHERE (SELECT chunks FROM size) {test}"
        )

    typed = f"{kind}({n})"
    indexed = branch("i", f"embedding::{typed}", typed, f">= {MIN_CHUNKS}")
    exact = branch("e", "embedding", "vector", f"< {MIN_CHUNKS}")
    return f"WITH size AS ({_SIZE}) {indexed} UNION ALL {exact}"


@cache
def _scored(n: int) -> str:
    """Without pgvector: `real[]` vectors, every one of the stores' scored."""
    return (
        "SELECT seq, sim FROM (SELECT seq, (SELECT sum(a::float8 * b) FROM "
        "unnest(embedding, CAST($3 AS real[])) AS t(a, b)) AS sim FROM chunks "
        "WHERE workspace_id = $1 AND vector_store_id = ANY($2) "
        f"AND cardinality(embedding) = {n}) scored ORDER BY sim DESC, seq LIMIT $4"
    )


def vector_literal(vector: Sequence[float]) -> str:
    return "[" + ",".join(f"{float(x):.7g}" for x in vector) + "]"


async def search(
    conn: AsyncConnection, ws: str, ids: list[str], vector: Sequence[float], limit: int,
    kind: str,
) -> list[tuple[int, float]]:  # fmt: skip
    """(chunk seq, cosine similarity), best first; `kind` as store/chunks.py finds it
    ("halfvec", "vector" or "real[]": no pgvector)."""
    if kind == "real[]":
        floats = [float(x) for x in vector]
        rows = await pg_driver.fetch(conn, _scored(len(vector)), ws, ids, floats, limit)
        found = [(int(r[0]), float(r[1])) for r in rows]
    else:
        ef = ef_search(limit)
        if ef != EF_SEARCH:
            await pg_driver.fetch(conn, _SET_EF, str(ef))
        try:
            literal = vector_literal(vector)
            nearest = _nearest(len(vector), kind)
            rows = await pg_driver.fetch(conn, nearest, ws, ids, literal, limit)
        finally:
            if ef != EF_SEARCH:
                await _restore_ef(conn)
        found = [(int(r[0]), 1.0 - float(r[1])) for r in rows]
    found.sort(key=lambda hit: (-hit[1], hit[0]))  # relaxed_order scans may come unsorted
    return found


async def _restore_ef(conn: AsyncConnection) -> None:
    """The session's `ef_search` back; where the scan failed in a transaction, its
    rollback restores it (and this statement could not run)."""
    try:
        await pg_driver.fetch(conn, _SET_EF, str(EF_SEARCH))
    except (asyncpg.PostgresError, asyncpg.InterfaceError):
        log.debug("restoring hnsw.ef_search failed", exc_info=True)


def tune_session(dbapi_connection: Any, _record: Any) -> None:
    """SQLAlchemy's `connect` event: the HNSW scan settings for the session, in
    autocommit (in a transaction a later rollback would undo them). Without pgvector
    they are placeholders that nothing reads; a pgvector older than 0.8 already loaded
    refuses `iterative_scan`, and keeps its plain scan."""
    autocommit = dbapi_connection.autocommit
    dbapi_connection.autocommit = True
    cursor = dbapi_connection.cursor()
    try:
        for name, value in SESSION_SETTINGS:
            try:
                cursor.execute(f"SET {name} = '{value}'")
            except Exception:  # the driver's own error class, wrapped by SQLAlchemy's adapter
                log.info("PostgreSQL did not take %s: %s", name, value)
    finally:
        cursor.close()
        dbapi_connection.autocommit = autocommit
