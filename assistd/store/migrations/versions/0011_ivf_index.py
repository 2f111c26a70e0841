"""knowledge: an IVF index for large vector stores on SQLite

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02 12:00:00

SQLite only (PostgreSQL has pgvector's HNSW, or the exact fallback): `ivf_indexes` holds a
large store's k-means centroids, `ivf_vectors` its vectors as int8 codes clustered by
nearest centroid, so a search reads a few lists instead of every vector
(store/ivf.py). A store already past the size that calls for one gets its index on its
next added file; until then it is searched exactly, as before.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute(
        "CREATE TABLE ivf_indexes (workspace_id VARCHAR(64) NOT NULL, "
        "vector_store_id VARCHAR(64) NOT NULL, dimension INTEGER NOT NULL, "
        "trained_count INTEGER NOT NULL, lists INTEGER NOT NULL, centroids BLOB NOT NULL, "
        "PRIMARY KEY (workspace_id, vector_store_id)) WITHOUT ROWID"
    )
    # Clustered by list: a probed list is one contiguous range of the table.
    op.execute(
        "CREATE TABLE ivf_vectors (workspace_id VARCHAR(64) NOT NULL, "
        "vector_store_id VARCHAR(64) NOT NULL, list_no INTEGER NOT NULL, "
        "seq INTEGER NOT NULL, embedding BLOB NOT NULL, "
        "PRIMARY KEY (workspace_id, vector_store_id, list_no, seq)) WITHOUT ROWID"
    )
    op.execute(
        "CREATE INDEX ix_ivf_vectors_seq ON ivf_vectors (workspace_id, vector_store_id, seq)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        return
    op.execute("DROP TABLE IF EXISTS ivf_vectors")
    op.execute("DROP TABLE IF EXISTS ivf_indexes")
