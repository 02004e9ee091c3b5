"""run telemetry: the phase a running experiment is in, and its last resource readings

Revision ID: 0014_run_telemetry
Revises: 0013
Create Date: 2026-12-01 12:45:00.000000

``experiments.run_phase`` is what the worker is doing now ("loading_data", "train",
"fine_tune", "evaluating"), so the page can say "loading data" or "evaluating" instead of
"Epoch 0/3". ``experiments.telemetry`` holds the heartbeat's last CPU, memory and GPU
readings (``app.core.telemetry.Telemetry`` as JSON). Both are empty for older runs.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_run_telemetry"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.add_column(sa.Column("run_phase", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("telemetry", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("experiments") as batch:
        batch.drop_column("telemetry")
        batch.drop_column("run_phase")
