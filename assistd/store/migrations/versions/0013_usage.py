"""usage and quotas

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02 15:20:00

`usage_daily`: token usage of ended runs, one row per workspace, API key, model and UTC day
(`key_id` '' for runs made before keys were recorded); `runs.key_id`: the key that created
the run; `api_keys.limits` and `workspaces.limits`: their own request, run and token
limits as a JSON object (null: the server's).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SeqType = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "usage_daily",
        sa.Column("seq", SeqType, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(64), nullable=False),
        sa.Column("key_id", sa.String(64), nullable=False),
        sa.Column("model", sa.String(256), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("runs", sa.BigInteger(), nullable=False),
        sa.Column("prompt_tokens", sa.BigInteger(), nullable=False),
        sa.Column("completion_tokens", sa.BigInteger(), nullable=False),
        sa.Column("total_tokens", sa.BigInteger(), nullable=False),
        sa.UniqueConstraint("workspace_id", "key_id", "model", "day", name="uq_usage_daily"),
    )
    op.create_index("ix_usage_daily_day", "usage_daily", ["day"])
    op.create_index("ix_usage_daily_key_day", "usage_daily", ["key_id", "day"])
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("key_id", sa.String(64), nullable=True))
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(sa.Column("limits", sa.JSON(), nullable=True))
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.add_column(sa.Column("limits", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("workspaces") as batch_op:
        batch_op.drop_column("limits")
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("limits")
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("key_id")
    op.drop_index("ix_usage_daily_key_day", "usage_daily")
    op.drop_index("ix_usage_daily_day", "usage_daily")
    op.drop_table("usage_daily")
