"""vector-store file batches

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 12:00:00

A batch (OpenAI's `vector_store.files_batch`) is a row of its own; its files are the
store's files that carry its id in `batch_id`, so a batch's counts are those files'
statuses and removing a file from the store takes it out of the batch too.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "vector_store_file_batches",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("vector_store_id", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("cancelled", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("seq"),
        sa.UniqueConstraint("id"),
    )
    op.create_index(
        "ix_vector_store_file_batches_ws_vs",
        "vector_store_file_batches",
        ["workspace_id", "vector_store_id", "id"],
    )
    with op.batch_alter_table("vector_store_files") as batch_op:
        batch_op.add_column(sa.Column("batch_id", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_vector_store_files_ws_batch_seq",
        "vector_store_files",
        ["workspace_id", "batch_id", "seq"],
    )


def downgrade() -> None:
    op.drop_index("ix_vector_store_files_ws_batch_seq", table_name="vector_store_files")
    with op.batch_alter_table("vector_store_files") as batch_op:
        batch_op.drop_column("batch_id")
    op.drop_index("ix_vector_store_file_batches_ws_vs", table_name="vector_store_file_batches")
    op.drop_table("vector_store_file_batches")
