"""knowledge: vector stores, their files, and chunks with keyword and vector indexes

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 09:00:00

SQLite: `chunks_fts`, a contentless FTS5 table keyed by the chunk's seq (its text is the
chunk's with CJK runs spelled as character bigrams, so Chinese is searchable by words
too); the sqlite-vec tables, one per embedding dimension, are made on first use.
PostgreSQL: a `tsv` tsvector column with a GIN index, and `embedding` — pgvector's
`vector` where the server has the extension (with an HNSW index per dimension, made on
first use), else `real[]` searched exactly.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _seq() -> sa.Column[int]:
    return sa.Column(
        "seq", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True,
        nullable=False,
    )  # fmt: skip


def upgrade() -> None:
    op.create_table(
        "vector_stores",
        _seq(),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("name", sa.Text(), nullable=True),
        sa.Column("embedder", sa.String(length=128), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("max_chunk_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap_tokens", sa.Integer(), nullable=False),
        sa.Column("metadata", sa.JSON(), nullable=False),
        sa.Column("expires_after", sa.JSON(), nullable=True),
        sa.Column("expires_at", sa.BigInteger(), nullable=True),
        sa.Column("last_active_at", sa.BigInteger(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index("ix_vector_stores_ws_seq", "vector_stores", ["workspace_id", "seq"])
    op.create_table(
        "vector_store_files",
        _seq(),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("last_error", sa.JSON(), nullable=True),
        sa.Column("usage_bytes", sa.BigInteger(), nullable=False),
        sa.Column("chunk_count", sa.Integer(), nullable=False),
        sa.Column("attributes", sa.JSON(), nullable=False),
        sa.Column("max_chunk_tokens", sa.Integer(), nullable=False),
        sa.Column("chunk_overlap_tokens", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        "ux_vector_store_files_ws_vs_id", "vector_store_files",
        ["workspace_id", "vector_store_id", "id"], unique=True,
    )  # fmt: skip
    op.create_index(
        "ix_vector_store_files_ws_vs_seq", "vector_store_files",
        ["workspace_id", "vector_store_id", "seq"],
    )  # fmt: skip
    op.create_index("ix_vector_store_files_ws_id", "vector_store_files", ["workspace_id", "id"])
    op.create_table(
        "chunks",
        _seq(),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("file_id", sa.String(length=64), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("page", sa.Integer(), nullable=True),
        sa.Column("tokens", sa.Integer(), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index(
        "ix_chunks_ws_vs_file", "chunks", ["workspace_id", "vector_store_id", "file_id", "position"]
    )
    if op.get_bind().dialect.name == "postgresql":
        _postgres_indexes()
    else:
        op.execute(
            "CREATE VIRTUAL TABLE chunks_fts USING fts5(terms, content='', contentless_delete=1, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )


def _postgres_indexes() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE chunks ADD COLUMN tsv tsvector NOT NULL")
    op.execute("CREATE INDEX ix_chunks_tsv ON chunks USING gin (tsv)")
    available = bind.execute(
        sa.text("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    ).first()
    if available is not None:
        op.execute("CREATE EXTENSION IF NOT EXISTS vector")
        op.execute("ALTER TABLE chunks ADD COLUMN embedding vector NOT NULL")
    else:  # searched exactly, in SQL: correct, slower at scale (docs/knowledge.md)
        op.execute("ALTER TABLE chunks ADD COLUMN embedding real[] NOT NULL")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        op.execute("DROP TABLE IF EXISTS chunks_fts")
        tables = op.get_bind().execute(
            sa.text(
                "SELECT name FROM sqlite_master WHERE name LIKE 'vec_chunks_%' "
                "AND sql LIKE 'CREATE VIRTUAL TABLE%'"
            )
        )
        for (name,) in list(tables):
            op.execute(f'DROP TABLE IF EXISTS "{name}"')
    op.drop_table("chunks")
    op.drop_table("vector_store_files")
    op.drop_table("vector_stores")
