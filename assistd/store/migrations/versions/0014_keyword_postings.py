"""keyword postings: PostgreSQL's keyword index read from a covering primary key

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-03 10:00:00

PostgreSQL only (SQLite keeps FTS5). `keyword_postings`: a row per (vector store's seq,
lexeme, chunk's seq) with the lexeme's count in the chunk and the chunk's length in
lexemes, all in its primary key's leaf pages so BM25 ranks from the index alone;
`keyword_files`: each file's chunk count and total length in a store. Filled from the
chunks' `tsv` column, which goes with its GIN index (store/pg_keywords.py says why).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_LENGTH = "(SELECT coalesce(sum(coalesce(array_length(positions, 1), 1)), 0) FROM unnest(tsv))"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # Index-only scans need the visibility map: vacuum after a fiftieth of new rows, not
    # autovacuum's default fifth (an ingested store is otherwise read through the heap).
    op.execute(
        "CREATE TABLE keyword_postings (store bigint NOT NULL, term text NOT NULL, "
        "chunk bigint NOT NULL, tf smallint NOT NULL, dl integer NOT NULL, "
        "PRIMARY KEY (store, term, chunk) INCLUDE (tf, dl)) "
        "WITH (autovacuum_vacuum_insert_scale_factor = 0.02)"
    )
    op.execute("CREATE INDEX ix_keyword_postings_chunk ON keyword_postings (chunk)")
    op.execute(
        "CREATE TABLE keyword_files (store bigint NOT NULL, file_id varchar(64) NOT NULL, "
        "chunks integer NOT NULL, length bigint NOT NULL, PRIMARY KEY (store, file_id))"
    )
    stores = "JOIN vector_stores v ON v.workspace_id = c.workspace_id AND v.id = c.vector_store_id"
    op.execute(
        "INSERT INTO keyword_postings (store, term, chunk, tf, dl) SELECT v.seq, l.lexeme, "
        "c.seq, least(coalesce(array_length(l.positions, 1), 1), 32767), "
        f"{_LENGTH.replace('tsv', 'c.tsv')} FROM chunks c {stores}, unnest(c.tsv) AS l"
    )
    op.execute(
        "INSERT INTO keyword_files (store, file_id, chunks, length) SELECT v.seq, c.file_id, "
        f"count(*), coalesce(sum({_LENGTH.replace('tsv', 'c.tsv')}), 0) FROM chunks c {stores} "
        "GROUP BY v.seq, c.file_id"
    )
    op.execute("DROP INDEX IF EXISTS ix_chunks_tsv")
    op.execute("ALTER TABLE chunks DROP COLUMN tsv")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    from assistd.store.keywords import index_terms

    bind = op.get_bind()
    op.execute("ALTER TABLE chunks ADD COLUMN tsv tsvector")
    rows = bind.execute(sa.text("SELECT seq, text FROM chunks")).all()
    if rows:
        bind.execute(
            sa.text("UPDATE chunks SET tsv = to_tsvector('english', :terms) WHERE seq = :seq"),
            [{"seq": seq, "terms": index_terms(body)} for seq, body in rows],
        )
    op.execute("ALTER TABLE chunks ALTER COLUMN tsv SET NOT NULL")
    op.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
    op.execute("DROP TABLE keyword_files")
    op.execute("DROP TABLE keyword_postings")
