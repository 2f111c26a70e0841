"""audit log: who called what on which object, and how it ended

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02 15:30:00

One row per mutating API call (store/audit.py), written in the transaction of the change
it records where there is one. `workspace` is not `workspace_id` on purpose: a
workspace's deletion removes the rows carrying `workspace_id`, and the log must outlive
it. Old rows go by `audit_retention_days` (the worker's sweep).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
_SEQ = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "audit_log",
        sa.Column("seq", _SEQ, autoincrement=True, nullable=False),
        sa.Column("at", sa.BigInteger(), nullable=False),
        sa.Column("request_id", sa.String(length=64), nullable=True),
        sa.Column("key_id", sa.String(length=64), nullable=True),
        sa.Column("workspace", sa.String(length=64), nullable=True),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("route", sa.String(length=200), nullable=True),
        sa.Column("path", sa.String(length=300), nullable=False),
        sa.Column("object_ids", sa.Text(), nullable=False),
        sa.Column("status", sa.Integer(), nullable=False),
        sa.Column("error_code", sa.String(length=128), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("seq"),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_workspace_seq", "audit_log", ["workspace", "seq"])


def downgrade() -> None:
    op.drop_index("ix_audit_log_workspace_seq", table_name="audit_log")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_table("audit_log")
