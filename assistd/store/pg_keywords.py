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

from functools import cache

from sqlalchemy import TextClause, text
from sqlalchemy.ext.asyncio import AsyncConnection

from assistd.store import pg_driver
from assistd.store.keywords import RANK_BUDGET

K1, B = 1.2, 0.75  # BM25's usual constants (FTS5's and Lucene's defaults)
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

# One statement ($n: asyncpg's own, store/pg_driver.py): each query word's lexemes (in the
# query's order) with the chunks each is in, counted up to RANK_BUDGET + 1 from the index
# alone; the rarest kept while their counts fit RANK_BUDGET (the rarest always, as
# store/keywords.py's `selective`); the stores' chunk count and total length for BM25's
# idf and average length; and the kept lexemes' postings ranked. The stores' seqs go as
# an array, so that the postings' index is searched by store too, not skipped through.
# (Counting, then ranking in a second statement, was a round trip more.)
_SEARCH = (
    "WITH s AS (SELECT coalesce(array_agg(seq), '{}') AS seqs FROM vector_stores "
    "WHERE workspace_id = $1 AND id = ANY($2)), "
    "t AS (SELECT DISTINCT ON (l.lexeme) l.lexeme, u.i "
    "FROM unnest(CAST($3 AS text[])) WITH ORDINALITY AS u(t, i), "
    "unnest(to_tsvector('english', u.t)) AS l ORDER BY l.lexeme, u.i), "
    "n AS (SELECT CAST(coalesce(sum(chunks), 0) AS float8) AS chunks, "
    "greatest(CAST(coalesce(sum(length), 0) AS float8) / greatest(sum(chunks), 1), 1) AS avgdl "
    "FROM keyword_files WHERE store = ANY(CAST((SELECT seqs FROM s) AS bigint[]))), "
    "c AS MATERIALIZED (SELECT t.lexeme, t.i, (SELECT count(*) FROM (SELECT 1 "
    "FROM keyword_postings p WHERE p.store = ANY(CAST((SELECT seqs FROM s) AS bigint[])) "
    "AND p.term = t.lexeme "
    "LIMIT $4) m) AS df FROM t), "
    "w AS (SELECT lexeme, df, row_number() OVER o AS rank, sum(df) OVER o AS running "
    "FROM c WINDOW o AS (ORDER BY df, i, lexeme)), "
    "kept AS (SELECT w.lexeme, n.avgdl, "
    "ln(1 + (n.chunks - w.df + 0.5) / (CAST(w.df AS float8) + 0.5)) AS idf "
    "FROM w, n WHERE w.rank = 1 OR w.running <= $5) "
    f"SELECT p.chunk, sum(k.idf * p.tf * ({K1} + 1) "
    f"/ (p.tf + {K1} * (1 - {B} + {B} * p.dl / k.avgdl))) AS score FROM kept k "
    "JOIN keyword_postings p ON p.term = k.lexeme "
    "AND p.store = ANY(CAST((SELECT seqs FROM s) AS bigint[])) "
    "GROUP BY p.chunk ORDER BY score DESC, p.chunk LIMIT $6"
)


@cache
def insert_chunks(vector_type: str) -> TextClause:
    """The statement that adds a file's chunks, their vectors cast to `vector_type`."""
    return text(_INSERT_CHUNKS.format(store=_STORE, vector=vector_type))


async def search(
    conn: AsyncConnection, ws: str, ids: list[str], terms: list[str], limit: int
) -> list[tuple[int, float]]:
    """(chunk seq, BM25 score), best first, over the query's rarest lexemes whose chunks
    fit RANK_BUDGET (the rarest always), as SQLite's keyword search chooses its words."""
    rows = await pg_driver.fetch(conn, _SEARCH, ws, ids, terms, RANK_BUDGET + 1, RANK_BUDGET, limit)
    return [(int(r[0]), float(r[1])) for r in rows]
