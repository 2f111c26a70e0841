"""what the OpenAI surface adds to shared objects

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02 09:00:00

An assistant's `response_format`; a thread's code-interpreter files (its
`tool_resources`); a message's `attachments` (its files with the tools each is for).
All nullable: existing rows read as "auto", no files, and attachments from `file_ids`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.add_column(sa.Column("response_format", sa.JSON(), nullable=True))
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("file_ids", sa.JSON(), nullable=True))
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("attachments", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("attachments")
    with op.batch_alter_table("threads", schema=None) as batch_op:
        batch_op.drop_column("file_ids")
    with op.batch_alter_table("assistants", schema=None) as batch_op:
        batch_op.drop_column("response_format")
