"""worker restarts and interrupted runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-30 23:00:00.000000

A worker row counts the restarts `cifarlab up` made and says why the last one died; an
experiment keeps the memory figures of its last heartbeat and why its last run was cut short.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("workers") as batch:
        batch.add_column(sa.Column("restarts", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("last_exit", sa.Text(), nullable=True))
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("memory", sa.JSON(), nullable=True))
        batch.add_column(sa.Column("interruption", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("interruption")
        batch.drop_column("memory")
    with op.batch_alter_table("workers") as batch:
        batch.drop_column("last_exit")
        batch.drop_column("restarts")
