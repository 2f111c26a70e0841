"""PostgreSQL's keyword index: BM25 over a postings table read by index alone.

`keyword_postings` holds a row per (store, lexeme, chunk) with the lexeme's count in the
chunk (`tf`) and the chunk's length in lexemes (`dl`), its primary key covering all of
them; `keyword_files` holds each file's chunk count and total length, for BM25's N and
average length. Lexemes are PostgreSQL's `english` ones (stemmed, stop words out) of the
chunk's index text (CJK as bigrams, store/keywords.py).

Why not the `tsvector` column and GIN index it replaced: a GIN scan cannot answer from the
index, so ranking N matches read N rows of `chunks` (about a page each, with the text and
the vector) and then `ts_rank_cd` over each: 17 ms for a query's ~1,400 matches at 100,000
chunks. The postings of a query's words lie together in the primary key's leaf pages:
the same query counts and ranks in about 1.5 ms. The rows cost about 150 bytes a lexeme
of a chunk (docs/knowledge.md).
"""

from __future__ import annotations

import math
from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store.keywords import RANK_BUDGET, selective

K1, B = 1.2, 0.75  # BM25's usual constants (FTS5's and Lucene's defaults)
_STORES = "SELECT seq FROM vector_stores WHERE workspace_id = :ws AND id = ANY(:ids)"
_STORE = "(SELECT seq FROM vector_stores WHERE workspace_id = :ws AND id = :vs)"

# One statement for a file's chunks: their rows, their postings and the file's totals.
# The chunks of one file have distinct positions, which join each new seq to its input.
_INSERT_CHUNKS = """
WITH input AS (
  SELECT * FROM unnest(CAST(:positions AS int[]), CAST(:pages AS int[]),
    CAST(:tokens AS int[]), CAST(:texts AS text[]), CAST(:terms AS text[]),
    CAST(:embeddings AS text[])) AS i(position, page, tokens, text, terms, embedding)
), added AS (
  INSERT INTO chunks (workspace_id, vector_store_id, file_id, position, page, tokens, text,
    embedding)
  SELECT :ws, :vs, :file, position, page, tokens, text, CAST(embedding AS {vector})
  FROM input RETURNING seq, position
), lexed AS (
  SELECT a.seq, to_tsvector('english', i.terms) AS tsv FROM added a
  JOIN input i ON i.position = a.position
), sized AS (
  SELECT seq, tsv, (SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0)
    FROM unnest(tsv)) AS dl FROM lexed
), posted AS (
  INSERT INTO keyword_postings (store, term, chunk, tf, dl)
  SELECT {store}, l.lexeme, s.seq, least(coalesce(array_length(l.positions, 1), 1), 32767),
    s.dl FROM sized s, unnest(s.tsv) AS l
)
INSERT INTO keyword_files (store, file_id, chunks, length)
SELECT {store}, :file, count(*), coalesce(sum(dl), 0) FROM sized
"""

DROP_STORE = (
    f"DELETE FROM keyword_postings WHERE store = {_STORE}",
    f"DELETE FROM keyword_files WHERE store = {_STORE}",
)
DROP_FILE = (
    "DELETE FROM keyword_postings WHERE chunk IN (SELECT seq FROM chunks WHERE "
    "workspace_id = :ws AND vector_store_id = :vs AND file_id = :file)",
    f"DELETE FROM keyword_files WHERE store = {_STORE} AND file_id = :file",
)

