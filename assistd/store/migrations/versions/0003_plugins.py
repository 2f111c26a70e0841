"""per-workspace plugins (OpenAPI documents and MCP servers)

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10 09:00:00

A plugin's id is the tool type an assistant names, unique within its workspace. Its
credentials (a service token, an MCP server's headers) are stored encrypted in `sealed`.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "plugins",
        sa.Column(
            "seq",
            sa.BigInteger().with_variant(sa.Integer(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("workspace_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("document", sa.Text(), nullable=True),
        sa.Column("url", sa.Text(), nullable=True),
        sa.Column("auth", sa.JSON(), nullable=False),
        sa.Column("header_names", sa.JSON(), nullable=False),
        sa.Column("allowed_tools", sa.JSON(), nullable=True),
        sa.Column("sealed", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    with op.batch_alter_table("plugins", schema=None) as batch_op:
        batch_op.create_index("ux_plugins_ws_id", ["workspace_id", "id"], unique=True)
        batch_op.create_index("ix_plugins_ws_seq", ["workspace_id", "seq"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("plugins", schema=None) as batch_op:
        batch_op.drop_index("ix_plugins_ws_seq")
        batch_op.drop_index("ux_plugins_ws_id")
    op.drop_table("plugins")
