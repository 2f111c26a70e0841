"""short key prefixes; mark the key registered from ASSISTD_API_KEY

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 09:00:00

Before this revision a key's stored prefix was its first 15 characters: all of a short
key given through ASSISTD_API_KEY, most of a longer one. Listings now show at most four
characters of a key's secret part, so stored prefixes are cut to that. Keys named
"ASSISTD_API_KEY" are the ones start-up registered from that variable (nothing else used
the name), so they become the bootstrap keys that a changed variable replaces.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY_PREFIX = "sk-assistd-"  # what generated keys start with; 4 characters follow it

api_keys = sa.table(
    "api_keys",
    sa.column("name", sa.String),
    sa.column("prefix", sa.String),
    sa.column("bootstrap", sa.Boolean),
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.add_column(
            sa.Column("bootstrap", sa.Boolean(), nullable=False, server_default=sa.false())
        )
    configured = api_keys.c.name == "ASSISTD_API_KEY"
    op.execute(api_keys.update().where(configured).values(bootstrap=True))
    # A configured key may be short: keep four characters of it. A generated key's prefix
    # is KEY_PREFIX and four characters of its 43 random ones.
    foreign = configured | ~api_keys.c.prefix.startswith(KEY_PREFIX, autoescape=True)
    four = sa.func.substr(api_keys.c.prefix, 1, 4)
    op.execute(api_keys.update().where(foreign).values(prefix=four))


def downgrade() -> None:
    with op.batch_alter_table("api_keys") as batch_op:
        batch_op.drop_column("bootstrap")
