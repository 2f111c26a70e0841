"""thread time-to-live

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 12:40:00

`threads.last_active_at` (ms): the last message or run written to the thread (null: none
since its creation, so `created_at` counts); `threads.ttl_s`: the thread's own TTL, read
from its metadata key `expires_after_seconds` when written (null: the workspace's);
`workspaces.thread_ttl_s`: the workspace's (null: the server's `thread_ttl_s`; 0: never).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("threads") as batch_op:
        batch_op.add_column(sa.Column("last_active_at", sa.BigInteger(), nullable=True))
        batch_op.add_column(sa.Column("ttl_s", sa.BigInteger(), nullable=True))
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.add_column(sa.Column("thread_ttl_s", sa.BigInteger(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.drop_column("thread_ttl_s")
    with op.batch_alter_table("threads") as batch_op:
        batch_op.drop_column("ttl_s")
        batch_op.drop_column("last_active_at")
