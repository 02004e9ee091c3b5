"""sweeps: sets of trials launched together, and the pruned status's reason

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-01 06:30:00.000000

A sweep keeps its whole spec (base, axes, seeds, pruning) as JSON and the cap on trials
running at once; each trial is an experiment with ``sweep_id``. ``stop_reason`` says why a
run ended early without failing ("pruned at epoch 3 because ..."). Existing experiments
belong to no sweep.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sweeps",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "owner_id",
            sa.Integer(),
            sa.ForeignKey("users.id", name="fk_sweeps_owner_id_users", ondelete="SET NULL"),
            nullable=True,
        ),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("model", sa.String(64), nullable=False),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("max_parallel", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_sweeps_owner_id", "sweeps", ["owner_id"])
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("sweep_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("stop_reason", sa.Text(), nullable=True))
        batch.create_foreign_key(
            "fk_experiments_sweep_id_sweeps", "sweeps", ["sweep_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index("ix_experiments_sweep_id", ["sweep_id"])


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_index("ix_experiments_sweep_id")
        batch.drop_constraint("fk_experiments_sweep_id_sweeps", type_="foreignkey")
        batch.drop_column("stop_reason")
        batch.drop_column("sweep_id")
    op.drop_index("ix_sweeps_owner_id", table_name="sweeps")
    op.drop_table("sweeps")
