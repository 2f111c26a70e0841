"""runs count their legs

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02 09:00:00

A run is queued once when it is created and once more each time tool outputs are
submitted; `leg` counts those times, and each queued job carries the leg it was made
for. A worker handed a job of an earlier leg (one whose worker died before acking it)
lets it go instead of taking over the run that a live worker holds. Runs already stored
start at leg 1.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.add_column(sa.Column("leg", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    with op.batch_alter_table("runs") as batch_op:
        batch_op.drop_column("leg")
