"""users.display_name: what the platform shows for a user.

Adds a NOT NULL column to a table that may hold rows: the server default ('') lets
every backend add it, then the backfill fills it from full_name, else username. The
pattern for any column that existing rows need a value for.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: Just the columns the backfill touches, as they are at this revision.
users = sa.table(
    "users",
    sa.column("username", sa.String),
    sa.column("full_name", sa.String),
    sa.column("display_name", sa.String),
)


def upgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.add_column(
            sa.Column("display_name", sa.String(200), server_default="", nullable=False)
        )
    op.execute(
        users.update()
        .where(users.c.display_name == "")
        .values(display_name=sa.func.coalesce(users.c.full_name, users.c.username))
    )


def downgrade() -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_column("display_name")
