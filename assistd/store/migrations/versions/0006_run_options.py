"""a run's options and why it ended incomplete

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02 10:00:00

`options`: tool choice, response format, parallel tool calls, token caps and truncation,
as one JSON object (null on older rows: every option at its default).
`incomplete_reason`: which token cap ended an `incomplete` run.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.add_column(sa.Column("options", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("incomplete_reason", sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("runs", schema=None) as batch_op:
        batch_op.drop_column("incomplete_reason")
        batch_op.drop_column("options")