# Each query word's lexemes, in the query's order, with the chunks each is in (counted up
# to :cap from the index alone), the stores' chunk count and total length, and their seqs
# (an array, so that the postings' index is searched by store too, not skipped through).
_COUNTS = text(
    f"WITH s AS (SELECT array_agg(seq) AS seqs FROM ({_STORES}) v), "
    "t AS (SELECT DISTINCT ON (l.lexeme) l.lexeme, u.i "
    "FROM unnest(CAST(:terms AS text[])) WITH ORDINALITY AS u(t, i), "
    "unnest(to_tsvector('english', u.t)) AS l ORDER BY l.lexeme, u.i), "
    "n AS (SELECT coalesce(sum(chunks), 0) AS chunks, coalesce(sum(length), 0) AS length "
    "FROM keyword_files WHERE store = ANY(CAST((SELECT seqs FROM s) AS bigint[]))) "
    "SELECT t.lexeme, (SELECT count(*) FROM (SELECT 1 FROM keyword_postings p WHERE "
    "p.store = ANY(CAST((SELECT seqs FROM s) AS bigint[])) AND p.term = t.lexeme LIMIT :cap) m), "
    "n.chunks, n.length, (SELECT seqs FROM s) FROM t, n ORDER BY t.i, t.lexeme"
)
_SIZES = (
    "SELECT v.id, (SELECT coalesce(sum(f.chunks), 0) FROM keyword_files f WHERE f.store = v.seq)"
    "{settings} FROM vector_stores v WHERE v.workspace_id = :ws AND v.id = ANY(:ids)"
)
_RANK = text(
    "SELECT p.chunk, sum(w.idf * p.tf * (k.k1 + 1) "
    "/ (p.tf + k.k1 * (1 - k.b + k.b * p.dl / k.avgdl))) AS score "
    "FROM (SELECT CAST(:k1 AS float8) AS k1, CAST(:b AS float8) AS b, "
    "CAST(:avgdl AS float8) AS avgdl) AS k, "
    "unnest(CAST(:terms AS text[]), CAST(:idfs AS float8[])) AS w(t, idf) "
    "JOIN keyword_postings p ON p.term = w.t AND p.store = ANY(CAST(:stores AS bigint[])) "
    "GROUP BY p.chunk ORDER BY score DESC, p.chunk LIMIT :k"
)


@cache
def insert_chunks(vector_type: str) -> TextClause:
    """The statement that adds a file's chunks, their vectors cast to `vector_type`."""
    return text(_INSERT_CHUNKS.format(store=_STORE, vector=vector_type))


async def store_sizes(
    conn: AsyncConnection, ws: str, ids: list[str], settings: tuple[tuple[str, str], ...] = ()
) -> dict[str, int]:
    """The workspace's stores among `ids`, with the chunks each holds; `settings` (name,
    value) are set for the transaction in the same round trip, when any store is found."""
    found = await conn.execute(_sizes(len(settings)), {
        "ws": ws, "ids": ids, **{f"n{i}": n for i, (n, _) in enumerate(settings)},
        **{f"v{i}": v for i, (_, v) in enumerate(settings)}})  # fmt: skip
    return {str(r[0]): int(r[1]) for r in found}


@cache
def _sizes(settings: int) -> TextClause:
    chosen = "".join(f", set_config(:n{i}, :v{i}, true)" for i in range(settings))
    return text(_SIZES.format(settings=chosen))


def idf(chunks: int, containing: int) -> float:
    """BM25's inverse document frequency, Lucene's form (never negative)."""
    return math.log(1 + (chunks - containing + 0.5) / (containing + 0.5))


async def search(
    conn: AsyncConnection, ws: str, ids: list[str], terms: list[str], limit: int
) -> list[tuple[int, float]]:
    """(chunk seq, BM25 score), best first, over the query's rarest lexemes whose chunks
    fit RANK_BUDGET (the rarest always), as SQLite's keyword search chooses its words."""
    counted = {"ws": ws, "ids": ids, "terms": terms, "cap": RANK_BUDGET + 1}
    rows = (await conn.execute(_COUNTS, counted)).all()
    if not rows or not rows[0][4]:  # no content word, or no store of the workspace
        return []
    lexemes, counts = [str(r[0]) for r in rows], [int(r[1]) for r in rows]
    chunks, length = int(rows[0][2]), int(rows[0][3])
    kept = selective(lexemes, counts)
    df = dict(zip(lexemes, counts, strict=True))
    params = {
        "stores": list(rows[0][4]), "terms": kept, "idfs": [idf(chunks, df[t]) for t in kept],
        "k": limit, "k1": K1, "b": B, "avgdl": max(length / max(chunks, 1), 1.0),
    }  # fmt: skip
    return [(int(r[0]), float(r[1])) for r in await conn.execute(_RANK, params)]
