"""the vector stores file_search searches, on assistants and threads

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02 12:00:00

`vector_store_ids`: `tool_resources.file_search.vector_store_ids` as a JSON list (null
on older rows and when there are none).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("assistants", "threads"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column("vector_store_ids", sa.JSON(), nullable=True))


def downgrade() -> None:
    for table in ("assistants", "threads"):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column("vector_store_ids")
